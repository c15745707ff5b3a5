"""Leadership reports over HTTP: every figure against an independent count of what the test made,
for the province and a district; the seal of unannounced visits compared on whole reports, the
way test_confidentiality.py does; bad input; the register streamed in bounded memory on both
back-ends. Downloads (CSV/XLSX/PDF) are at the end, in their own section, waiting for the
renderers (`inspection.reports.render`)."""

from __future__ import annotations

import csv
import io
import statistics
import unicodedata
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from litestar import Litestar
from sqlalchemy import and_, event, insert, select, text

from inspection.access import seal
from inspection.access.principal import GrantScope, Principal
from inspection.db.engine import (
    Database,
    ReportsDatabase,
    create_database,
    create_engine,
    create_reports_database,
)
from inspection.findings import repository as findings_repository
from inspection.findings.models import Category, Finding, Severity
from inspection.plans.models import Plan
from inspection.reports import documents
from inspection.reports.periods import Period
from inspection.reports.render import csv as report_csv
from inspection.reports.repository import CHUNK_ROWS, ReportRepository
from inspection.settings import Settings
from inspection.units.auth import load_principal, password_stamp
from inspection.units.models import User
from inspection.units.roles import Role
from inspection.web.http import content_disposition
from tests.asgi import in_app_loop
from tests.helpers import (
    POSITION,
    Api,
    World,
    build_world,
    create_checklist,
    etag_of,
    finding_body,
    on_site,
    plan_body,
    problem,
)

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
# The reports are read on 15 June 2026, 10:00 in Hà Nội; things were made in March and April.
NOW = datetime(2026, 6, 15, 10, 0, tzinfo=ZONE)
MARCH = datetime(2026, 3, 1, 10, 0, tzinfo=ZONE)


def set_clock(app: Litestar, moment: datetime) -> None:
    """Move the app's clock."""
    app.state.clock = lambda: moment.astimezone(UTC)


# --- building a world with known records --------------------------------------------------------


@dataclass
class Model:
    """What the test made, as plain records, to count independently of the service."""

    # (unit key, kind, checked in, concluded, score, local day, plan id)
    visits: list[dict[str, Any]] = field(default_factory=list)
    # (unit key, category, severity, counted)
    findings: list[dict[str, Any]] = field(default_factory=list)
    # (unit key, due, status, closed_at, created_at)
    actions: list[dict[str, Any]] = field(default_factory=list)


class Maker:
    """Plans, visits, findings and actions through the API, each recorded in `model`."""

    def __init__(self, api: Api, app: Litestar, world: World) -> None:
        self.api, self.app, self.world = api, app, world
        self.units = {
            "P": world.province,
            "SNV": world.snv,
            "D1": world.d1,
            "D2": world.d2,
            "C1": world.c1,
            "C2": world.c2,
            "C3": world.c3,
        }
        self.model = Model()
        self.users: dict[str, Api] = {}

    async def user(self, name: str) -> Api:
        if name not in self.users:
            self.users[name] = await self.api.as_user(name)
        return self.users[name]

    def key(self, unit_id: str) -> str:
        return next(k for k, u in self.units.items() if u["id"] == unit_id)

    async def plan(
        self, kind: str, targets: list[tuple[str, str, str]], approve: bool = True
    ) -> dict[str, Any]:
        """A plan of the province visiting [(unit key, window start, end)]."""
        planner = await self.user("planner")
        checklist = await create_checklist(self.api)
        body = plan_body(
            self.world,
            checklist["id"],
            kind=kind,
            targets=[(self.units[k], s, e) for k, s, e in targets],
        )
        body["period_start"] = min(s for _, s, _ in targets)
        body["period_end"] = max(e for _, _, e in targets)
        created = await planner.post("/api/v1/plans", json=body)
        assert created.status_code == 201, created.text
        plan: dict[str, Any] = created.json()
        if approve:
            approved = await planner.post(
                f"/api/v1/plans/{plan['id']}/approve", headers={"If-Match": created.headers["ETag"]}
            )
            assert approved.status_code == 200, approved.text
            plan = approved.json()
            for visit in plan["visits"]:
                self.model.visits.append(
                    {
                        "id": visit["id"],
                        "unit": self.key(visit["unit_id"]),
                        "kind": kind,
                        "plan": plan["id"],
                        "checked_in": False,
                        "concluded": False,
                        "score": None,
                        "day": date.fromisoformat(visit["window_start"]),
                    }
                )
        return plan

    def visit(self, plan: dict[str, Any], unit_key: str) -> dict[str, Any]:
        unit_id = self.units[unit_key]["id"]
        visit: dict[str, Any] = next(v for v in plan["visits"] if v["unit_id"] == unit_id)
        return visit

    def _visit_record(self, visit_id: str) -> dict[str, Any]:
        return next(v for v in self.model.visits if v["id"] == visit_id)

    async def check_in(self, visit: dict[str, Any], at: str) -> None:
        inspector = await self.user("inspector")
        url = f"/api/v1/visits/{visit['id']}"
        checked = await inspector.post(
            f"{url}/check-in",
            json={"position": POSITION, "at": at},
            headers={"If-Match": await etag_of(inspector, url)},
        )
        assert checked.status_code == 200, checked.text
        record = self._visit_record(visit["id"])
        record["checked_in"] = True
        record["day"] = datetime.fromisoformat(at).astimezone(ZONE).date()

    async def conclude(self, visit: dict[str, Any], answers: dict[str, str]) -> float:
        inspector = await self.user("inspector")
        url = f"/api/v1/visits/{visit['id']}"
        for code, result in answers.items():
            answered = await inspector.put(f"{url}/responses/{code}", json={"result": result})
            assert answered.status_code == 201, answered.text
        concluded = await inspector.post(
            f"{url}/conclude",
            json={"conclusion": "Đơn vị cơ bản thực hiện tốt."},
            headers={"If-Match": await etag_of(inspector, url)},
        )
        assert concluded.status_code == 200, concluded.text
        score: float = concluded.json()["score"]
        record = self._visit_record(visit["id"])
        record["concluded"], record["score"] = True, score
        return score

    async def finding(
        self,
        visit: dict[str, Any],
        category: str,
        severity: str,
        observed_at: str,
        *,
        submit: bool = True,
        dismiss: bool = False,
    ) -> str:
        member, lead = await self.user("inspector2"), await self.user("inspector")
        finding_id = str(uuid.uuid4())
        body = finding_body(visit, category=category, severity=severity, observed_at=observed_at)
        body["title"] = f"Phát hiện {category} {severity}"
        created = await member.put(f"/api/v1/findings/{finding_id}", json=body)
        assert created.status_code == 201, created.text
        url = f"/api/v1/findings/{finding_id}"
        if submit:
            done = await lead.post(f"{url}/submit", headers={"If-Match": await etag_of(lead, url)})
            assert done.status_code == 200, done.text
        if dismiss:
            done = await lead.post(
                f"{url}/dismiss",
                json={"reason": "trùng lặp"},
                headers={"If-Match": await etag_of(lead, url)},
            )
            assert done.status_code == 200, done.text
        self.model.findings.append(
            {
                "id": finding_id,
                "unit": self.key(visit["unit_id"]),
                "visit": visit["id"],
                "kind": self._visit_record(visit["id"])["kind"],
                "category": category,
                "severity": severity,
                "observed": datetime.fromisoformat(observed_at).astimezone(ZONE).date(),
                "counted": submit and not dismiss,
            }
        )
        return finding_id

    async def action(self, finding_id: str, unit_key: str, assignee: str, due: date) -> str:
        lead = await self.user("inspector")
        body = {
            "requirement": "Chấn chỉnh ngay",
            "unit_id": self.units[unit_key]["id"],
            "assignee_id": self.world.users[assignee]["id"],
            "due_date": due.isoformat(),
            "priority": "high",
        }
        created = await lead.post(f"/api/v1/findings/{finding_id}/actions", json=body)
        assert created.status_code == 201, created.text
        action: dict[str, Any] = created.json()
        self.model.actions.append(
            {"id": action["id"], "unit": unit_key, "finding": finding_id, "due": due}
        )
        return str(action["id"])

    async def close(self, action_id: str, assignee: str, at: datetime) -> None:
        """Start, respond and verify at `at` (the app's clock)."""
        set_clock(self.app, at)
        head, inspector = await self.user(assignee), await self.user("inspector")
        url = f"/api/v1/actions/{action_id}"
        for user, step, body in (
            (head, "start", {}),
            (head, "respond", {"text": "Đã khắc phục"}),
            (inspector, "verify", {"outcome": "accepted"}),
        ):
            moved = await user.post(
                f"{url}/{step}", json=body, headers={"If-Match": await etag_of(user, url)}
            )
            assert moved.status_code == 200, moved.text

    async def refresh_actions(self) -> None:
        """The actions' status and times as the API shows them (for the independent count)."""
        leader = await self.user("leader")
        for record in self.model.actions:
            response = await leader.get(f"/api/v1/actions/{record['id']}")
            assert response.status_code == 200, response.text
            shown = response.json()
            record["status"] = shown["status"]
            record["created_at"] = datetime.fromisoformat(shown["created_at"])
            record["closed_at"] = (
                datetime.fromisoformat(shown["closed_at"]) if shown.get("closed_at") else None
            )


