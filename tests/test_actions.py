"""Corrective actions over HTTP: the whole path from a submitted finding to a verified closure,
every forbidden transition and actor, extensions and their cap, the due-date boundary in local
time, escalation over simulated days, notifications, and what unit heads see."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from litestar import Litestar

from inspection.jobs import JobReport, run_jobs
from tests import images
from tests.asgi import in_app_loop
from tests.helpers import Api, World, build_world, etag_of, finding_body, on_site, problem

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
DUE = date(2026, 12, 10)
# The tests run on a fixed clock: 1 December 2026, 10:00 in Hà Nội.
START = datetime(2026, 12, 1, 10, 0, tzinfo=ZONE)


def local(day: date, hour: int = 10, minute: int = 0) -> datetime:
    """A moment in the configured zone."""
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZONE)


class Case:
    """A submitted finding at C1 (criterion C02 requires evidence) and the people around it."""

    def __init__(self, api: Api, app: Litestar, world: World, finding_id: str) -> None:
        self.api, self.app, self.world, self.finding_id = api, app, world, finding_id

    def at(self, moment: datetime) -> None:
        """Move the app's clock."""
        self.app.state.clock = lambda: moment.astimezone(UTC)

    async def user(self, name: str) -> Api:
        return await self.api.as_user(name)

    async def create(self, by: str = "inspector", **changes: Any) -> dict[str, Any]:
        body = {
            "requirement": "Niêm yết công khai đầy đủ thủ tục hành chính tại Bộ phận một cửa",
            "unit_id": self.world.c1["id"],
            "assignee_id": self.world.users["head.c1"]["id"],
            "due_date": DUE.isoformat(),
            "priority": "high",
        }
        body.update(changes)
        user = await self.user(by)
        response = await user.post(f"/api/v1/findings/{self.finding_id}/actions", json=body)
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        return result

    async def move(
        self, user: Api, action_id: str, step: str, body: dict[str, Any] | None = None
    ) -> Any:
        url = f"/api/v1/actions/{action_id}"
        return await user.post(
            f"{url}/{step}", json=body or {}, headers={"If-Match": await etag_of(user, url)}
        )

    async def jobs(self, moment: datetime) -> JobReport:
        state = self.app.state
        return await in_app_loop(
            self.api.client, run_jobs, state.database, state.settings, moment.astimezone(UTC)
        )


async def case(
    api: Api, app: Litestar, world: World | None = None, target: dict[str, Any] | None = None
) -> Case:
    """A submitted finding at C1 (or at `target`, alone in its plan) of a new or given world."""
    world = world or await build_world(api)
    visit = await on_site(api, world, evidence_required=("C02",), target=target)
    member = await api.as_user("inspector2")
    finding_id = str(uuid.uuid4())
    created = await member.put(f"/api/v1/findings/{finding_id}", json=finding_body(visit))
    assert created.status_code == 201, created.text
    lead = await api.as_user("inspector")
    url = f"/api/v1/findings/{finding_id}"
    submitted = await lead.post(f"{url}/submit", headers={"If-Match": await etag_of(lead, url)})
    assert submitted.status_code == 200, submitted.text
    c = Case(api, app, world, finding_id)
    c.at(START)
    return c


async def upload(user: Api, action_id: str) -> str:
    evidence_id = str(uuid.uuid4())
    response = await user.put(
        f"/api/v1/actions/{action_id}/evidence/{evidence_id}",
        files={"file": ("after.jpg", images.jpeg(), "image/jpeg")},
    )
    assert response.status_code == 201, response.text
    return evidence_id


