"""Visibility and permissions: each grant covers its unit's subtree and nothing else.

These tests try to break the rules: reading outside one's subtree, learning that something exists,
escalating one's own rights, administering people above oneself.
"""

from __future__ import annotations

from tests.helpers import Api, World, build_world, problem

MISSING = "00000000-0000-7000-8000-000000000000"


async def _codes(api: Api, **params: str) -> list[str]:
    response = await api.get("/api/v1/units", params={"limit": 500, **params})
    assert response.status_code == 200, response.text
    return sorted(u["code"] for u in response.json()["items"])


async def test_unit_head_sees_their_subtree_and_nothing_else(api: Api) -> None:
    world = await build_world(api)
    head = await api.as_user("head.c1")
    assert await _codes(head) == ["P-D1-C1"]
    assert await _codes(head, q="xa") == ["P-D1-C1"]
    assert await _codes(head, kind="district") == []
    # Outside the subtree: the same 404 as for a unit that does not exist.
    for unit in (world.province, world.d1, world.c2, world.c3, world.snv):
        outside = problem(await head.get(f"/api/v1/units/{unit['id']}"), 404)
        missing = problem(await head.get(f"/api/v1/units/{MISSING}"), 404)
        assert outside["title"] == missing["title"]
    problem(await head.get("/api/v1/units", params={"under": world.d1["id"]}), 404)
    assert await _codes(head, parent=world.d1["id"]) == ["P-D1-C1"]


async def test_head_of_a_district_sees_the_whole_district(api: Api) -> None:
    world = await build_world(api)
    head = await api.as_user("head.d1")
    assert await _codes(head) == ["P-D1", "P-D1-C1", "P-D1-C2"]
    assert await _codes(head, under=world.d1["id"]) == ["P-D1", "P-D1-C1", "P-D1-C2"]
    problem(await head.get(f"/api/v1/units/{world.c3['id']}"), 404)


async def test_province_grants_see_everything_below(api: Api) -> None:
    await build_world(api)
    for username in ("planner", "leader"):
        user = await api.as_user(username)
        assert len(await _codes(user)) == 7


async def test_people_are_visible_only_within_scope(api: Api) -> None:
    world = await build_world(api)
    head = await api.as_user("head.c1")
    listed = (await head.get("/api/v1/users")).json()["items"]
    assert [u["username"] for u in listed] == ["head.c1"]
    problem(await head.get(f"/api/v1/users/{world.users['planner']['id']}"), 404)
    # A district admin sees people of the district, not the provincial planner or leader.
    district_admin = await api.as_user("admin.d1")
    names = sorted(
        u["username"] for u in (await district_admin.get("/api/v1/users")).json()["items"]
    )
    assert names == ["admin.d1", "head.c1", "head.d1"]
    # A provincial planner sees everyone with a grant or home in the province.
    planner = await api.as_user("planner")
    names = sorted(u["username"] for u in (await planner.get("/api/v1/users")).json()["items"])
    assert names == sorted(world.users)


async def test_non_admins_cannot_change_the_tree_or_people(api: Api) -> None:
    world = await build_world(api)
    # Each tries below a unit they can see: seeing is not administering.
    visible_parent = {
        "head.c1": world.c1,
        "planner": world.province,
        "leader": world.province,
        "inspector": world.snv,
    }
    for username, parent in visible_parent.items():
        user = await api.as_user(username)
        problem(
            await user.post(
                "/api/v1/units",
                json={"code": "NEW", "name": "N", "kind": "other", "parent_id": parent["id"]},
            ),
            403,
        )
        problem(
            await user.post(
                "/api/v1/users",
                json={"username": f"x{username}", "full_name": "X", "password": "long enough pw"},
            ),
            403,
        )
    head = await api.as_user("head.c1")
    problem(
        await head.patch(
            f"/api/v1/units/{world.c1['id']}", json={"name": "Mine"}, headers={"If-Match": '"1"'}
        ),
        403,
    )
    # Granting oneself more is refused.
    me = world.users["head.c1"]
    problem(
        await head.post(
            f"/api/v1/users/{me['id']}/grants", json={"role": "admin", "unit_id": world.c1["id"]}
        ),
        403,
    )
    assert [g["role"] for g in (await head.get("/api/v1/me")).json()["grants"]] == ["unit_head"]