async def standard_case(api: Api, app: Litestar) -> Maker:
    """A scheduled plan (C1 checked in and concluded, C3 planned) and an unannounced one (C2
    checked in, C3 sealed), findings of every status, actions open, overdue, closed on time and
    late; the clock then at `NOW`."""
    world = await build_world(api)
    m = Maker(api, app, world)
    set_clock(app, MARCH)
    scheduled = await m.plan(
        "scheduled", [("C1", "2026-03-10", "2026-03-12"), ("C3", "2026-03-20", "2026-03-22")]
    )
    c1 = m.visit(scheduled, "C1")
    await m.check_in(c1, "2026-03-10T09:00:00+07:00")
    f1 = await m.finding(c1, "extra_documents_requested", "major", "2026-03-10T09:41:00+07:00")
    f2 = await m.finding(c1, "late_dossiers", "minor", "2026-03-10T23:30:00+07:00")
    await m.finding(c1, "equipment", "minor", "2026-03-10T10:00:00+07:00", submit=False)
    await m.finding(c1, "other", "observation", "2026-03-10T10:05:00+07:00", dismiss=True)
    await m.conclude(c1, {"C01": "pass", "C02": "fail", "C03": "pass"})
    await m.action(f1, "C1", "head.c1", date(2026, 3, 20))  # overdue by NOW
    await m.action(f2, "C1", "head.c1", date(2026, 7, 31))  # open, not yet due
    on_time = await m.action(f1, "C1", "head.c1", date(2026, 3, 25))
    late = await m.action(f2, "C1", "head.c1", date(2026, 3, 18))
    await m.close(on_time, "head.c1", datetime(2026, 3, 25, 22, 0, tzinfo=ZONE))
    await m.close(late, "head.c1", datetime(2026, 3, 27, 9, 0, tzinfo=ZONE))
    set_clock(app, MARCH)
    unannounced = await m.plan(
        "unannounced", [("C2", "2026-04-01", "2026-04-03"), ("C3", "2026-04-05", "2026-04-07")]
    )
    c2 = m.visit(unannounced, "C2")
    await m.check_in(c2, "2026-04-01T09:00:00+07:00")
    f5 = await m.finding(c2, "absent_or_late", "critical", "2026-04-01T09:30:00+07:00")
    await m.action(f5, "C2", "head.d1", date(2026, 4, 30))  # overdue by NOW
    # A draft plan counts nowhere.
    await m.plan("scheduled", [("C2", "2026-05-01", "2026-05-02")], approve=False)
    set_clock(app, NOW)
    await m.refresh_actions()
    return m