async def inbox(user: Api) -> dict[str, Any]:
    response = await user.get("/api/v1/me/notifications")
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_the_whole_path_to_a_verified_closure(api: Api, app: Litestar) -> None:
    c = await case(api, app)
    action = await c.create()
    assert action["status"] == "open" and action["overdue"] is False
    assert action["allowed_transitions"] == ["start", "extension", "cancel"]
    head = await c.user("head.c1")
    told = await inbox(head)
    assert told["unread"] == 1 and told["items"][0]["action_id"] == action["id"]
    mine = (await head.get("/api/v1/actions", params={"assignee": "me"})).json()["items"]
    assert [a["id"] for a in mine] == [action["id"]]
    visit = (await head.get(f"/api/v1/visits/{action['visit_id']}")).json()
    assert visit["open_actions"] == 1

    started = await c.move(head, action["id"], "start")
    assert started.status_code == 200 and started.json()["status"] == "in_progress"
    # The criterion requires evidence: a response without it is refused.
    bare = await c.move(head, action["id"], "respond", {"text": "Đã niêm yết"})
    assert problem(bare, 422)["errors"][0]["field"] == "evidence_ids"
    first_photo = await upload(head, action["id"])
    responded = await c.move(
        head, action["id"], "respond", {"text": "Đã niêm yết", "evidence_ids": [first_photo]}
    )
    assert responded.status_code == 200 and responded.json()["status"] == "submitted"

    inspector = await c.user("inspector2")  # a member of the original team
    returned = await c.move(
        inspector,
        action["id"],
        "verify",
        {"outcome": "returned", "reason": "Bảng niêm yết còn thiếu 3 thủ tục"},
    )
    assert returned.json()["status"] == "in_progress" and returned.json()["rounds"] == 1
    second_photo = await upload(head, action["id"])
    await c.move(
        head, action["id"], "respond", {"text": "Đã bổ sung", "evidence_ids": [second_photo]}
    )
    accepted = await c.move(inspector, action["id"], "verify", {"outcome": "accepted"})
    assert accepted.json()["status"] == "closed" and accepted.json()["allowed_transitions"] == []

    finding = (await head.get(f"/api/v1/findings/{c.finding_id}")).json()
    assert finding["status"] == "closed"
    visit = (await head.get(f"/api/v1/visits/{action['visit_id']}")).json()
    assert visit["open_actions"] == 0
    detail = (await head.get(f"/api/v1/actions/{action['id']}")).json()
    kinds = [e["kind"] for e in detail["timeline"]]
    assert kinds == ["created", "started", "responded", "verified", "responded", "verified"]
    assert detail["timeline"][2]["data"]["evidence_ids"] == [first_photo]
    assert detail["timeline"][3]["data"]["reason"] == "Bảng niêm yết còn thiếu 3 thủ tục"
    assert detail["timeline"][3]["actor"] == "inspector2"
    evidence = (await head.get(f"/api/v1/actions/{action['id']}/evidence")).json()
    assert {e["id"] for e in evidence} == {first_photo, second_photo}
    assert evidence[0]["action_id"] == action["id"]
    # The head was told of each verification.
    titles = [n["kind"] for n in (await inbox(head))["items"]]
    assert titles.count("verified") == 2


