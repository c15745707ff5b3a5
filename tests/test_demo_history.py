"""`inspection demo --history`: a year of consistent history on both back-ends.

The invariants the services enforce are asserted on the generated rows (not magic counts), then
the API reads them as the admin and as a unit head, and the audit chain still verifies.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select

from inspection.actions.models import OWING_STATUSES, ActionEvent, CorrectiveAction
from inspection.actions.rules import days_overdue, escalation_level, local_today
from inspection.audit.recorder import verify
from inspection.cli import main
from inspection.db.engine import create_database
from inspection.demo.history import HistoryReport, generate_history
from inspection.demo.organisation import DEMO_PASSWORD, load_demo
from inspection.discipline.models import DisciplineProposal
from inspection.discipline.rules import OfficialStatus, allowed_measures, processing_due_on
from inspection.findings.models import Finding, FindingStatus
from inspection.kit.search import fold, fold_for_column
from inspection.plans.models import (
    ChecklistResponse,
    Plan,
    PlanKind,
    TeamMember,
    TeamRole,
    Visit,
    VisitStatus,
)
from inspection.plans.service import weighted_score
from inspection.settings import Settings, load_settings
from inspection.units.models import Grant, Unit, User
from inspection.units.roles import Role
from tests.conftest import ADMIN_PASSWORD

NOW = datetime(2026, 11, 20, 3, 30, tzinfo=UTC)


async def _generated(settings: Settings) -> HistoryReport:
    database = create_database(settings)
    try:
        await load_demo(database)
        report = await generate_history(database, seed=7, now=NOW, zone=settings.zone)
        again = await generate_history(database, seed=8, now=NOW, zone=settings.zone)
        assert again.created is False  # a second year is never added
        return report
    finally:
        await database.dispose()


async def test_history_rows_keep_the_rules(app: Litestar, settings: Settings) -> None:
    report = await _generated(settings)
    assert report.created
    today = local_today(NOW, settings.zone)
    database = create_database(settings)
    try:
        async with database.read_session() as session:
            plans = {p.id: p for p in (await session.scalars(select(Plan))).all()}
            visits = {v.id: v for v in (await session.scalars(select(Visit))).all()}
            findings = {f.id: f for f in (await session.scalars(select(Finding))).all()}
            actions = list((await session.scalars(select(CorrectiveAction))).all())
            events = list((await session.scalars(select(ActionEvent))).all())
            answers = list((await session.scalars(select(ChecklistResponse))).all())
            proposals = list((await session.scalars(select(DisciplineProposal))).all())
            leads = {
                t.plan_id: t.user_id
                for t in (
                    await session.scalars(
                        select(TeamMember).where(TeamMember.role == TeamRole.LEAD.value)
                    )
                ).all()
            }
            assert (await verify(session)).ok
    finally:
        await database.dispose()

    assert len(findings) == report.counts["findings"]
    assert len(actions) == report.counts["actions"]
    assert len(events) == report.counts["events"]
    kinds = [p.kind for p in plans.values()]
    assert 0.1 < kinds.count(PlanKind.UNANNOUNCED.value) / len(kinds) < 0.6
    for plan in plans.values():
        assert plan.approved_at is None or plan.approved_at < NOW
        assert plan.period_start <= plan.period_end
    for visit in visits.values():
        plan = plans[visit.plan_id]
        assert plan.period_start <= visit.window_start <= visit.window_end <= plan.period_end
        if visit.checked_in_at is not None:
            assert plan.approved_at is not None and plan.approved_at < visit.checked_in_at < NOW
            local = visit.checked_in_at.astimezone(settings.zone).date()
            assert visit.window_start <= local <= visit.window_end or visit.check_in_reason
        if visit.status == VisitStatus.CONCLUDED.value:
            assert visit.conclusion and visit.concluded_at is not None
    sealed = [
        v
        for v in visits.values()
        if plans[v.plan_id].kind == PlanKind.UNANNOUNCED.value
        and plans[v.plan_id].approved_at is not None
        and v.checked_in_at is None
        and v.status == VisitStatus.PLANNED.value
    ]
    assert sealed, "an unannounced visit still sealed"
    # Scores are what the conclusion computes from the answers.
    weights = {"C01": 3.0, "C02": 3.0, "C03": 2.0, "C04": 2.0, "C05": 2.0}
    weights |= {"C06": 1.0, "C07": 2.0, "C08": 1.0, "C09": 1.0}
    by_visit: dict[Any, list[tuple[str, float]]] = {}
    for answer in answers:
        by_visit.setdefault(answer.visit_id, []).append(
            (answer.result, weights[answer.criterion_code])
        )
    for visit in visits.values():
        if visit.status == VisitStatus.CONCLUDED.value:
            assert visit.score == weighted_score(by_visit.get(visit.id, []))
    # Findings: observed on site, folded search text, statuses that follow from their actions.
    statuses = {f.status for f in findings.values()}
    assert statuses == {s.value for s in FindingStatus}
    names = [o["name"] for f in findings.values() for o in f.officials]
    assert any(n != fold(n) and fold(n) in names for n in names), "diacritic variants repeat"
    for finding in findings.values():
        visit = visits[finding.visit_id]
        assert visit.checked_in_at is not None
        assert visit.checked_in_at <= finding.observed_at <= (visit.checked_out_at or NOW)
        assert finding.search_text == fold(f"{finding.title} {finding.description or ''}")
        assert (finding.plan_id, finding.unit_id) == (visit.plan_id, visit.unit_id)
        assert (finding.submitted_at is None) == (finding.submitted_by is None)
    per_finding: dict[Any, list[CorrectiveAction]] = {}
    for action in actions:
        per_finding.setdefault(action.finding_id, []).append(action)
    for finding in findings.values():
        mine = per_finding.get(finding.id, [])
        if finding.status == FindingStatus.CLOSED.value:
            assert mine and all(a.status in ("closed", "cancelled") for a in mine)
        elif finding.status == FindingStatus.SUBMITTED.value:
            assert not mine or any(a.status not in ("closed", "cancelled") for a in mine)
        else:
            assert not mine
    # Actions: on submitted or closed findings, due dates never before creation, overdue only
    # while owed and escalated exactly as far as `inspection jobs run` would have.
    levels: set[int] = set()
    states: set[str] = set()
    timeline: dict[Any, list[ActionEvent]] = {}
    for event in events:
        timeline.setdefault(event.action_id, []).append(event)
    for action in actions:
        finding = findings[action.finding_id]
        assert finding.status in (FindingStatus.SUBMITTED.value, FindingStatus.CLOSED.value)
        assert finding.submitted_at is not None and finding.submitted_at <= action.created_at
        created_day = action.created_at.astimezone(settings.zone).date()
        assert action.original_due_date >= created_day
        assert action.due_date >= action.original_due_date
        assert (action.due_date > action.original_due_date) == (action.extensions_approved > 0)
        assert action.created_at < NOW and action.updated_at < NOW
        days = days_overdue(action, today)
        level = escalation_level(days, settings.escalation_days)
        if days:
            assert action.status in OWING_STATUSES and action.due_date < today
            assert action.escalated_level == level
            levels.add(level)
        states.add(action.status)
        kinds_ = [e.kind for e in sorted(timeline[action.id], key=lambda e: e.at)]
        assert kinds_[0] == "created"
        assert kinds_.count("escalated") == action.escalated_level
        if action.status == "closed":
            assert kinds_[-1] == "verified" and action.closed_at is not None
        if action.pending_due_date is not None:
            assert action.pending_due_date > action.due_date
    assert states == {"open", "in_progress", "submitted", "closed", "cancelled"}
    assert levels == {1, 2, 3}
    assert any(
        a.closed_at
        and a.closed_at
        > datetime.combine(a.due_date + timedelta(days=1), datetime.min.time(), settings.zone)
        for a in actions
    ), "closed late"

    # Discipline proposals: about an official the finding names (the same folded key), by the
    # visit's team lead, with measures the rules table allows on the violation date, dates in
    # order, outcomes complete; repeats and undecided ones past their processing time.
    assert len(proposals) == report.counts["proposals"] == 60
    assert {p.status for p in proposals} == {"proposed", "decided", "not_pursued", "withdrawn"}
    keys: dict[tuple[Any, str], int] = {}
    for p in proposals:
        finding = findings[p.finding_id]
        assert finding.status in (FindingStatus.SUBMITTED.value, FindingStatus.CLOSED.value)
        assert (p.visit_id, p.plan_id, p.unit_id) == (
            finding.visit_id,
            finding.plan_id,
            finding.unit_id,
        )
        assert p.official_name_folded == fold_for_column(p.official_name)
        assert p.official_name_folded in {fold_for_column(o["name"]) for o in finding.officials}
        assert p.proposed_by == leads[p.plan_id]
        allowed = allowed_measures(
            OfficialStatus(p.official_status), p.holds_management_post, p.violation_date
        )
        assert p.proposed_measure in allowed, (p.proposed_measure, allowed)
        assert finding.submitted_at is not None
        assert p.violation_date <= p.detected_date <= today
        assert p.detected_date == finding.submitted_at.astimezone(settings.zone).date()
        assert finding.submitted_at <= p.created_at < NOW
        assert p.extended == (p.extension_reason is not None)
        if p.status == "proposed":
            assert p.closed_at is None and p.closed_by is None and p.decided_measure is None
        else:
            assert p.closed_at is not None and p.created_at <= p.closed_at < NOW
            assert p.closed_by is not None
        if p.status == "decided":
            assert p.decided_measure in allowed and p.decision_date is not None
            assert p.detected_date <= p.decision_date <= today
            assert p.decision_number and "/QĐ-" in p.decision_number
        else:
            assert p.decided_measure is None and p.decision_number is None
        if p.status in ("not_pursued", "withdrawn"):
            assert p.reason
        if p.status == "withdrawn":
            assert p.closed_by == p.proposed_by
        key = (p.unit_id, p.official_name_folded)
        keys[key] = keys.get(key, 0) + 1
    assert any(n > 1 for n in keys.values()), "someone proposed on more than one finding"
    overdue = [
        p
        for p in proposals
        if p.status == "proposed" and processing_due_on(p.detected_date, p.extended) < today
    ]
    assert len(overdue) == report.counts["proposals.overdue"]
    assert any(
        p.status == "proposed"
        and (processing_due_on(p.detected_date, p.extended) - today).days <= 30
        for p in proposals
    ), "an undecided proposal near or past its processing time"

    # The API reads the history: the leader lists findings (the admin sees none: administering
    # is not inspecting, seal.visits_in_scope); a unit head above a sealed visit does not see
    # it.
    async with AsyncTestClient(app) as client:

        async def sign_in(username: str, password: str) -> dict[str, str]:
            answer = await client.post(
                "/api/v1/auth/token", json={"username": username, "password": password}
            )
            assert answer.status_code == 200, answer.text
            return {"Authorization": f"Bearer {answer.json()['access_token']}"}

        admin = await sign_in("admin", ADMIN_PASSWORD)
        none = await client.get("/api/v1/findings", headers=admin)
        assert none.status_code == 200 and none.json()["items"] == []
        leader = await sign_in("lanh.dao", DEMO_PASSWORD)
        listed = await client.get("/api/v1/findings", params={"limit": 100}, headers=leader)
        assert listed.status_code == 200, listed.text
        assert {f["id"] for f in listed.json()["items"]} <= {str(i) for i in findings}
        assert len(listed.json()["items"]) == 100
        # The discipline report counts every generated proposal for the leader of the province.
        answer = await client.get(
            "/api/v1/reports/discipline", params={"from": "2025-01-01"}, headers=leader
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["proposals"]["total"] == len(proposals)
        assert answer.json()["flagged_officials"], "repeats to show"
        database = create_database(settings)
        try:
            async with database.read_session() as session:
                rows = (
                    await session.execute(
                        select(User.username, Unit.path)
                        .join(Grant, Grant.user_id == User.id)
                        .join(Unit, Unit.id == Grant.unit_id)
                        .where(Grant.role == Role.UNIT_HEAD.value)
                    )
                ).all()
                paths = {
                    v.id: await session.scalar(select(Unit.path).where(Unit.id == v.unit_id))
                    for v in sealed
                }
        finally:
            await database.dispose()
        pairs = [(u, v) for v in sealed for u, p in rows if str(paths[v.id]).startswith(p)]
        assert pairs, "a unit head over a sealed visit"
        username, visit = pairs[0]
        head = await sign_in(username, DEMO_PASSWORD)
        seen = await client.get("/api/v1/visits", params={"limit": 200}, headers=head)
        assert seen.status_code == 200
        assert str(visit.id) not in {v["id"] for v in seen.json()["items"]}
        assert (await client.get(f"/api/v1/visits/{visit.id}", headers=head)).status_code == 404
        assert seen.json()["items"], "the head sees the visits announced to them"


async def test_cli_demo_history_once_and_audit_verifies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import anyio.to_thread

    monkeypatch.setenv("INSPECTION_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("INSPECTION_ADMIN_PASSWORD", "demo-admin-pass")
    runner = CliRunner()
    first = await anyio.to_thread.run_sync(lambda: runner.invoke(main, ["demo", "--history"]))
    assert first.exit_code == 0, first.output
    assert "Demo history (seed 2026) generated" in first.output
    second = await anyio.to_thread.run_sync(lambda: runner.invoke(main, ["demo", "--history"]))
    assert second.exit_code == 0, second.output
    assert "Demo history: already present" in second.output
    verified = await anyio.to_thread.run_sync(lambda: runner.invoke(main, ["audit", "verify"]))
    assert verified.exit_code == 0, verified.output
    assert "audit chain intact" in verified.output
    database = create_database(load_settings())
    try:
        async with database.read_session() as session:
            count = await session.scalar(select(func.count()).select_from(Finding))
        assert count and count > 1000
    finally:
        await database.dispose()