SUBTREE = {
    "P": {"P", "SNV", "D1", "D2", "C1", "C2", "C3"},
    "SNV": {"SNV"},
    "D1": {"D1", "C1", "C2"},
    "D2": {"D2", "C3"},
    "C1": {"C1"},
    "C2": {"C2"},
    "C3": {"C3"},
}
CHILDREN = {"P": ["D1", "D2", "SNV"], "D1": ["C1", "C2"], "D2": ["C3"]}


def expected_summary(m: Maker, scope: str, first: date, last: date) -> dict[str, Any]:
    """The summary counted from the model, for a viewer who sees everything in `scope`."""
    today = NOW.date()
    visits = [
        v for v in m.model.visits if v["unit"] in SUBTREE[scope] and first <= v["day"] <= last
    ]
    findings = [
        f
        for f in m.model.findings
        if f["counted"] and f["unit"] in SUBTREE[scope] and first <= f["observed"] <= last
    ]
    counted_ids = {
        f["id"] for f in m.model.findings if f["counted"] and first <= f["observed"] <= last
    }
    actions = [
        a for a in m.model.actions if a["unit"] in SUBTREE[scope] and a["finding"] in counted_ids
    ]
    open_statuses = {"open", "in_progress", "submitted"}

    def overdue(a: dict[str, Any]) -> bool:
        return a["status"] in {"open", "in_progress"} and a["due"] < today

    closed = [a for a in actions if a["status"] == "closed"]
    on_time = [a for a in closed if a["closed_at"].astimezone(ZONE).date() <= a["due"]]
    durations = [(a["closed_at"] - a["created_at"]).total_seconds() / 86400 for a in closed]

    def inspections(kind: str) -> dict[str, int]:
        mine = [v for v in visits if v["kind"] == kind]
        return {
            "plans": len({v["plan"] for v in mine}),
            "visits": len(mine),
            "concluded": sum(v["concluded"] for v in mine),
        }

    def unit_row(key: str) -> dict[str, Any]:
        unit = m.units[key]
        vs = [v for v in visits if v["unit"] in SUBTREE[key]]
        scores = [v["score"] for v in vs if v["concluded"] and v["score"] is not None]
        acts = [a for a in actions if a["unit"] in SUBTREE[key]]
        return {
            "unit_id": unit["id"],
            "code": unit["code"],
            "name": unit["name"],
            "visits": len(vs),
            "findings": sum(f["unit"] in SUBTREE[key] for f in findings),
            "open_actions": sum(a["status"] in open_statuses for a in acts),
            "overdue_actions": sum(overdue(a) for a in acts),
            "average_score": round(sum(scores) / len(scores), 2) if scores else None,
        }

    return {
        "period": {"from": first.isoformat(), "to": last.isoformat()},
        "scope": {"unit_id": m.units[scope]["id"], "name": m.units[scope]["name"]},
        "generated_at": NOW.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "inspections": {
            "scheduled": inspections("scheduled"),
            "unannounced": inspections("unannounced"),
        },
        "units_inspected": len({v["unit"] for v in visits if v["checked_in"]}),
        "findings": {
            "total": len(findings),
            "by_category": {
                c.value: sum(f["category"] == c.value for f in findings) for c in Category
            },
            "by_severity": {
                s.value: sum(f["severity"] == s.value for f in findings) for s in Severity
            },
        },
        "actions": {
            "total": len(actions),
            "open": sum(a["status"] in open_statuses for a in actions),
            "overdue": sum(overdue(a) for a in actions),
            "closed": len(closed),
            "closed_on_time": len(on_time),
            "closed_on_time_rate": round(len(on_time) / len(closed), 4) if closed else None,
            "median_days_to_close": round(statistics.median(durations), 1) if durations else None,
        },
        "by_unit": [unit_row(k) for k in CHILDREN.get(scope, [])],
    }