async def test_forbidden_transitions_and_actors(api: Api, app: Litestar) -> None:
    c = await case(api, app)
    member = await c.user("inspector2")
    refused = await member.post(
        f"/api/v1/findings/{c.finding_id}/actions",
        json={
            "requirement": "x",
            "unit_id": c.world.c1["id"],
            "assignee_id": c.world.users["head.c1"]["id"],
            "due_date": DUE.isoformat(),
        },
    )
    problem(refused, 403)  # a member, not the team lead
    lead = await c.user("inspector")
    bad_unit = await lead.post(
        f"/api/v1/findings/{c.finding_id}/actions",
        json={
            "requirement": "x",
            "unit_id": c.world.c2["id"],
            "assignee_id": c.world.users["head.c1"]["id"],
            "due_date": DUE.isoformat(),
        },
    )
    assert problem(bad_unit, 422)["errors"][0]["field"] == "unit_id"
    not_a_head = await lead.post(
        f"/api/v1/findings/{c.finding_id}/actions",
        json={
            "requirement": "x",
            "unit_id": c.world.c1["id"],
            "assignee_id": c.world.users["planner"]["id"],
            "due_date": DUE.isoformat(),
        },
    )
    assert problem(not_a_head, 422)["errors"][0]["field"] == "assignee_id"
    past = await lead.post(
        f"/api/v1/findings/{c.finding_id}/actions",
        json={
            "requirement": "x",
            "unit_id": c.world.c1["id"],
            "assignee_id": c.world.users["head.c1"]["id"],
            "due_date": "2026-11-30",
        },
    )
    assert problem(past, 422)["errors"][0]["field"] == "due_date"

    action = await c.create(by="planner")
    head = await c.user("head.c1")
    url = f"/api/v1/actions/{action['id']}"
    problem(await lead.post(f"{url}/start", headers={"If-Match": '"1"'}), 403)  # not assignee
    problem(await head.post(f"{url}/start"), 428)
    problem(await head.post(f"{url}/start", headers={"If-Match": '"9"'}), 412)
    early = await c.move(head, action["id"], "respond", {"text": "x"})
    body = problem(early, 409)
    assert body["current_status"] == "open" and body["allowed_transitions"] == [
        "start",
        "extension",
        "cancel",
    ]
    await c.move(head, action["id"], "start")
    problem(await c.move(head, action["id"], "start"), 409)
    problem(await c.move(head, action["id"], "verify", {"outcome": "accepted"}), 403)
    problem(await c.move(lead, action["id"], "cancel", {"reason": "x"}), 403)  # not a planner
    returned_without_reason = await c.move(lead, action["id"], "verify", {"outcome": "returned"})
    problem(returned_without_reason, 409)  # not submitted yet: the status is checked first
    planner = await c.user("planner")
    cancelled = await c.move(planner, action["id"], "cancel", {"reason": "Trùng yêu cầu khác"})
    assert cancelled.json()["status"] == "cancelled"
    for step, body_ in (("start", {}), ("extension", {"due_date": "2027-01-01", "reason": "x"})):
        problem(await c.move(head, action["id"], step, body_), 409)
    # With every action cancelled the finding is closed; a new action reopens it.
    assert (await lead.get(f"/api/v1/findings/{c.finding_id}")).json()["status"] == "closed"
    await c.create()
    assert (await lead.get(f"/api/v1/findings/{c.finding_id}")).json()["status"] == "submitted"
    # Someone else's unit sees nothing.
    await api.create_user("head.c2", [("unit_head", c.world.c2["id"])], c.world.c2["id"])
    other = await c.user("head.c2")
    problem(await other.get(url), 404)
    assert (await other.get("/api/v1/actions")).json()["items"] == []
    problem(await other.post(f"{url}/comments", json={"text": "?"}), 404)


async def test_extensions_move_the_due_date_up_to_the_cap(api: Api, app: Litestar) -> None:
    c = await case(api, app)
    action = await c.create()
    head, planner = await c.user("head.c1"), await c.user("planner")
    asked = await c.move(
        head, action["id"], "extension", {"due_date": "2026-12-20", "reason": "Chờ in bảng"}
    )
    assert asked.json()["pending_extension"] == {"due_date": "2026-12-20", "reason": "Chờ in bảng"}
    assert "extension/decide" in asked.json()["allowed_transitions"]
    again = await c.move(head, action["id"], "extension", {"due_date": "2026-12-21", "reason": "x"})
    problem(again, 409)  # one request at a time
    # A pending request does not stop the clock.
    c.at(local(DUE + timedelta(days=1)))
    assert (await head.get(f"/api/v1/actions/{action['id']}")).json()["overdue"] is True
    problem(await c.move(head, action["id"], "extension/decide", {"approve": True}), 403)
    approved = await c.move(planner, action["id"], "extension/decide", {"approve": True})
    assert approved.json()["due_date"] == "2026-12-20" and approved.json()["overdue"] is False
    assert approved.json()["original_due_date"] == DUE.isoformat()
    await c.move(head, action["id"], "extension", {"due_date": "2026-12-25", "reason": "x"})
    refused = await c.move(planner, action["id"], "extension/decide", {"approve": False})
    assert refused.json()["due_date"] == "2026-12-20" and refused.json()["extensions_approved"] == 1
    await c.move(head, action["id"], "extension", {"due_date": "2026-12-28", "reason": "x"})
    await c.move(planner, action["id"], "extension/decide", {"approve": True})
    capped = await c.move(
        head, action["id"], "extension", {"due_date": "2027-01-15", "reason": "x"}
    )
    assert problem(capped, 409)["extensions_approved"] == 2
    timeline = (await head.get(f"/api/v1/actions/{action['id']}")).json()["timeline"]
    decided = [e["data"] for e in timeline if e["kind"] == "extension_decided"]
    assert [d["approved"] for d in decided] == [True, False, True]
    assert decided[0]["previous_due_date"] == DUE.isoformat()