async def test_a_district_admin_stays_inside_the_district(api: Api) -> None:
    world = await build_world(api)
    admin = await api.as_user("admin.d1")
    created = await admin.post(
        "/api/v1/units",
        json={"code": "P-D1-C9", "name": "Xã Mới", "kind": "commune", "parent_id": world.d1["id"]},
    )
    assert created.status_code == 201, created.text
    # Not under D2 (invisible: reported as an unknown parent), not as a root.
    outside = await admin.post(
        "/api/v1/units",
        json={"code": "P-D2-C9", "name": "X", "kind": "commune", "parent_id": world.d2["id"]},
    )
    assert problem(outside, 422)["errors"][0]["field"] == "parent_id"
    problem(
        await admin.post("/api/v1/units", json={"code": "ROOT2", "name": "X", "kind": "province"}),
        403,
    )
    # Cannot move a district unit out of the district.
    moved = await admin.patch(
        f"/api/v1/units/{world.c1['id']}",
        json={"parent_id": world.province["id"]},
        headers={"If-Match": '"1"'},
    )
    problem(moved, 422)
    # Cannot grant on units outside, nor a system-wide grant.
    head = world.users["head.c1"]
    problem(
        await admin.post(
            f"/api/v1/users/{head['id']}/grants", json={"role": "leader", "unit_id": world.c3["id"]}
        ),
        422,
    )
    problem(await admin.post(f"/api/v1/users/{head['id']}/grants", json={"role": "admin"}), 403)
    # Can grant inside.
    granted = await admin.post(
        f"/api/v1/users/{head['id']}/grants", json={"role": "unit_head", "unit_id": world.c2["id"]}
    )
    assert granted.status_code == 201, granted.text
    head_api = await api.as_user("head.c1")
    assert await _codes(head_api) == ["P-D1-C1", "P-D1-C2"]


async def test_a_district_admin_cannot_take_over_someone_with_wider_grants(api: Api) -> None:
    world = await build_world(api)
    # The provincial leader also heads commune C1: visible to the district admin, yet out of reach.
    leader = world.users["leader"]
    added = await api.post(
        f"/api/v1/users/{leader['id']}/grants",
        json={"role": "unit_head", "unit_id": world.c1["id"]},
    )
    assert added.status_code == 201
    admin = await api.as_user("admin.d1")
    visible = await admin.get(f"/api/v1/users/{leader['id']}")
    assert visible.status_code == 200
    takeover = await admin.patch(
        f"/api/v1/users/{leader['id']}",
        json={"password": "attacker chosen password"},
        headers={"If-Match": visible.headers["ETag"]},
    )
    problem(takeover, 403)
    again = await api.as_user("leader")
    assert (await again.get("/api/v1/me")).status_code == 200


async def _withdraw(api: Api, world: World) -> None:
    head = world.users["head.c1"]
    response = await api.delete(
        f"/api/v1/users/{head['id']}/grants",
        params={"role": "unit_head", "unit_id": world.c1["id"]},
    )
    assert response.status_code == 200, response.text
    assert response.json()["grants"] == []


async def test_withdrawing_a_grant_takes_effect_on_the_next_request(api: Api) -> None:
    world = await build_world(api)
    head = await api.as_user("head.c1")
    assert await _codes(head) == ["P-D1-C1"]
    await _withdraw(api, world)
    assert await _codes(head) == []
    problem(await head.get(f"/api/v1/units/{world.c1['id']}"), 404)


async def test_grants_can_be_withdrawn_by_id_and_twice_is_404(api: Api) -> None:
    world = await build_world(api)
    head = world.users["head.c1"]
    grant_id = head["grants"][0]["id"]
    url = f"/api/v1/users/{head['id']}/grants/{grant_id}"
    assert (await api.delete(url)).status_code == 200
    problem(await api.delete(url), 404)


async def test_duplicate_grants_conflict(api: Api) -> None:
    world = await build_world(api)
    head = world.users["head.c1"]
    problem(
        await api.post(
            f"/api/v1/users/{head['id']}/grants",
            json={"role": "unit_head", "unit_id": world.c1["id"]},
        ),
        409,
    )


async def test_an_admin_cannot_lock_themselves_out(api: Api) -> None:
    me = (await api.get("/api/v1/me")).json()
    problem(await api.delete(f"/api/v1/users/{me['id']}/grants", params={"role": "admin"}), 409)
    body = problem(
        await api.patch(
            f"/api/v1/users/{me['id']}", json={"is_active": False}, headers={"If-Match": '"1"'}
        ),
        422,
    )
    assert body["errors"][0]["field"] == "is_active"


async def test_usernames_are_unique_regardless_of_case(api: Api) -> None:
    await api.create_user("thanh.nv", [])
    body = {"username": "Thanh.NV", "full_name": "Other", "password": "long enough pw"}
    problem(await api.post("/api/v1/users", json=body), 409)