async def report(user: Api, path: str, **params: str) -> dict[str, Any]:
    response = await user.get(f"/api/v1/reports/{path}", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# --- the figures ----------------------------------------------------------------------------------


async def test_summary_counts_what_was_made_for_the_province_and_a_district(
    api: Api, app: Litestar
) -> None:
    m = await standard_case(api, app)
    leader = await m.user("leader")
    year = (date(2026, 1, 1), date(2026, 12, 31))
    province = await report(leader, "summary")
    assert province == expected_summary(m, "P", *year)
    # The figures the model gives are the ones expected by hand, so the model is not wrong in
    # the same way as the service.
    assert province["inspections"] == {
        "scheduled": {"plans": 1, "visits": 2, "concluded": 1},
        "unannounced": {"plans": 1, "visits": 2, "concluded": 0},
    }
    assert province["units_inspected"] == 2
    assert province["findings"]["total"] == 3
    assert province["actions"] | {"median_days_to_close": None} == {
        "total": 5,
        "open": 3,
        "overdue": 2,
        "closed": 2,
        "closed_on_time": 1,
        "closed_on_time_rate": 0.5,
        "median_days_to_close": None,
    }
    assert [u["code"] for u in province["by_unit"]] == ["P-D1", "P-D2", "P-SNV"]

    district = await report(leader, "summary", under=m.units["D1"]["id"])
    assert district == expected_summary(m, "D1", *year)
    assert district["by_unit"][0]["average_score"] == round((1 + 3) / 6, 2)
    # The district's head sees exactly what the leader sees of the district.
    assert await report(await m.user("head.d1"), "summary") == district
    # A planner of the province sees what the leader sees.
    assert await report(await m.user("planner"), "summary") == province

    march = {"from": "2026-03-01", "to": "2026-03-31"}
    assert await report(leader, "summary", **march) == expected_summary(
        m, "P", date(2026, 3, 1), date(2026, 3, 31)
    )
    # A finding at 23:30 local on 10 March is 16:30 UTC: it belongs to 10 March, not the 11th.
    day = await report(leader, "summary", **{"from": "2026-03-10", "to": "2026-03-10"})
    assert day["findings"]["total"] == 2
    assert (await report(leader, "summary", **{"from": "2026-03-11", "to": "2026-03-11"}))[
        "findings"
    ]["total"] == 0


async def principal_of(database: Database, username: str) -> Principal:
    """The user's principal, loaded as a request loads it."""
    async with database.read_session() as session:
        user = (
            await session.execute(
                select(User.id, User.password_changed_at).where(User.username == username)
            )
        ).one()
    principal = await load_principal(database, user.id, password_stamp(user[1]))
    assert principal is not None
    return principal


async def _whole_plans_compared(database: Database, names: list[str]) -> dict[str, int]:
    """For each user: the findings (and the officials' names) selected through the subquery of
    plans seen whole and through the list of their ids, asserted equal; the lists' lengths, and
    the number of plans."""
    seen_whole: dict[str, int] = {}
    async with database.read_session() as session:
        for name in names:
            principal = await principal_of(database, name)
            statement = seal.whole_plans_statement(principal)
            assert statement is not None  # every grant here has a unit
            whole = list(await session.scalars(statement))
            seen_whole[name] = len(whole)
            for subquery, listed in (
                (
                    findings_repository.readable(principal),
                    findings_repository.readable(principal, whole),
                ),
                (
                    and_(
                        findings_repository.readable(principal),
                        findings_repository.officials_readable(principal),
                    ),
                    and_(
                        findings_repository.readable(principal, whole),
                        findings_repository.officials_readable(principal, whole),
                    ),
                ),
            ):
                by_subquery = set(await session.scalars(select(Finding.id).where(subquery)))
                by_list = set(await session.scalars(select(Finding.id).where(listed)))
                assert by_list == by_subquery, name
        seen_whole["(every plan)"] = len(list(await session.scalars(select(Plan.id))))
    return seen_whole


async def _jit(reports: ReportsDatabase) -> str:
    async with reports.session() as session, session.begin():
        return str(await session.scalar(text("SHOW jit")))


async def test_the_plans_read_once_select_what_the_subquery_selects(
    api: Api, app: Litestar
) -> None:
    """`access.seal.in_whole_plan` with the ids `whole_plans_statement` read (what the reports pass)
    keeps exactly the findings, and the officials' names, of the subquery it replaces; and the
    reports' engine runs without JIT on PostgreSQL."""
    m = await standard_case(api, app)
    await api.create_user("planner.d1", [("planner", m.units["D1"]["id"])], m.units["D1"]["id"])
    await api.create_user("leader.d2", [("leader", m.units["D2"]["id"])], m.units["D2"]["id"])
    names = ["planner", "leader", "planner.d1", "leader.d2", "inspector", "head.c1", "head.d1"]
    seen_whole = await in_app_loop(api.client, _whole_plans_compared, app.state.database, names)
    # The comparison covered readers who see plans whole and readers who see none.
    plans = seen_whole["(every plan)"]
    assert seen_whole["planner"] == seen_whole["leader"] == plans >= 2
    assert 0 < seen_whole["leader.d2"] < plans and seen_whole["inspector"] > 0
    assert seen_whole["head.c1"] == seen_whole["head.d1"] == 0
    if app.state.reports_database.dialect == "postgresql":
        assert await in_app_loop(api.client, _jit, app.state.reports_database) == "off"


async def test_scorecard_and_register(api: Api, app: Litestar) -> None:
    m = await standard_case(api, app)
    leader = await m.user("leader")
    card = await report(leader, f"units/{m.units['D1']['id']}/scorecard")
    expected = expected_summary(m, "D1", date(2026, 1, 1), date(2026, 12, 31))
    assert card["unit"] == {"unit_id": m.units["D1"]["id"], "code": "P-D1", "name": "Huyện Võ Nhai"}
    assert card["findings"] == expected["findings"]
    assert card["actions"] == expected["actions"]
    assert [(v["unit_code"], v["date"], v["plan_kind"], v["score"]) for v in card["visits"]] == [
        ("P-D1-C1", "2026-03-10", "scheduled", round(4 / 6, 4)),
        ("P-D1-C2", "2026-04-01", "unannounced", None),
    ]
    assert card["average_score"] == round(4 / 6, 2)
    # No proposals in this case: every status and measure listed with zeros
    # (tests/test_discipline_report.py counts real ones).
    assert card["discipline"]["total"] == 0
    assert set(card["discipline"]["by_status"].values()) == {0}
    assert [m["measure"] for m in card["discipline"]["by_measure"]][:2] == ["reprimand", "warning"]

    rows = await report(leader, "findings")
    counted = sorted(
        (f for f in m.model.findings if f["counted"]), key=lambda f: (f["observed"], f["id"])
    )
    assert {r["finding_id"] for r in rows["items"]} == {f["id"] for f in counted}
    assert [r["observed_at"] for r in rows["items"]] == sorted(
        r["observed_at"] for r in rows["items"]
    )
    by_id = {r["finding_id"]: r for r in rows["items"]}
    for f in counted:
        row = by_id[f["id"]]
        assert (row["unit_code"], row["plan_kind"], row["category"], row["severity"]) == (
            m.units[f["unit"]]["code"],
            f["kind"],
            f["category"],
            f["severity"],
        )
        open_actions = sum(
            a["finding"] == f["id"] and a["status"] in {"open", "in_progress", "submitted"}
            for a in m.model.actions
        )
        assert row["open_actions"] == open_actions
    # Pages walk the same rows.
    seen: list[str] = []
    params: dict[str, str] = {"limit": "1"}
    while True:
        page = await report(leader, "findings", **params)
        seen += [r["finding_id"] for r in page["items"]]
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert seen == [r["finding_id"] for r in rows["items"]]
    # The head of C1 reads the register of C1 only.
    head = await report(await m.user("head.c1"), "findings")
    assert {r["unit_code"] for r in head["items"]} == {"P-D1-C1"}


# --- access and the seal ----------------------------------------------------------------------------


async def test_a_unit_head_reads_their_subtree_only(api: Api, app: Litestar) -> None:
    m = await standard_case(api, app)
    head = await m.user("head.c1")
    mine = await report(head, "summary")
    assert mine["scope"] == {"unit_id": m.units["C1"]["id"], "name": "Xã La Hiên"}
    assert mine == expected_summary(m, "C1", date(2026, 1, 1), date(2026, 12, 31))
    assert mine["by_unit"] == []
    for other in ("C2", "C3", "D1", "P"):
        problem(
            await head.get("/api/v1/reports/summary", params={"under": m.units[other]["id"]}), 404
        )
        problem(await head.get(f"/api/v1/reports/units/{m.units[other]['id']}/scorecard"), 404)
        problem(
            await head.get("/api/v1/reports/findings", params={"under": m.units[other]["id"]}), 404
        )
    unknown = str(uuid.uuid4())
    assert (await head.get(f"/api/v1/reports/units/{unknown}/scorecard")).json()["detail"] == (
        f"unit {unknown} not found"
    )
    # The neighbouring district's head never reads D1's subtree.
    await api.create_user("head.d2", [("unit_head", m.units["D2"]["id"])], m.units["D2"]["id"])
    d2 = await report(await api.as_user("head.d2"), "summary")
    assert d2["findings"]["total"] == 0 and d2["actions"]["total"] == 0
    assert [u["code"] for u in d2["by_unit"]] == ["P-D2-C3"]
    # C3's visits: the scheduled one (approved: announced) but not the sealed unannounced one.
    assert d2["inspections"]["scheduled"]["visits"] == 1
    assert d2["inspections"]["unannounced"]["visits"] == 0


async def test_nothing_of_an_unannounced_visit_reaches_a_unit_head_before_check_in(
    api: Api, app: Litestar
) -> None:
    world = await build_world(api)
    set_clock(app, MARCH)
    m = Maker(api, app, world)
    heads = {name: await m.user(name) for name in ("head.c1", "head.d1")}
    leader = await m.user("leader")

    async def views() -> dict[str, Any]:
        seen: dict[str, Any] = {}
        for name, head in heads.items():
            seen[name] = [
                await report(head, "summary"),
                await report(head, "summary", under=world.c1["id"]),
                await report(head, f"units/{world.c1['id']}/scorecard"),
                await report(head, "findings"),
                await report(head, "discipline"),
            ]
        return seen

    before = await views()
    leader_before = await report(leader, "summary")
    plan = await m.plan(
        "unannounced", [("C1", "2026-03-10", "2026-03-12"), ("C3", "2026-03-08", "2026-03-09")]
    )
    assert await views() == before
    assert (await report(leader, "summary"))["inspections"]["unannounced"]["visits"] == 2
    assert leader_before != await report(leader, "summary")
    # The team works at C3 first: findings, an action, a conclusion; C1 is still sealed.
    c3 = m.visit(plan, "C3")
    await m.check_in(c3, "2026-03-09T09:00:00+07:00")
    found = await m.finding(c3, "late_dossiers", "major", "2026-03-09T10:00:00+07:00")
    world.users["head.c3"] = await api.create_user(
        "head.c3", [("unit_head", world.c3["id"])], world.c3["id"]
    )
    await m.action(found, "C3", "head.c3", date(2026, 3, 31))
    await m.conclude(c3, {"C01": "pass", "C02": "pass", "C03": "fail"})
    assert await views() == before
    # The team arrives at C1: from now on its heads see the visit.
    await m.check_in(m.visit(plan, "C1"), "2026-03-10T09:00:00+07:00")
    after = await views()
    for name in heads:
        assert after[name] != before[name]
        assert after[name][0]["inspections"]["unannounced"] == {
            "plans": 1,
            "visits": 1,
            "concluded": 0,
        }
    await m.finding(m.visit(plan, "C1"), "equipment", "minor", "2026-03-10T10:00:00+07:00")
    head_c1 = await report(heads["head.c1"], "summary")
    assert head_c1["findings"]["total"] == 1 and head_c1["actions"]["total"] == 0


# --- bad input ---------------------------------------------------------------------------------------


async def test_bad_parameters_are_400_naming_the_field_and_never_500(api: Api) -> None:
    await build_world(api)
    paths = ("summary", "findings")
    for path in paths:
        url = f"/api/v1/reports/{path}"
        body = problem(await api.get(url, params={"from": "2026-05-01", "to": "2026-04-01"}), 400)
        assert body["errors"][0]["field"] == "from"
        body = problem(await api.get(url, params={"from": "2026-02-30"}), 400)
        assert "from" in body["detail"]
        body = problem(await api.get(url, params={"to": "0001-01-01"}), 400)
        assert body["errors"][0]["field"] == "to"
        problem(await api.get(url, params={"from": "9999-12-31"}), 400)
        problem(await api.get(url, params={"under": "not-a-uuid"}), 400)
        problem(await api.get(url, params={"format": "docx"}), 400)
        problem(await api.get(url, params={"under": str(uuid.uuid4())}), 404)
    problem(await api.get("/api/v1/reports/findings", params={"format": "pdf"}), 400)
    problem(await api.get("/api/v1/reports/findings", params={"cursor": "garbage"}), 422)
    problem(await api.get("/api/v1/reports/findings", params={"limit": "0"}), 400)
    problem(await api.get("/api/v1/reports/units/nope/scorecard"), 404)


async def test_a_reader_without_units_gets_an_empty_report(api: Api) -> None:
    world = await build_world(api)
    await api.create_user("nobody", [], world.c1["id"])
    empty = await report(await api.as_user("nobody"), "summary")
    assert empty["scope"] == {"unit_id": None, "name": ""}
    assert empty["by_unit"] == [] and empty["findings"]["total"] == 0


async def test_the_reports_engine_is_read_only(settings: Settings) -> None:
    database = create_reports_database(settings)
    try:
        # PostgreSQL: 25006 read_only_sql_transaction; SQLite: "attempt to write a readonly
        # database" (PRAGMA query_only).
        with pytest.raises(Exception, match=r"(?i)read.only|readonly"):
            async with database.session() as session, session.begin():
                await session.execute(text("CREATE TABLE report_probe (n integer)"))
    finally:
        await database.dispose()


def test_a_list_of_plans_too_long_or_cut_short_falls_back_to_the_subquery() -> None:
    """`whole_plans_statement` reads at most one id past the limit, so a list that long is cut
    short and must never be used as the list; a system-wide organiser needs no clause."""
    scoped = Principal(
        uuid.uuid4(), "p", "P", None, (GrantScope(Role.PLANNER, uuid.uuid4(), "/p/"),)
    )
    ids = [uuid.uuid4() for _ in range(seal.WHOLE_PLANS_LIST_LIMIT + 1)]

    def sql(clause: Any) -> str:
        return str(clause.compile())

    listed = seal.in_whole_plan(scoped, Finding.plan_id, ids[:-1]).compile()
    assert "SELECT" not in str(listed) and list(listed.params.values()) == [ids[:-1]]
    assert "SELECT" in sql(seal.in_whole_plan(scoped, Finding.plan_id, ids))
    assert "SELECT" in sql(seal.in_whole_plan(scoped, Finding.plan_id, None))
    statement = seal.whole_plans_statement(scoped)
    assert statement is not None and statement._limit == seal.WHOLE_PLANS_LIST_LIMIT + 1
    everything = Principal(uuid.uuid4(), "l", "L", None, (GrantScope(Role.LEADER, None, None),))
    assert seal.whole_plans_statement(everything) is None
    assert sql(seal.in_whole_plan(everything, Finding.plan_id, None)) == "true"


def test_content_disposition_has_an_ascii_fallback_and_the_utf8_name() -> None:
    assert content_disposition("attachment", "bao-cao-tong-hop_2026-01-01_2026-12-31.pdf") == (
        'attachment; filename="bao-cao-tong-hop_2026-01-01_2026-12-31.pdf"; '
        "filename*=UTF-8''bao-cao-tong-hop_2026-01-01_2026-12-31.pdf"
    )
    assert content_disposition("attachment", "Báo cáo Đại Từ.csv") == (
        'attachment; filename="Bao cao Dai Tu.csv"; '
        "filename*=UTF-8''B%C3%A1o%20c%C3%A1o%20%C4%90%E1%BA%A1i%20T%E1%BB%AB.csv"
    )


# --- the register streams in bounded memory ---------------------------------------------------------

STREAM_ROWS = 50_000


def rss_bytes() -> int:
    """The process's resident memory now (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def finding_row(
    visit: dict[str, Any],
    observed_at: datetime,
    title: str,
    category: str = "late_dossiers",
    severity: str = "minor",
    status: str = "submitted",
) -> dict[str, Any]:
    """A finding at `visit` as a row to insert directly (not through the API), submitted at its
    observation."""
    return {
        "id": uuid.uuid4(),
        "visit_id": uuid.UUID(visit["id"]),
        "plan_id": uuid.UUID(visit["plan"]["id"]),
        "unit_id": uuid.UUID(visit["unit_id"]),
        "category": category,
        "severity": severity,
        "title": title,
        "search_text": "ho so",
        "observed_at": observed_at,
        "officials": [],
        "status": status,
        "submitted_at": observed_at,
    }


async def bulk_findings(settings: Settings, visit: dict[str, Any], rows: int) -> None:
    """`rows` submitted findings at `visit`, by bulk Core inserts (not through the API)."""
    engine = create_engine(settings.database_url)
    base = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)
    try:
        async with engine.begin() as connection:
            for start in range(0, rows, 5000):
                await connection.execute(
                    insert(Finding),
                    [
                        finding_row(
                            visit,
                            base + timedelta(seconds=n),
                            f"Hồ sơ giải quyết trễ hạn số {n:07d} tại bộ phận một cửa",
                        )
                        for n in range(start, min(rows, start + 5000))
                    ],
                )
    finally:
        await engine.dispose()


async def test_the_register_streams_in_bounded_memory(api: Api, settings: Settings) -> None:
    from tests.helpers import on_site

    world = await build_world(api)
    visit = await on_site(api, world)
    await bulk_findings(settings, visit, STREAM_ROWS)
    database = create_reports_database(settings)
    leader = Principal(
        uuid.uuid4(), "leader", "Leader", None, (GrantScope(Role.LEADER, None, None),)
    )
    period = Period.of(date(2026, 1, 1), date(2026, 12, 31), ZONE, NOW)
    try:
        async with database.session() as session, session.begin():
            queries = ReportRepository(session, leader, ZONE, NOW, database.dialect)
            scope = await queries.scope(None)
            count, last, peak, baseline = 0, None, 0, 0
            async for chunk in queries.register_chunks(scope, period):
                if count == 0:
                    baseline = rss_bytes()  # after the first chunk: caches and the statement warm
                for row in chunk:
                    assert last is None or (row.observed_at, row.finding_id) > last
                    last = (row.observed_at, row.finding_id)
                count += len(chunk)
                peak = max(peak, rss_bytes())
            assert count == STREAM_ROWS
            rows_total = await session.scalar(select(Finding.id).limit(1))
            assert rows_total is not None
    finally:
        await database.dispose()
    growth = peak - baseline
    print(
        f"register stream ({database.dialect}): {count} rows, RSS growth {growth / 2**20:.1f} MiB"
    )
    assert growth < 24 * 2**20, f"RSS grew {growth / 2**20:.1f} MiB over {count} rows"


# --- downloads ----------------------------------------------------------------------------------


async def test_summary_downloads_carry_the_same_numbers(api: Api, app: Litestar) -> None:
    """Each format shows the JSON's numbers: the CSV's rows are `by_unit`, the workbook's by-unit
    sheet holds them and both charts, and the PDF's text names every unit and chart."""
    import csv as csv_module
    import io
    import zipfile

    import openpyxl
    import pypdf

    m = await standard_case(api, app)
    leader = await m.user("leader")
    summary = await report(leader, "summary")
    expected = [
        [u["code"], u["name"], u["visits"], u["findings"], u["open_actions"], u["overdue_actions"]]
        for u in summary["by_unit"]
    ]
    assert any(row[5] for row in expected), "the case has overdue actions to chart"
    downloads = {}
    for fmt, media in (("csv", "text/csv"), ("xlsx", "spreadsheetml"), ("pdf", "application/pdf")):
        response = await leader.get("/api/v1/reports/summary", params={"format": fmt})
        assert response.status_code == 200, response.text
        assert media in response.headers["content-type"]
        assert response.headers["content-disposition"] == content_disposition(
            "attachment", f"bao-cao-tong-hop_2026-01-01_2026-12-31.{fmt}"
        )
        downloads[fmt] = response.content

    assert downloads["csv"].startswith(b"\xef\xbb\xbf")
    rows = list(csv_module.reader(io.StringIO(downloads["csv"].decode("utf-8-sig"))))
    assert [[r[0], r[1], *map(int, r[2:6])] for r in rows[1:]] == expected

    book = openpyxl.load_workbook(io.BytesIO(downloads["xlsx"]), read_only=True)
    sheet = next(ws for ws in book.worksheets if ws.title.startswith("Theo đơn vị"))
    values = [list(r) for r in sheet.iter_rows(values_only=True)]
    header = values.index(next(r for r in values if r and r[0] == "Mã đơn vị"))
    assert [r[:6] for r in values[header + 1 :] if r[0]] == expected
    with zipfile.ZipFile(io.BytesIO(downloads["xlsx"])) as parts:
        assert {"xl/charts/chart1.xml", "xl/charts/chart2.xml"} <= set(parts.namelist())

    pages = pypdf.PdfReader(io.BytesIO(downloads["pdf"])).pages
    # Names wrap inside table cells: compare with the line breaks as spaces.
    text = " ".join(" ".join(page.extract_text() for page in pages).split())
    for unit in summary["by_unit"]:
        assert unit["name"] in text
    assert "Phát hiện theo lĩnh vực" in text
    assert "Yêu cầu khắc phục quá hạn theo đơn vị" in text
    # The national heading, with the issuing agency (INSPECTION_REPORT_ISSUER's default).
    assert "SỞ NỘI VỤ" in text and "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM" in text
    problem(await leader.get("/api/v1/reports/summary", params={"format": "pdf", "from": "x"}), 400)


async def _register_chunk_plan(settings: Settings) -> list[str]:
    """SQLite's plan of the register's second keyset chunk, as `register_chunks` sends it."""
    main = create_database(settings)
    try:
        # A planner of the province: scoped by units, as most readers are.
        planner = await principal_of(main, "planner")
    finally:
        await main.dispose()
    assert planner.scope_paths() is not None
    database = create_reports_database(settings)
    period = Period.of(date(2026, 1, 1), date(2026, 12, 31), ZONE, NOW)
    sent: list[tuple[str, Any]] = []

    def capture(*args: Any) -> None:
        sent.append((args[2], args[3]))

    event.listen(database.engine.sync_engine, "before_cursor_execute", capture)
    try:
        async with database.session() as session, session.begin():
            queries = ReportRepository(session, planner, ZONE, NOW, database.dialect)
            scope = await queries.scope(None)
            chunks = 0
            async for _chunk in queries.register_chunks(scope, period):
                chunks += 1
            assert chunks >= 2
            statement, parameters = sent[-1]
            plan = await session.connection()
            rows = await plan.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
            return [str(row[-1]) for row in rows]
    finally:
        event.remove(database.engine.sync_engine, "before_cursor_execute", capture)
        await database.dispose()


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_sqlites_register_chunks_walk_the_time_index(api: Api, settings: Settings) -> None:
    """Each chunk of the register on SQLite reads along `ix_findings_observed_at` from where the
    last one ended: no sort of the remaining period per chunk (which made the register
    quadratic: 0.22 s a chunk at 100,000 findings against 0.02 s). Only SQLite sends chunks;
    PostgreSQL reads one statement from a cursor."""
    from tests.helpers import on_site

    world = await build_world(api)
    visit = await on_site(api, world)
    await bulk_findings(settings, visit, CHUNK_ROWS + 10)
    plan = await in_app_loop(api.client, _register_chunk_plan, settings)
    findings = [step for step in plan if step.startswith(("SEARCH findings", "SCAN findings"))]
    assert findings and all("ix_findings_observed_at" in step for step in findings), plan
    assert not any("TEMP B-TREE FOR ORDER BY" in step for step in plan), plan


async def test_the_register_csv_for_a_unit_head_is_sealed_until_check_in(
    api: Api, app: Litestar
) -> None:
    world = await build_world(api)
    set_clock(app, MARCH)
    m = Maker(api, app, world)
    head = await m.user("head.d1")

    async def csv() -> bytes:
        response = await head.get("/api/v1/reports/findings", params={"format": "csv"})
        assert response.status_code == 200, response.text
        assert response.headers["content-disposition"].startswith("attachment;")
        return response.content

    before = await csv()
    plan = await m.plan(
        "unannounced", [("C1", "2026-03-10", "2026-03-12"), ("C3", "2026-03-08", "2026-03-09")]
    )
    c3 = m.visit(plan, "C3")
    await m.check_in(c3, "2026-03-09T09:00:00+07:00")
    await m.finding(c3, "late_dossiers", "major", "2026-03-09T10:00:00+07:00")
    assert await csv() == before
    c1 = m.visit(plan, "C1")
    await m.check_in(c1, "2026-03-10T09:00:00+07:00")
    await m.finding(c1, "equipment", "minor", "2026-03-10T10:00:00+07:00")
    after = await csv()
    assert after != before and "P-D1-C1" in after.decode("utf-8-sig")


async def test_the_register_csv_streams_in_bounded_memory(
    api: Api, app: Litestar, settings: Settings
) -> None:
    from tests.helpers import on_site

    world = await build_world(api)
    visit = await on_site(api, world)
    await bulk_findings(settings, visit, STREAM_ROWS)
    set_clock(app, NOW)
    leader = await api.as_user("leader")
    lines, peak, baseline = 0, 0, 0
    async with leader.client.stream(
        "GET",
        "/api/v1/reports/findings",
        params={"format": "csv"},
        headers={"Authorization": f"Bearer {leader.token}"},
    ) as response:
        assert response.status_code == 200
        async for block in response.aiter_bytes():
            if not baseline:
                baseline = rss_bytes()
            lines += block.count(b"\n")
            peak = max(peak, rss_bytes())
    assert lines >= STREAM_ROWS
    assert peak - baseline < 48 * 2**20, f"RSS grew {(peak - baseline) / 2**20:.1f} MiB"


# Text that CSV must quote, guard or normalise, in the register's text columns.
HOSTILE_TITLES = (
    "Hồ sơ, trễ hạn",
    'Câu "trích dẫn" giữa dòng',
    "Dòng một\nDòng hai",
    "Dòng một\r\nDòng hai",
    '=HYPERLINK("http://x.example","bấm")',
    "-3",
    "+84 912 345 678",
    "@SUM(A1)",
    "\tthụt đầu dòng",
    "\rđầu là CR",
    unicodedata.normalize("NFD", "Nguyễn Văn Ánh ghi nhận"),
    "",
    "  khoảng trắng hai đầu  ",
    "😀 biểu tượng",
    "'đã có dấu nháy",
    "tab\tgiữa",
)


async def _python_register(settings: Settings, now: datetime) -> bytes:
    """The register as the Python renderer writes it (`render.csv.stream` over
    `register_cells`), read as a system-wide leader."""
    database = create_reports_database(settings)
    leader = Principal(
        uuid.uuid4(), "leader", "Leader", None, (GrantScope(Role.LEADER, None, None),)
    )
    period = Period.of(date(2026, 1, 1), date(2026, 12, 31), ZONE, now)
    rows: list[tuple[Any, ...]] = []
    try:
        async with database.session() as session, session.begin():
            queries = ReportRepository(session, leader, ZONE, now, database.dialect)
            scope = await queries.scope(None)
            async for chunk in queries.register_chunks(scope, period):
                rows.extend(documents.register_cells(record) for record in chunk)
    finally:
        await database.dispose()
    table = documents.register_document("", period, now, "", rows).tables[0]
    return b"".join(report_csv.stream(table))


async def test_the_register_csv_is_the_renderers_bytes_whoever_writes_it(
    api: Api, app: Litestar, settings: Settings
) -> None:
    """On PostgreSQL the database writes the register's CSV (`render.csv.sql_line`); on SQLite
    Python does. Either way the bytes are the renderer's, for text that must be quoted, guarded
    against formulas or normalised, in unit names and titles, and for instants across midnight."""
    world = await build_world(api)
    odd_unit = await api.create_unit("P-D1-C9", '=Xã "Hòa, Bình"', "commune", world.d1["id"])
    visit = await on_site(api, world)
    other = await on_site(api, world, target=odd_unit)
    base = datetime(2026, 3, 10, 16, 59, 59, 999_999, tzinfo=UTC)  # 23:59:59.999999 in Hà Nội
    engine = create_engine(settings.database_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                insert(Finding),
                [
                    finding_row(at, base + timedelta(microseconds=n), *cells)
                    for n, (at, cells) in enumerate(
                        (at, cells)
                        for at in (visit, other)
                        for cells in zip(
                            HOSTILE_TITLES,
                            ["late_dossiers", "equipment", "other", "not_a_category"] * 4,
                            ["minor", "major", "critical", "observation"] * 4,
                            ["submitted", "closed"] * 8,
                            strict=True,
                        )
                    )
                ],
            )
    finally:
        await engine.dispose()
    set_clock(app, NOW)
    leader = await api.as_user("leader")
    response = await leader.get("/api/v1/reports/findings", params={"format": "csv"})
    assert response.status_code == 200, response.text
    expected = await in_app_loop(api.client, _python_register, settings, NOW)
    assert response.content == expected
    # And the file says what was stored: every hostile title, read back by a CSV reader.
    read = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"), newline="")))
    titles = [row[8] for row in read[1:]]
    assert len(titles) == 2 * len(HOSTILE_TITLES)
    assert '\'=HYPERLINK("http://x.example","bấm")' in titles and "'-3" in titles
    assert "Dòng một\r\nDòng hai" in titles and "Nguyễn Văn Ánh ghi nhận" in titles
    assert {row[7] for row in read[1:]} == {
        "2026-03-10T23:59:59+07:00",
        "2026-03-11T00:00:00+07:00",
    }
    assert '\'=Xã "Hòa, Bình"' in {row[1] for row in read[1:]}


def test_the_reports_database_setting(tmp_path: Path) -> None:
    from inspection.settings import ConfigurationError, load_settings

    env = {"INSPECTION_DATA_DIR": str(tmp_path)}
    default = load_settings(env)
    assert default.reports_database_url is None and default.reports_url == default.database_url
    replica = load_settings(env | {"INSPECTION_REPORTS_DATABASE_URL": "sqlite:///replica.db"})
    assert replica.reports_url == "sqlite+aiosqlite:///replica.db"
    with pytest.raises(ConfigurationError, match="INSPECTION_REPORTS_DATABASE_URL"):
        load_settings(env | {"INSPECTION_REPORTS_DATABASE_URL": "mysql://x"})