async def test_due_date_falls_due_at_the_end_of_the_local_day(api: Api, app: Litestar) -> None:
    c = await case(api, app)
    action = await c.create()
    planner = await c.user("planner")
    url = f"/api/v1/actions/{action['id']}"
    c.at(local(DUE, 23, 59))
    last_minute = (await planner.get(url)).json()
    assert last_minute["overdue"] is False and last_minute["days_overdue"] == 0
    listed = await planner.get("/api/v1/actions", params={"overdue": "true"})
    assert listed.json()["items"] == []
    c.at(local(DUE + timedelta(days=1), 0, 0))
    midnight = (await planner.get(url)).json()
    assert midnight["overdue"] is True and midnight["days_overdue"] == 1
    assert midnight["escalation_level"] == 1
    listed = await planner.get("/api/v1/actions", params={"overdue": "true"})
    assert [a["id"] for a in listed.json()["items"]] == [action["id"]]
    not_overdue = await planner.get("/api/v1/actions", params={"overdue": "false"})
    assert not_overdue.json()["items"] == []


async def test_escalation_and_reminders_are_raised_exactly_once(api: Api, app: Litestar) -> None:
    c = await case(api, app)
    action = await c.create()
    head, head_d1 = await c.user("head.c1"), await c.user("head.d1")
    planner, leader = await c.user("planner"), await c.user("leader")
    before = {name: (await inbox(u))["unread"] for name, u in (("head", head), ("d1", head_d1))}

    soon = await c.jobs(local(DUE - timedelta(days=3)))
    assert soon.reminders == 1
    assert (await c.jobs(local(DUE - timedelta(days=2)))).reminders == 0  # already reminded
    day1 = await c.jobs(local(DUE + timedelta(days=1), 0, 5))
    assert day1.escalations == 1
    assert (await c.jobs(local(DUE + timedelta(days=1), 8))).escalations == 0  # ran again
    day7 = await c.jobs(local(DUE + timedelta(days=7)))
    assert day7.escalations == 1
    day30 = await c.jobs(local(DUE + timedelta(days=30)))
    assert day30.escalations == 1
    assert (await c.jobs(local(DUE + timedelta(days=31)))).escalations == 0

    kinds = [n["kind"] for n in (await inbox(head))["items"]]
    assert kinds.count("due_soon") == 1 and kinds.count("escalated") == 1
    assert (await inbox(head))["unread"] == before["head"] + 2
    d1_items = (await inbox(head_d1))["items"]
    assert [n["data"]["level"] for n in d1_items if n["kind"] == "escalated"] == [2]
    assert [
        n["data"]["level"] for n in (await inbox(planner))["items"] if n["kind"] == "escalated"
    ] == [2]
    assert [
        n["data"]["level"] for n in (await inbox(leader))["items"] if n["kind"] == "escalated"
    ] == [3]
    timeline = (await head.get(f"/api/v1/actions/{action['id']}")).json()["timeline"]
    assert [e["data"]["level"] for e in timeline if e["kind"] == "escalated"] == [1, 2, 3]
    # Reading marks them; marking again is harmless.
    first = (await inbox(head))["items"][0]
    read = await head.post(f"/api/v1/me/notifications/{first['id']}/read")
    assert read.status_code == 200 and read.json()["read_at"] is not None
    items = (await inbox(head))["items"]
    assert items[-1]["id"] == first["id"]  # unread first
    unread = (await inbox(head))["unread"]
    assert unread >= 1
    marked = (await head.post("/api/v1/me/notifications/read")).json()["marked"]
    assert marked == unread and (await inbox(head))["unread"] == 0
    problem(await head_d1.post(f"/api/v1/me/notifications/{first['id']}/read"), 404)


