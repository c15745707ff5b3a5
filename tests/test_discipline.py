"""Discipline proposals: the rules table against the law on both sides of 1 July 2025, the 422s
that list the allowed measures, decide/withdraw/extend with If-Match, deadlines, repeat offences
across spellings of a name, who sees a proposal, and idempotent creation."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from itertools import product
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from litestar import Litestar

from inspection.discipline import rules
from inspection.discipline.rules import Measure, OfficialStatus
from inspection.settings import ConfigurationError, LimitationYears, load_settings
from tests.helpers import Api, World, build_world, etag_of, finding_body, on_site, problem

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
TODAY = datetime(2026, 4, 15, 10, 0, tzinfo=ZONE)
BEFORE = date(2025, 6, 30)  # last day of the earlier decrees
AFTER = date(2025, 7, 1)  # Decree 172/2025/NĐ-CP

# --- the table, against the law as written out here independently --------------------------

R, W, SS, D, RP, DS, RO = (
    "reprimand",
    "warning",
    "salary_step_reduction",
    "demotion",
    "removal_from_post",
    "dismissal",
    "removal_from_office",
)
# (status, holds a management post, side of 1 July 2025) → measures the law allows.
EXPECTED: dict[tuple[str, bool, str], set[str]] = {
    # cán bộ: Law on CBCC Art. 78 (2019) and Decree 172 alike; cách chức needs a post.
    ("official", False, "before"): {R, W, RO},
    ("official", True, "before"): {R, W, RP, RO},
    ("official", False, "after"): {R, W, RO},
    ("official", True, "after"): {R, W, RP, RO},
    # công chức: Decree 112/2020 (as amended by 71/2023) before, Decree 172/2025 after.
    ("civil_servant", False, "before"): {R, W, SS, DS},
    ("civil_servant", True, "before"): {R, W, D, RP, DS},
    ("civil_servant", False, "after"): {R, W, DS},
    ("civil_servant", True, "after"): {R, W, RP, DS},
    # viên chức: Law on Viên chức Art. 52 and Decree 112/2020 on both sides.
    ("public_employee", False, "before"): {R, W, DS},
    ("public_employee", True, "before"): {R, W, RP, DS},
    ("public_employee", False, "after"): {R, W, DS},
    ("public_employee", True, "after"): {R, W, RP, DS},
}
CASES = list(product(OfficialStatus, (False, True), ("before", "after"), Measure))


@pytest.mark.parametrize(
    ("status", "holds", "side", "measure"),
    CASES,
    ids=[f"{s.value}-{'post' if h else 'nopost'}-{d}-{m.value}" for s, h, d, m in CASES],
)
def test_each_status_measure_and_date_side_against_the_table(
    status: OfficialStatus, holds: bool, side: str, measure: Measure
) -> None:
    day = BEFORE if side == "before" else AFTER
    allowed = rules.allowed_measures(status, holds, day)
    assert (measure.value in allowed) is (measure.value in EXPECTED[(status.value, holds, side)])


def test_allowed_measures_are_listed_lightest_first_with_their_sources() -> None:
    assert rules.allowed_measures(OfficialStatus.CIVIL_SERVANT, True, BEFORE) == [R, W, D, RP, DS]
    assert rules.allowed_measures(OfficialStatus.CIVIL_SERVANT, True, AFTER) == [R, W, RP, DS]
    assert any(
        "172/2025" in s for s in rules.legal_sources(OfficialStatus.CIVIL_SERVANT, False, AFTER)
    )
    assert not any(
        "172/2025" in s for s in rules.legal_sources(OfficialStatus.PUBLIC_EMPLOYEE, False, AFTER)
    )
    # Before the table starts there is nothing: the service refuses such dates.
    assert rules.allowed_measures(OfficialStatus.CIVIL_SERVANT, False, date(2020, 6, 30)) == []


def test_every_row_has_a_source_and_rows_of_one_kind_do_not_overlap() -> None:
    for row in rules.RULES:
        assert row.source and (row.effective_to is None or row.effective_from <= row.effective_to)
    for a, b in product(rules.RULES, repeat=2):
        if a is not b and (a.status, a.post, a.measure) == (b.status, b.post, b.measure):
            assert (a.effective_to or date.max) < b.effective_from or (
                b.effective_to or date.max
            ) < a.effective_from


def test_deadline_arithmetic() -> None:
    assert rules.processing_due_on(date(2026, 3, 12), extended=False) == date(2026, 6, 10)
    assert rules.processing_due_on(date(2026, 3, 12), extended=True) == date(2026, 8, 9)
    assert rules.limitation_ends_on(date(2026, 3, 10), 5) == date(2031, 3, 10)
    assert rules.limitation_ends_on(date(2024, 2, 29), 5) == date(2029, 2, 28)
    assert LimitationYears().for_measure("reprimand") == 5
    assert LimitationYears().for_measure("dismissal") == 10


def test_limitation_years_setting(tmp_path: Path) -> None:
    base = {"INSPECTION_DATA_DIR": str(tmp_path)}
    assert load_settings(base).discipline_limitation_years == LimitationYears(5, 10)
    assert load_settings(base).repeat_threshold == 2
    env = {**base, "INSPECTION_DISCIPLINE_LIMITATION_YEARS": "other=12, reprimand=3"}
    assert load_settings(env).discipline_limitation_years == LimitationYears(3, 12)
    for bad in ("reprimand", "fine=3", "reprimand=0", "other=ten", "other=1,other=2"):
        with pytest.raises(ConfigurationError) as caught:
            load_settings({**base, "INSPECTION_DISCIPLINE_LIMITATION_YEARS": bad})
        assert caught.value.variable == "INSPECTION_DISCIPLINE_LIMITATION_YEARS"
    with pytest.raises(ConfigurationError):
        load_settings({**base, "INSPECTION_REPEAT_THRESHOLD": "0"})


# --- over HTTP --------------------------------------------------------------------------------


class Case:
    """Submitted findings at C1 of an unannounced plan (C1 checked in, C3 not) and the people."""

    def __init__(self, api: Api, app: Litestar, world: World, visit: dict[str, Any]) -> None:
        self.api, self.app, self.world, self.visit = api, app, world, visit
        self.finding_id = ""

    def at(self, moment: datetime) -> None:
        self.app.state.clock = lambda: moment.astimezone(UTC)

    async def user(self, name: str) -> Api:
        return await self.api.as_user(name)

    async def finding(self, officials: list[dict[str, Any]] | None = None, **kw: Any) -> str:
        """A finding at C1 naming `officials`, submitted by the lead."""
        member = await self.user("inspector2")
        finding_id = str(uuid.uuid4())
        body = finding_body(self.visit, **kw)
        if officials is not None:
            body["officials"] = officials
        created = await member.put(f"/api/v1/findings/{finding_id}", json=body)
        assert created.status_code == 201, created.text
        lead = await self.user("inspector")
        url = f"/api/v1/findings/{finding_id}"
        done = await lead.post(f"{url}/submit", headers={"If-Match": await etag_of(lead, url)})
        assert done.status_code == 200, done.text
        return finding_id

    def body(self, **changes: Any) -> dict[str, Any]:
        official = {
            "name": "Nguyễn Văn A",
            "position": "Công chức một cửa",
            "unit_id": self.world.c1["id"],
            "status": "civil_servant",
            "holds_management_post": False,
        }
        official.update(changes.pop("official", {}))
        body: dict[str, Any] = {
            "official": official,
            "violation": "Yêu cầu bổ sung giấy tờ ngoài quy định",
            "violation_date": "2026-03-10",
            "detected_date": "2026-03-12",
            "proposed_measure": "reprimand",
            "legal_basis": "Nghị định 172/2025/NĐ-CP",
        }
        body.update(changes)
        return body

    async def propose_raw(
        self, by: str = "inspector", finding_id: str | None = None, **changes: Any
    ) -> Any:
        user = await self.user(by)
        return await user.post(
            f"/api/v1/findings/{finding_id or self.finding_id}/discipline-proposals",
            json=self.body(**changes),
        )

    async def propose(self, by: str = "inspector", **changes: Any) -> dict[str, Any]:
        response = await self.propose_raw(by, **changes)
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        return result

    async def move(self, user: Api, proposal_id: str, step: str, body: dict[str, Any]) -> Any:
        url = f"/api/v1/discipline-proposals/{proposal_id}"
        return await user.post(
            f"{url}/{step}", json=body, headers={"If-Match": await etag_of(user, url)}
        )


async def case(api: Api, app: Litestar) -> Case:
    world = await build_world(api)
    visit = await on_site(api, world)
    c = Case(api, app, world, visit)
    c.finding_id = await c.finding()
    c.at(TODAY)
    return c


DECISION = {
    "outcome": "decided",
    "measure": "warning",
    "decision_number": "15/QĐ-UBND",
    "decision_date": "2026-04-01",
}


async def test_propose_then_decide_with_if_match_and_audit(api: Api, app: Litestar) -> None:
    c = await case(api, app)
    proposal = await c.propose()
    assert proposal["status"] == "proposed"
    assert proposal["allowed_measures"] == ["reprimand", "warning", "dismissal"]
    assert proposal["processing_due_on"] == "2026-06-10"
    assert proposal["limitation_ends_on"] == "2031-03-10"
    assert proposal["allowed_transitions"] == ["decide", "withdraw", "extend"]
    assert proposal["official"]["name"] == "Nguyễn Văn A"
    leader = await c.user("leader")
    url = f"/api/v1/discipline-proposals/{proposal['id']}"
    problem(await leader.post(f"{url}/decide", json=DECISION), 428)
    problem(await leader.post(f"{url}/decide", json=DECISION, headers={"If-Match": '"99"'}), 412)
    decided = await c.move(leader, proposal["id"], "decide", DECISION)
    assert decided.status_code == 200, decided.text
    body = decided.json()
    assert body["status"] == "decided" and body["allowed_transitions"] == []
    assert body["outcome"]["measure"] == "warning"
    assert body["outcome"]["decision_number"] == "15/QĐ-UBND"
    # The limitation now follows the decided measure (10 years for a warning).
    assert body["limitation_ends_on"] == "2036-03-10"
    assert decided.headers["ETag"] == f'"{body["version"]}"'
    again = problem(await c.move(leader, proposal["id"], "decide", DECISION), 409)
    assert again["current_status"] == "decided"
    problem(
        await c.move(await c.user("inspector"), proposal["id"], "withdraw", {"reason": "x"}), 409
    )
    log = await api.get("/api/v1/audit", params={"entity": "discipline_proposal"})
    assert log.status_code == 200, log.text
    actions = [e["action"] for e in log.json()["items"]]
    assert sorted(actions) == ["decided", "proposed"]


async def test_measures_outside_the_table_are_422_naming_the_allowed_ones(
    api: Api, app: Litestar
) -> None:
    c = await case(api, app)
    refused = problem(await c.propose_raw(proposed_measure="salary_step_reduction"), 422)
    assert refused["errors"][0]["field"] == "proposed_measure"
    assert refused["allowed_measures"] == ["reprimand", "warning", "dismissal"]
    assert "reprimand, warning, dismissal" in refused["errors"][0]["message"]
    # The same measure the day before Decree 172 took effect is allowed.
    before = await c.propose(
        proposed_measure="salary_step_reduction",
        violation_date="2025-06-30",
        detected_date="2026-03-12",
    )
    assert before["allowed_measures"] == [
        "reprimand",
        "warning",
        "salary_step_reduction",
        "dismissal",
    ]
    unknown = problem(await c.propose_raw(proposed_measure="flogging"), 422)
    assert unknown["errors"][0]["field"] == "proposed_measure" and unknown["allowed_measures"]
    holder = problem(
        await c.propose_raw(proposed_measure="demotion", official={"holds_management_post": True}),
        422,
    )
    assert holder["allowed_measures"] == ["reprimand", "warning", "removal_from_post", "dismissal"]
    no_post = problem(await c.propose_raw(proposed_measure="removal_from_post"), 422)
    assert "removal_from_post" not in no_post["allowed_measures"]
    # The decided measure may differ from the proposal's, but must be allowed too.
    proposal = await c.propose()
    leader = await c.user("leader")
    wrong = problem(
        await c.move(leader, proposal["id"], "decide", {**DECISION, "measure": "demotion"}), 422
    )
    assert wrong["errors"][0]["field"] == "measure"
    assert wrong["allowed_measures"] == ["reprimand", "warning", "dismissal"]
    missing = problem(
        await c.move(
            leader, proposal["id"], "decide", {"outcome": "decided", "measure": "warning"}
        ),
        422,
    )
    assert missing["errors"][0]["field"] == "decision_number"
    problem(await c.move(leader, proposal["id"], "decide", {"outcome": "not_pursued"}), 422)
    ok = await c.move(
        leader, proposal["id"], "decide", {"outcome": "not_pursued", "reason": "Đã khắc phục"}
    )
    assert ok.status_code == 200 and ok.json()["outcome"]["reason"] == "Đã khắc phục"


async def test_bad_input_names_the_field(api: Api, app: Litestar) -> None:
    c = await case(api, app)
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"detected_date": "2026-03-01"}, 422, "detected_date"),
        ({"violation_date": "2026-05-01", "detected_date": "2026-05-02"}, 422, "violation_date"),
        ({"official": {"unit_id": c.world.c3["id"]}}, 422, "official.unit_id"),
        ({"official": {"status": "contractor"}}, 400, "official.status"),
        ({"violation_date": "2026-13-01"}, 400, "violation_date"),
        ({"violation_date": "2019-01-01", "detected_date": "2026-03-12"}, 422, "violation_date"),
        # Reprimand: 5 years from 1 August 2020 ended on 1 August 2025.
        ({"violation_date": "2020-08-01", "detected_date": "2026-03-12"}, 422, "violation_date"),
    ]
    for changes, status, field in cases:
        body = problem(await c.propose_raw(**changes), status)
        fields = [e["field"] for e in body.get("errors", [])]
        assert field in fields, (changes, body)
    # A warning for the 2020 violation is still within its 10 years.
    late = await c.propose(
        violation_date="2020-08-01", detected_date="2026-03-12", proposed_measure="warning"
    )
    assert late["limitation_ends_on"] == "2030-08-01"


async def test_who_may_propose_and_on_which_findings(api: Api, app: Litestar) -> None:
    c = await case(api, app)
    problem(await c.propose_raw(by="inspector2"), 403)  # a member, not the lead
    problem(await c.propose_raw(by="head.c1"), 403)
    assert (await c.propose_raw(by="planner")).status_code == 201
    member = await c.user("inspector2")
    draft_id = str(uuid.uuid4())
    created = await member.put(f"/api/v1/findings/{draft_id}", json=finding_body(c.visit))
    assert created.status_code == 201
    problem(await c.propose_raw(finding_id=draft_id), 409)
    problem(await c.propose_raw(finding_id=str(uuid.uuid4())), 404)


async def test_withdraw_by_the_proposer_only(api: Api, app: Litestar) -> None:
    c = await case(api, app)
    proposal = await c.propose()
    url = f"/api/v1/discipline-proposals/{proposal['id']}"
    lead = await c.user("inspector")
    problem(await lead.post(f"{url}/withdraw", json={"reason": "Nhầm người"}), 428)
    problem(await c.move(await c.user("planner"), proposal["id"], "withdraw", {"reason": "x"}), 403)
    problem(await c.move(await c.user("head.c1"), proposal["id"], "decide", DECISION), 403)
    problem(await c.move(lead, proposal["id"], "decide", DECISION), 403)
    done = await c.move(lead, proposal["id"], "withdraw", {"reason": "Nhầm người"})
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "withdrawn"
    assert done.json()["outcome"] == {
        "outcome": "withdrawn",
        "at": done.json()["outcome"]["at"],
        "by": c.world.users["inspector"]["id"],
        "reason": "Nhầm người",
    }
    problem(await c.move(await c.user("leader"), proposal["id"], "decide", DECISION), 409)


async def test_deadlines_extension_and_overdue(api: Api, app: Litestar) -> None:
    c = await case(api, app)
    proposal = await c.propose(proposed_measure="warning")
    assert proposal["processing_due_on"] == "2026-06-10"
    assert proposal["processing_overdue"] is False
    assert proposal["limitation_ends_on"] == "2036-03-10"
    url = f"/api/v1/discipline-proposals/{proposal['id']}"
    leader = await c.user("leader")
    c.at(datetime(2026, 6, 10, 23, 59, tzinfo=ZONE))
    assert (await leader.get(url)).json()["processing_overdue"] is False
    c.at(datetime(2026, 6, 11, 0, 1, tzinfo=ZONE))
    assert (await leader.get(url)).json()["processing_overdue"] is True
    problem(await c.move(await c.user("inspector"), proposal["id"], "extend", {"reason": "x"}), 403)
    extended = await c.move(leader, proposal["id"], "extend", {"reason": "Cần xác minh thêm"})
    assert extended.status_code == 200, extended.text
    body = extended.json()
    assert body["processing_due_on"] == (date(2026, 3, 12) + timedelta(days=150)).isoformat()
    assert body["processing_extended"] is True and body["processing_overdue"] is False
    assert body["allowed_transitions"] == ["decide", "withdraw"]
    problem(await c.move(leader, proposal["id"], "extend", {"reason": "again"}), 409)
    # A decision after the limitation period of its measure is refused.
    late = await c.move(
        leader, proposal["id"], "decide", {**DECISION, "decision_date": "2026-03-11"}
    )
    assert problem(late, 422)["errors"][0]["field"] == "decision_date"


async def test_repeats_across_spellings_of_a_name(api: Api, app: Litestar) -> None:
    c = await case(api, app)
    leader = await c.user("leader")
    # The first finding names "Nguyễn Văn A"; a proposal on it is the same incident.
    first = await c.propose(official={"name": "nguyen  van A"})
    assert first["repeat"] == {
        "count": 1,
        "flagged": False,
        "threshold": 2,
        "measure_in_force": None,
    }
    second_finding = await c.finding(officials=[{"name": "NGUYỄN VĂN   A", "position": None}])
    url = f"/api/v1/discipline-proposals/{first['id']}"
    assert (await leader.get(url)).json()["repeat"]["count"] == 2
    assert (await leader.get(url)).json()["repeat"]["flagged"] is True
    # Someone else of the same name in another unit is another person.
    shop = await api.create_unit(
        "P-D1-C1-MC", "Bộ phận một cửa La Hiên", "one_stop_shop", c.world.c1["id"]
    )
    other = await c.propose(official={"name": "Nguyễn Văn A", "unit_id": shop["id"]})
    assert other["repeat"]["count"] == 1 and other["repeat"]["flagged"] is False
    # A decided measure is in force for the next proposal about the same person.
    assert (await c.move(leader, first["id"], "decide", DECISION)).status_code == 200
    lead = await c.user("inspector")
    response = await lead.post(
        f"/api/v1/findings/{second_finding}/discipline-proposals",
        json=c.body(official={"name": "Nguyen Van A"}, proposed_measure="dismissal"),
    )
    assert response.status_code == 201, response.text
    repeat = response.json()["repeat"]
    assert repeat["count"] == 2 and repeat["flagged"] is True
    assert repeat["measure_in_force"] == {
        "proposal_id": first["id"],
        "measure": "warning",
        "decision_number": "15/QĐ-UBND",
        "decision_date": "2026-04-01",
        "in_force_until": "2027-04-01",
    }
    # The decided proposal does not report itself as in force.
    assert (await leader.get(url)).json()["repeat"]["measure_in_force"] is None
    # Twelve months on, the old finding and the measure have left the window.
    c.at(datetime(2027, 4, 2, 9, 0, tzinfo=ZONE))
    later = (await leader.get(f"/api/v1/discipline-proposals/{response.json()['id']}")).json()
    assert later["repeat"] == {
        "count": 0,
        "flagged": False,
        "threshold": 2,
        "measure_in_force": None,
    }


async def test_list_filters_search_and_pages(api: Api, app: Litestar) -> None:
    c = await case(api, app)
    a = await c.propose()
    b = await c.propose(
        official={"name": "Trần Thị Bích", "holds_management_post": True},
        proposed_measure="removal_from_post",
        detected_date="2026-03-20",
    )
    leader = await c.user("leader")

    async def ids(**params: Any) -> list[str]:
        response = await leader.get("/api/v1/discipline-proposals", params=params)
        assert response.status_code == 200, response.text
        return [p["id"] for p in response.json()["items"]]

    assert await ids() == [b["id"], a["id"]]
    assert await ids(q="tran thi  BICH") == [b["id"]]
    assert await ids(q="nguyễn") == [a["id"]]
    assert await ids(measure="removal_from_post") == [b["id"]]
    assert await ids(status="decided") == []
    assert await ids(**{"from": "2026-03-15"}) == [b["id"]]
    assert await ids(**{"to": "2026-03-15"}) == [a["id"]]
    assert await ids(unit_id=c.world.c1["id"]) == [b["id"], a["id"]]
    assert await ids(under=c.world.d1["id"]) == [b["id"], a["id"]]
    assert await ids(under=c.world.d2["id"]) == []
    page = (await leader.get("/api/v1/discipline-proposals", params={"limit": 1})).json()
    assert [p["id"] for p in page["items"]] == [b["id"]] and page["next_cursor"]
    rest = await ids(limit=1, cursor=page["next_cursor"])
    assert rest == [a["id"]]
    problem(await leader.get("/api/v1/discipline-proposals", params={"measure": "flogging"}), 400)
    problem(await leader.get("/api/v1/discipline-proposals", params={"cursor": "nope"}), 422)


async def test_who_sees_a_proposal(api: Api, app: Litestar) -> None:
    c = await case(api, app)
    w = c.world
    await api.create_user("head.c2", [("unit_head", w.c2["id"])], w.c2["id"])
    await api.create_user("head.c3", [("unit_head", w.c3["id"])], w.c3["id"])
    await api.create_user("planner.d2", [("planner", w.d2["id"])], w.d2["id"])
    await api.create_user("leader.d1", [("leader", w.d1["id"])], w.d1["id"])
    shop = await api.create_unit(
        "P-D1-C1-MC", "Bộ phận một cửa La Hiên", "one_stop_shop", w.c1["id"]
    )
    proposal = await c.propose()
    in_shop = await c.propose(official={"name": "Lê Văn C", "unit_id": shop["id"]})
    sees = ["leader", "leader.d1", "planner", "inspector", "inspector2", "head.c1"]
    blind = ["head.d1", "head.c2", "head.c3", "planner.d2", "admin.d1"]
    for name in sees + blind:
        user = await c.user(name)
        for p in (proposal, in_shop):
            response = await user.get(f"/api/v1/discipline-proposals/{p['id']}")
            if name in sees:
                assert response.status_code == 200, (name, response.text)
            else:
                problem(response, 404)
        listed = (await user.get("/api/v1/discipline-proposals")).json()["items"]
        expected = {proposal["id"], in_shop["id"]} if name in sees else set()
        assert {p["id"] for p in listed} == expected, name
    # The shop has no head of its own: the commune's head is the head concerned; once the shop
    # gets a head, that head sees its official and the commune's head no longer does.
    await api.create_user("head.shop", [("unit_head", shop["id"])], shop["id"])
    shop_head = await c.user("head.shop")
    assert (await shop_head.get(f"/api/v1/discipline-proposals/{in_shop['id']}")).status_code == 200
    problem(await shop_head.get(f"/api/v1/discipline-proposals/{proposal['id']}"), 404)
    head_c1 = await c.user("head.c1")
    problem(await head_c1.get(f"/api/v1/discipline-proposals/{in_shop['id']}"), 404)


async def test_an_idempotent_retry_creates_one_proposal(api: Api, app: Litestar) -> None:
    c = await case(api, app)
    lead = await c.user("inspector")
    url = f"/api/v1/findings/{c.finding_id}/discipline-proposals"
    key = {"Idempotency-Key": "tablet-42"}
    first = await lead.post(url, json=c.body(), headers=key)
    second = await lead.post(url, json=c.body(), headers=key)
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] == second.json()["id"]
    assert second.headers.get("Idempotent-Replayed") == "true"
    problem(await lead.post(url, json=c.body(proposed_measure="warning"), headers=key), 409)
    listed = (await lead.get("/api/v1/discipline-proposals")).json()["items"]
    assert len(listed) == 1
