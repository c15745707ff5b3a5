"""The organisation tree: create, change, move, search, page, import."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import create_async_engine

from inspection.settings import Settings
from inspection.web.idempotency import IdempotencyRecord
from tests.helpers import Api, build_world, problem


async def _list(api: Api, **params: Any) -> list[dict[str, Any]]:
    response = await api.get("/api/v1/units", params=params)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def _codes(items: list[dict[str, Any]]) -> list[str]:
    return [u["code"] for u in items]


async def test_create_get_and_etag(api: Api) -> None:
    province = await api.create_unit("P", "Tỉnh Thái Nguyên", "province")
    assert province["depth"] == 0 and province["parent_id"] is None and province["version"] == 1
    district = await api.create_unit("P-D1", "Huyện Võ Nhai", "district", province["id"])
    assert district["depth"] == 1 and district["parent_id"] == province["id"]
    response = await api.get(f"/api/v1/units/{district['id']}")
    assert response.status_code == 200
    assert response.headers["ETag"] == '"1"'
    assert response.json()["name"] == "Huyện Võ Nhai"


async def test_duplicate_code_is_a_conflict_and_creates_nothing(api: Api) -> None:
    await api.create_unit("P", "Tỉnh Thái Nguyên", "province")
    body = problem(
        await api.post("/api/v1/units", json={"code": "P", "name": "Other", "kind": "province"}),
        409,
    )
    assert "'P'" in body["detail"]
    assert len(await _list(api)) == 1


async def test_patch_needs_if_match_and_rejects_stale_versions(api: Api) -> None:
    unit = await api.create_unit("P", "Tỉnh Thái Nguyên", "province")
    url = f"/api/v1/units/{unit['id']}"
    problem(await api.patch(url, json={"name": "Renamed"}), 428)
    problem(await api.patch(url, json={"name": "Renamed"}, headers={"If-Match": '"7"'}), 412)
    ok = await api.patch(url, json={"name": "Tỉnh Thái Nguyên mới"}, headers={"If-Match": '"1"'})
    assert ok.status_code == 200, ok.text
    assert ok.json()["version"] == 2 and ok.headers["ETag"] == '"2"'
    # The version just used is stale now.
    problem(await api.patch(url, json={"name": "Again"}, headers={"If-Match": '"1"'}), 412)
    assert (await api.get(url)).json()["name"] == "Tỉnh Thái Nguyên mới"


async def test_moving_a_unit_moves_its_subtree(api: Api) -> None:
    world = await build_world(api)
    # Move district D1 (with C1, C2) under D2.
    moved = await api.patch(
        f"/api/v1/units/{world.d1['id']}",
        json={"parent_id": world.d2["id"]},
        headers={"If-Match": '"1"'},
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["depth"] == 2
    under_d2 = _codes(await _list(api, under=world.d2["id"]))
    assert sorted(under_d2) == ["P-D1", "P-D1-C1", "P-D1-C2", "P-D2", "P-D2-C3"]
    c1 = (await api.get(f"/api/v1/units/{world.c1['id']}")).json()
    assert c1["depth"] == 3
    # The head of D1 still covers C1 after the move: grants follow the tree.
    head = await api.as_user("head.d1")
    assert (await head.get(f"/api/v1/units/{world.c1['id']}")).status_code == 200


async def test_a_unit_cannot_move_below_itself(api: Api) -> None:
    world = await build_world(api)
    for target in (world.c1["id"], world.d1["id"]):
        body = problem(
            await api.patch(
                f"/api/v1/units/{world.d1['id']}",
                json={"parent_id": target},
                headers={"If-Match": '"1"'},
            ),
            422,
        )
        assert body["errors"][0]["field"] == "parent_id"
    assert (await api.get(f"/api/v1/units/{world.d1['id']}")).json()["parent_id"] == world.province[
        "id"
    ]


async def test_search_ignores_diacritics_and_case(api: Api) -> None:
    await build_world(api)
    assert _codes(await _list(api, q="vo nhai")) == ["P-D1"]
    assert _codes(await _list(api, q="VÕ NHAI")) == ["P-D1"]
    assert _codes(await _list(api, q="dai tu")) == ["P-D2"]  # "đ" matches "d"
    assert _codes(await _list(api, q="Đại Từ")) == ["P-D2"]
    assert _codes(await _list(api, q="la hien")) == ["P-D1-C1"]
    assert _codes(await _list(api, q="so noi vu")) == ["P-SNV"]
    assert _codes(await _list(api, q="p-d2")) == ["P-D2", "P-D2-C3"]  # codes match too
    assert await _list(api, q="%") == []  # LIKE wildcards are literal
    assert await _list(api, q="hà nội") == []


async def test_filters_by_parent_kind_and_subtree(api: Api) -> None:
    world = await build_world(api)
    assert _codes(await _list(api, parent=world.d1["id"])) == ["P-D1-C1", "P-D1-C2"]
    assert _codes(await _list(api, kind="district")) == ["P-D1", "P-D2"]
    assert _codes(await _list(api, under=world.d1["id"])) == ["P-D1", "P-D1-C1", "P-D1-C2"]
    assert _codes(await _list(api, under=world.d1["id"], kind="commune", q="trang")) == ["P-D1-C2"]
    problem(await api.get("/api/v1/units", params={"kind": "galaxy"}), 400)
    problem(
        await api.get("/api/v1/units", params={"under": "00000000-0000-7000-8000-000000000000"}),
        404,
    )


async def test_keyset_pages_are_complete_and_stable_under_inserts(api: Api) -> None:
    root = await api.create_unit("R", "Root", "province")
    for number in range(7):
        await api.create_unit(f"R-{number:02}", f"Unit {number}", "commune", root["id"])
    first = (await api.get("/api/v1/units", params={"limit": 3})).json()
    assert _codes(first["items"]) == ["R", "R-00", "R-01"]
    # A unit inserted before the cursor position does not shift the next page.
    await api.create_unit("R-000", "Inserted", "commune", root["id"])
    seen = _codes(first["items"])
    cursor = first["next_cursor"]
    while cursor:
        page = (await api.get("/api/v1/units", params={"limit": 3, "cursor": cursor})).json()
        seen += _codes(page["items"])
        cursor = page["next_cursor"]
    assert seen == ["R", "R-00", "R-01", "R-02", "R-03", "R-04", "R-05", "R-06"]
    body = problem(await api.get("/api/v1/units", params={"cursor": "not-a-cursor"}), 422)
    assert body["errors"][0]["field"] == "cursor"


async def test_json_import_creates_a_tree_in_any_row_order(api: Api) -> None:
    rows = [
        {"code": "X-C1", "name": "Xã Một", "kind": "commune", "parent_code": "X-D"},
        {"code": "X-D", "name": "Huyện X", "kind": "district", "parent_code": "X"},
        {"code": "X", "name": "Tỉnh X", "kind": "province"},
    ]
    response = await api.post("/api/v1/units/import", json={"units": rows})
    assert response.status_code == 201, response.text
    assert response.json()["created"] == 3
    c1 = next(u for u in await _list(api) if u["code"] == "X-C1")
    assert c1["depth"] == 2
    # Retrying the same import changes nothing and succeeds.
    again = await api.post("/api/v1/units/import", json={"units": rows})
    assert again.status_code == 200
    assert again.json()["created"] == 0 and again.json()["unchanged"] == 3
    assert len(await _list(api)) == 3


async def test_import_is_all_or_nothing_with_an_error_per_row(api: Api) -> None:
    await api.create_unit("P", "Tỉnh", "province")
    rows = [
        {"code": "P-OK", "name": "Fine", "kind": "district", "parent_code": "P"},
        {"code": "P", "name": "Different name", "kind": "province"},
        {"code": "P-ORPHAN", "name": "Orphan", "kind": "commune", "parent_code": "MISSING"},
        {"code": "P-OK", "name": "Twice", "kind": "district", "parent_code": "P"},
        {"code": "A", "name": "Cycle A", "kind": "other", "parent_code": "B"},
        {"code": "B", "name": "Cycle B", "kind": "other", "parent_code": "A"},
    ]
    body = problem(await api.post("/api/v1/units/import", json={"units": rows}), 422)
    by_row = {(e["row"], e["field"]) for e in body["errors"]}
    assert (2, "code") in by_row  # exists with other data
    assert (3, "parent_code") in by_row  # unknown parent
    assert (4, "code") in by_row  # duplicate of row 1
    assert any(row in (5, 6) and field == "parent_code" for row, field in by_row)  # cycle
    assert (1, "code") not in by_row
    assert _codes(await _list(api)) == ["P"]  # nothing imported


async def test_csv_import_and_its_row_errors(api: Api) -> None:
    csv_ok = "code,name,kind,parent_code\nV,Tỉnh V,province,\nV-1,Xã Võ Nhai,commune,V\n"
    response = await api.post(
        "/api/v1/units/import", content=csv_ok.encode(), headers={"Content-Type": "text/csv"}
    )
    assert response.status_code == 201, response.text
    assert _codes(await _list(api, q="vo nhai")) == ["V-1"]
    csv_bad = (
        "code,name,kind,parent_code\nV-2,Good,commune,V\nbad code!,Name,commune,V\nV-3,,planet,V\n"
    )
    body = problem(
        await api.post(
            "/api/v1/units/import", content=csv_bad.encode(), headers={"Content-Type": "text/csv"}
        ),
        422,
    )
    rows = sorted({e["row"] for e in body["errors"]})
    assert rows == [2, 3]
    assert "V-2" not in _codes(await _list(api))
    missing = problem(
        await api.post(
            "/api/v1/units/import",
            content=b"code,name\nX,Y\n",
            headers={"Content-Type": "text/csv"},
        ),
        422,
    )
    assert "kind" in missing["detail"]


async def test_idempotency_key_replays_the_first_result(api: Api) -> None:
    body = {"code": "P", "name": "Tỉnh", "kind": "province"}
    headers = {"Idempotency-Key": "create-P-1"}
    first = await api.post("/api/v1/units", json=body, headers=headers)
    assert first.status_code == 201
    replay = await api.post("/api/v1/units", json=body, headers=headers)
    assert replay.status_code == 201
    assert replay.json() == first.json()
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert len(await _list(api)) == 1
    other = await api.post("/api/v1/units", json={**body, "name": "Khác"}, headers=headers)
    assert "different request" in problem(other, 409)["detail"]


async def test_idempotency_keys_are_forgotten_after_a_day(api: Api, settings: Settings) -> None:
    headers = {"Idempotency-Key": "reused-next-week"}
    first = await api.post(
        "/api/v1/units", json={"code": "A", "name": "A", "kind": "other"}, headers=headers
    )
    assert first.status_code == 201
    engine = create_async_engine(settings.database_url)
    try:
        async with engine.begin() as connection:
            old = datetime.now(UTC) - timedelta(hours=25)
            await connection.execute(update(IdempotencyRecord).values(created_at=old))
    finally:
        await engine.dispose()
    # The same key now starts a new request instead of a 409 for a different body.
    second = await api.post(
        "/api/v1/units", json={"code": "B", "name": "B", "kind": "other"}, headers=headers
    )
    assert second.status_code == 201, second.text
    assert "Idempotent-Replayed" not in second.headers
    assert _codes(await _list(api)) == ["A", "B"]


async def test_json_import_schema_errors_name_the_row_and_field(api: Api) -> None:
    rows = [
        {"code": "A", "name": "A", "kind": "province"},
        {"code": "B", "name": "B", "kind": "planet"},
    ]
    body = problem(await api.post("/api/v1/units/import", json={"units": rows}), 422)
    assert body["errors"][0]["field"] == "units[1].kind"
    assert _codes(await _list(api)) == []