async def escalations(user: Api) -> dict[str, list[int]]:
    """The escalation levels in a user's inbox, per action."""
    levels: dict[str, list[int]] = {}
    for item in (await inbox(user))["items"]:
        if item["kind"] == "escalated":
            levels.setdefault(item["action_id"], []).append(item["data"]["level"])
    return {action: sorted(found) for action, found in levels.items()}


async def set_active(api: Api, user_id: str, active: bool) -> None:
    url = f"/api/v1/users/{user_id}"
    changed = await api.patch(
        url, json={"is_active": active}, headers={"If-Match": await etag_of(api, url)}
    )
    assert changed.status_code == 200, changed.text


async def test_level_two_goes_to_the_assignees_superior_in_three_levels(
    api: Api, app: Litestar
) -> None:
    """Found in the field trial: level 2 went to the head of the action's parent unit. For an
    action on a one-stop shop assigned to the commune head, that is the same commune head; for
    an action a district head took on, a commune head below them. Level 2 is for the superior:
    walking up, the first unit with active heads above every unit the assignee heads."""
    world = await build_world(api)
    shop = await api.create_unit(
        "P-D1-C1-1C", "Bộ phận một cửa xã La Hiên", "one_stop_shop", world.c1["id"]
    )
    head_p = await api.create_user("head.p", [("unit_head", world.province["id"])])
    c = await case(api, app, world)
    # C1 has no active head for a while: the district head answers for it (the head concerned).
    await set_active(api, world.users["head.c1"]["id"], False)
    by_district = await c.create(assignee_id=world.users["head.d1"]["id"])
    # A new commune head is appointed; the shop has no head, so the commune's head answers for it.
    head_c1b = await api.create_user("head.c1b", [("unit_head", world.c1["id"])], world.c1["id"])
    by_commune = await c.create(unit_id=shop["id"], assignee_id=head_c1b["id"])
    # The head concerned is the nearest head: not the district's head while C1 has one.
    user = await c.user("inspector")
    refused = await user.post(
        f"/api/v1/findings/{c.finding_id}/actions",
        json={
            "requirement": "x",
            "unit_id": shop["id"],
            "assignee_id": world.users["head.d1"]["id"],
            "due_date": DUE.isoformat(),
            "priority": "low",
        },
    )
    assert problem(refused, 422)["errors"][0]["field"] == "assignee_id"

    report = await c.jobs(local(DUE + timedelta(days=7)))
    assert report.escalations == 4  # levels 1 and 2 of both
    commune, district = by_commune["id"], by_district["id"]
    assert await escalations(await c.user("head.c1b")) == {commune: [1]}
    assert await escalations(await c.user("head.d1")) == {district: [1], commune: [2]}
    assert await escalations(await c.user("head.p")) == {district: [2]}
    assert await escalations(await c.user("planner")) == {commune: [2], district: [2]}
    assert head_p["id"] not in {world.users["head.d1"]["id"], head_c1b["id"]}


async def test_level_two_in_the_two_tier_tree(api: Api, app: Litestar) -> None:
    """Since 2025-07-01 communes sit right under the province: a commune head's superior is the
    province's head; an action the province's head took on (the commune had none) goes to the
    planners alone at level 2."""
    world = await build_world(api)
    commune = await api.create_unit("P-C9", "Xã Phú Lạc", "commune", world.province["id"])
    head_c9 = await api.create_user("head.c9", [("unit_head", commune["id"])], commune["id"])
    await api.create_user("head.p", [("unit_head", world.province["id"])])
    c = await case(api, app, world, target=commune)
    by_commune = await c.create(unit_id=commune["id"], assignee_id=head_c9["id"])
    await set_active(api, head_c9["id"], False)
    head_p_id = next(
        u["id"]
        for u in (await api.get("/api/v1/users", params={"limit": 500})).json()["items"]
        if u["username"] == "head.p"
    )
    by_province = await c.create(unit_id=commune["id"], assignee_id=head_p_id)
    await c.jobs(local(DUE + timedelta(days=7)))
    assert await escalations(await c.user("head.p")) == {
        by_commune["id"]: [2],
        by_province["id"]: [1],
    }
    assert await escalations(await c.user("planner")) == {
        by_commune["id"]: [2],
        by_province["id"]: [2],
    }
    assert await escalations(await c.user("head.d1")) == {}


async def test_comments_and_the_unit_heads_view(api: Api, app: Litestar) -> None:
    c = await case(api, app)
    action = await c.create()
    head_d1 = await c.user("head.d1")  # the parent unit's head sees its communes' actions
    commented = await head_d1.post(
        f"/api/v1/actions/{action['id']}/comments", json={"text": "Đề nghị xã khẩn trương"}
    )
    assert commented.status_code == 201 and commented.json()["kind"] == "comment"
    head = await c.user("head.c1")
    told = [n for n in (await inbox(head))["items"] if n["kind"] == "comment"]
    assert told and told[0]["data"]["text"] == "Đề nghị xã khẩn trương"
    under = await head_d1.get("/api/v1/actions", params={"under": c.world.d1["id"]})
    assert [a["id"] for a in under.json()["items"]] == [action["id"]]
    plan = (await head_d1.get(f"/api/v1/plans/{action['plan_id']}")).json()
    assert plan["open_actions"] == 1


async def test_concurrent_verifications_with_the_same_if_match_one_wins(
    parallel_client: Any, app: Litestar
) -> None:
    """Two inspectors verify the same response at once from the same version: exactly one
    decision is recorded, the other gets 412 and must read the new state."""
    import anyio

    from tests.conftest import ADMIN_PASSWORD

    api = Api(parallel_client)
    await api.sign_in("admin", ADMIN_PASSWORD)
    c = await case(api, app)
    action = await c.create()
    head = await c.user("head.c1")
    await c.move(head, action["id"], "start")
    photo = await upload(head, action["id"])
    await c.move(head, action["id"], "respond", {"text": "Xong", "evidence_ids": [photo]})
    url = f"/api/v1/actions/{action['id']}"
    inspectors = [await c.user("inspector"), await c.user("inspector2")]
    tag = await etag_of(inspectors[0], url)
    outcomes = ({"outcome": "accepted"}, {"outcome": "returned", "reason": "Chưa đủ"})
    statuses: list[int] = []

    async def verify(index: int) -> None:
        response = await inspectors[index].post(
            f"{url}/verify", json=outcomes[index], headers={"If-Match": tag}
        )
        statuses.append(response.status_code)

    async with anyio.create_task_group() as group:
        for index in range(2):
            group.start_soon(verify, index)
    assert sorted(statuses) == [200, 412]
    timeline = (await head.get(url)).json()["timeline"]
    assert [e["kind"] for e in timeline].count("verified") == 1


async def test_comments_are_posted_once_per_key_and_never_race_the_action(
    parallel_client: Any, app: Litestar
) -> None:
    """Found under load: comments ignored `Idempotency-Key` (three posts, three comments), and
    on PostgreSQL 8 of 10 parallel comments got 412: each one bumped the action's version. A
    comment is posted once per key and leaves the action (its version, its ETag) alone."""
    import anyio

    from tests.conftest import ADMIN_PASSWORD

    api = Api(parallel_client)
    await api.sign_in("admin", ADMIN_PASSWORD)
    c = await case(api, app)
    action = await c.create()
    url = f"/api/v1/actions/{action['id']}"
    head, inspector = await c.user("head.c1"), await c.user("inspector")
    before = await etag_of(head, url)
    key = {"Idempotency-Key": f"comment-{uuid.uuid4()}"}
    body = {"text": "Đề nghị gửi ảnh chụp bảng niêm yết"}
    first = await head.post(f"{url}/comments", json=body, headers=key)
    assert first.status_code == 201, first.text
    for _ in range(2):
        again = await head.post(f"{url}/comments", json=body, headers=key)
        assert again.status_code == 201 and again.json() == first.json()
        assert again.headers["Idempotent-Replayed"] == "true"
    problem(await head.post(f"{url}/comments", json={"text": "khác"}, headers=key), 409)
    statuses: list[int] = []

    async def comment(n: int) -> None:
        user = head if n % 2 else inspector
        posted = await user.post(f"{url}/comments", json={"text": f"Ý kiến {n}"})
        statuses.append(posted.status_code)

    async with anyio.create_task_group() as group:
        for n in range(10):
            group.start_soon(comment, n)
    assert statuses == [201] * 10
    timeline = (await head.get(url)).json()["timeline"]
    texts = [e["data"]["text"] for e in timeline if e["kind"] == "comment"]
    assert texts.count(body["text"]) == 1 and len(texts) == 11
    assert await etag_of(head, url) == before  # the action itself did not change
    started = await head.post(f"{url}/start", headers={"If-Match": before})
    assert started.status_code == 200, started.text


async def test_nothing_of_an_unannounced_visit_reaches_the_unit_before_check_in(
    api: Api, app: Litestar
) -> None:
    """Actions need a submitted finding, so they cannot exist before check-in; the unit's head
    sees no actions, counts or notifications of a planned unannounced visit all the same."""
    from tests.helpers import create_checklist, plan_body

    world = await build_world(api)
    planner = await api.as_user("planner")
    checklist = await create_checklist(api)
    created = await planner.post(
        "/api/v1/plans", json=plan_body(world, checklist["id"], kind="unannounced")
    )
    approved = await planner.post(
        f"/api/v1/plans/{created.json()['id']}/approve",
        headers={"If-Match": created.headers["ETag"]},
    )
    assert approved.status_code == 200
    head = await api.as_user("head.c1")
    assert (await head.get("/api/v1/actions")).json()["items"] == []
    assert (await head.get("/api/v1/actions", params={"overdue": "true"})).json()["items"] == []
    assert (await inbox(head))["items"] == []
    problem(await head.get(f"/api/v1/plans/{created.json()['id']}"), 404)
    # An attempt to assign an action on a finding of that plan fails before anything exists.
    lead = await api.as_user("inspector")
    attempt = await lead.post(
        f"/api/v1/findings/{uuid.uuid4()}/actions",
        json={
            "requirement": "x",
            "unit_id": world.c1["id"],
            "assignee_id": world.users["head.c1"]["id"],
            "due_date": "2026-12-31",
        },
    )
    problem(attempt, 404)


async def test_cli_jobs_run(api: Api, app: Litestar, settings: Any, monkeypatch: Any) -> None:
    """`inspection jobs run` runs against the configured database and reports what it did."""
    import anyio.to_thread
    from click.testing import CliRunner

    from inspection.cli import main
    from tests.test_evidence import _cli_env

    c = await case(api, app)
    c.at(datetime.now(UTC))  # the command uses the real clock: so does this action
    await c.create(due_date=(datetime.now(ZONE).date() + timedelta(days=30)).isoformat())
    _cli_env(monkeypatch, settings)
    result = await anyio.to_thread.run_sync(lambda: CliRunner().invoke(main, ["jobs", "run"]))
    assert result.exit_code == 0, result.output
    assert "jobs: 0 escalations, 0 reminders" in result.output  # due in a month


async def test_a_retried_assignment_creates_one_action(api: Api, app: Litestar) -> None:
    """A tablet or browser that retries the POST with its Idempotency-Key gets the first action
    back, and the unit is told once."""
    c = await case(api, app)
    lead = await c.user("inspector")
    body = {
        "requirement": "Công khai số điện thoại đường dây nóng",
        "unit_id": c.world.c1["id"],
        "assignee_id": c.world.users["head.c1"]["id"],
        "due_date": DUE.isoformat(),
    }
    url = f"/api/v1/findings/{c.finding_id}/actions"
    key = {"Idempotency-Key": "assign-0001"}
    first = await lead.post(url, json=body, headers=key)
    again = await lead.post(url, json=body, headers=key)
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    problem(await lead.post(url, json={**body, "priority": "urgent"}, headers=key), 409)
    listed = await lead.get("/api/v1/actions", params={"finding": c.finding_id})
    assert len(listed.json()["items"]) == 1
    assert (await inbox(await c.user("head.c1")))["unread"] == 1


async def test_who_attaches_evidence_to_an_action_and_list_filters(api: Api, app: Litestar) -> None:
    """Only the assignee adds evidence, and only before the response is submitted (multipart and
    tus alike); the list filters narrow as they say."""
    import base64

    c = await case(api, app)
    action = await c.create()
    later = await c.create(due_date="2026-12-20", priority="low")
    head, lead = await c.user("head.c1"), await c.user("inspector")
    problem(
        await lead.put(
            f"/api/v1/actions/{action['id']}/evidence/{uuid.uuid4()}",
            files={"file": ("a.jpg", images.jpeg(), "image/jpeg")},
        ),
        403,
    )
    await c.move(head, action["id"], "start")

    def meta(**pairs: str) -> str:
        return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in pairs.items())

    photo = images.jpeg()
    evidence_id = str(uuid.uuid4())
    tus = {"Tus-Resumable": "1.0.0"}
    created = await head.post(
        "/api/v1/uploads",
        headers={
            **tus,
            "Upload-Length": str(len(photo)),
            "Upload-Metadata": meta(action_id=action["id"], evidence_id=evidence_id),
        },
    )
    assert created.status_code == 201, created.text
    sent = await head.patch(
        created.headers["Location"],
        content=photo,
        headers={**tus, "Content-Type": "application/offset+octet-stream", "Upload-Offset": "0"},
    )
    assert sent.status_code == 204, sent.text
    stored = (await head.get(f"/api/v1/evidence/{evidence_id}")).json()
    assert stored["action_id"] == action["id"] and stored["finding_id"] is None
    await c.move(head, action["id"], "respond", {"text": "Xong", "evidence_ids": [evidence_id]})
    late = await head.put(
        f"/api/v1/actions/{action['id']}/evidence/{uuid.uuid4()}",
        files={"file": ("b.jpg", images.jpeg(quality=60), "image/jpeg")},
    )
    assert problem(late, 409)["current_status"] == "submitted"
    # Filters.
    planner = await c.user("planner")

    async def ids(**params: str) -> list[str]:
        response = await planner.get("/api/v1/actions", params=params)
        assert response.status_code == 200, response.text
        return [a["id"] for a in response.json()["items"]]

    assert await ids() == [action["id"], later["id"]]  # soonest due first
    assert await ids(status="submitted") == [action["id"]]
    assert await ids(status="open") == [later["id"]]
    assert await ids(due_before="2026-12-11") == [action["id"]]
    assert await ids(unit=c.world.c1["id"]) == [action["id"], later["id"]]
    assert await ids(unit=c.world.c2["id"]) == []
    assert await ids(under=c.world.d2["id"]) == []


async def test_an_approved_extension_rearms_reminder_and_escalation(
    api: Api, app: Litestar
) -> None:
    c = await case(api, app)
    action = await c.create()
    head, planner = await c.user("head.c1"), await c.user("planner")
    assert (await c.jobs(local(DUE - timedelta(days=2)))).reminders == 1
    assert (await c.jobs(local(DUE + timedelta(days=1)))).escalations == 1
    c.at(local(DUE + timedelta(days=1)))
    new_due = DUE + timedelta(days=10)
    await c.move(
        head, action["id"], "extension", {"due_date": new_due.isoformat(), "reason": "Chờ vật tư"}
    )
    await c.move(planner, action["id"], "extension/decide", {"approve": True})
    # The new deadline: nothing overdue now, a new reminder before it, escalation from level 1.
    assert (await c.jobs(local(DUE + timedelta(days=2)))).escalations == 0
    assert (await c.jobs(local(new_due - timedelta(days=1)))).reminders == 1
    assert (await c.jobs(local(new_due + timedelta(days=1)))).escalations == 1
    timeline = (await head.get(f"/api/v1/actions/{action['id']}")).json()["timeline"]
    levels = [
        (e["data"]["level"], e["data"]["due_date"]) for e in timeline if e["kind"] == "escalated"
    ]
    assert levels == [(1, DUE.isoformat()), (1, new_due.isoformat())]
    reminders = [n for n in (await inbox(head))["items"] if n["kind"] == "due_soon"]
    assert sorted(n["data"]["due_date"] for n in reminders) == [
        DUE.isoformat(),
        new_due.isoformat(),
    ]
