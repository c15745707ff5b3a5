"""Every query of the reports: aggregates in SQL, each built on the predicates of `access/`.

A report covers a part of the unit tree the reader may see (`access.scopes.report_units`); inside it
visits go through `access.seal.visits_in_scope`, findings through `findings.repository.readable` and
actions through `actions.repository.readable`, the same predicates as the lists, so a sealed
unannounced visit adds nothing to a unit head's report before its check-in. Nothing is counted in
Python: each figure is a GROUP BY (or a window, for the median), and the child unit a record counts
under (`by_unit`) is read from its unit's materialised path, without a join per child.

Counting rules (docs/reports.md):
- a visit of an approved plan counts in the period of its local check-in date, or of its window's
  first day while it is not checked in; cancelled visits and plans are left out;
- a finding counts once submitted (closed ones too; drafts and dismissed ones left out), in the
  period of the local date of `observed_at`;
- an action counts with the finding it comes from (cancelled ones left out); its status and
  `overdue` are as of now.

The queries run in the reports' own read-only transaction (`db.engine.ReportsDatabase`): one
snapshot for all the statements of a report.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from advanced_alchemy.types import GUID
from sqlalchemy import (
    ColumnElement,
    Date,
    Select,
    and_,
    case,
    cast,
    func,
    literal,
    null,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute, aliased
from sqlalchemy.sql.base import ReadOnlyColumnCollection
from sqlalchemy.sql.elements import UnaryExpression
from sqlalchemy.sql.operators import custom_op

from inspection.access import scopes, seal
from inspection.access.principal import Principal
from inspection.actions import repository as actions_repository
from inspection.actions.models import OPEN_STATUSES, ActionStatus, CorrectiveAction
from inspection.actions.repository import overdue_clause
from inspection.actions.rules import local_today
from inspection.discipline import repository as discipline_repository
from inspection.discipline import rules
from inspection.discipline.models import DisciplineProposal, ProposalStatus
from inspection.discipline.repository import flagged_officials
from inspection.discipline.rules import MEASURE_ORDER, Measure
from inspection.errors import NotFound
from inspection.findings import repository as findings_repository
from inspection.findings.models import Category, Finding, FindingStatus, Severity
from inspection.kit.pagination import SortKey, page_rows
from inspection.plans.models import Plan, PlanKind, PlanStatus, Visit, VisitStatus
from inspection.reports import schemas
from inspection.reports.periods import Period
from inspection.settings import LimitationYears
from inspection.units.models import Unit

# Findings that count: confirmed by the team lead (closed ones are confirmed ones whose actions
# are all done).
COUNTED_FINDINGS = (FindingStatus.SUBMITTED.value, FindingStatus.CLOSED.value)
# The discipline report lists undecided proposals whose deadline ends within this many days.
DEADLINE_WINDOW_DAYS = 30
# The law's defaults, for callers without settings (the settings' defaults are the same).
DEFAULT_LIMITATION = LimitationYears()
# Days overdue of the ageing columns of overdue actions: 1-7, 8-30, more than 30.
AGEING = (7, 30)
# Rows fetched per round trip by the register's stream (a server-side cursor on PostgreSQL,
# keyset chunks on SQLite): memory stays bounded by one chunk, whatever the register's length.
CHUNK_ROWS = 2000

# The units a record belongs to, joined under their own name: `access/` predicates select from
# `units`, `findings` and `plans` in their subqueries, which a join of those very tables in the
# outer query would correlate away. (An action's finding is joined as `Finding` itself: see
# `_actions`.)
_UNIT = aliased(Unit, name="report_unit")
_PLAN = aliased(Plan, name="report_plan")
# A proposal's finding: an alias, for the reason above (`discipline_in_scope` is not written
# against a joined finding).
_FINDING = aliased(Finding, name="report_finding")


@dataclass(frozen=True, slots=True)
class UnitRef:
    """A unit a report names."""

    id: UUID
    code: str
    name: str
    path: str


@dataclass(frozen=True, slots=True)
class Scope:
    """What a report covers: the subtree of `root` (or, without one, every subtree the reader may
    see), and the units `by_unit` counts under: the root's children, or the reader's roots."""

    root: UnitRef | None
    units: tuple[UnitRef, ...]

    @property
    def root_path(self) -> str | None:
        """The root's path, a literal prefix for `access.scopes.report_units`."""
        return self.root.path if self.root else None

    @property
    def name(self) -> str:
        """The root's name, or the names of the covered subtrees."""
        if self.root is not None:
            return self.root.name
        return ", ".join(u.name for u in self.units)

    def out(self) -> schemas.ScopeOut:
        """The JSON `scope`."""
        return schemas.ScopeOut(self.root.id if self.root else None, self.name)


@dataclass(frozen=True, slots=True)
class RegisterRecord:
    """One row of the register as the query returns it."""

    finding_id: UUID
    unit_id: UUID
    unit_code: str
    unit_name: str
    visit_id: UUID
    plan_kind: str
    category: str
    severity: str
    status: str
    observed_at: datetime
    title: str
    open_actions: int

    def out(self) -> schemas.RegisterRow:
        """The JSON row."""
        return schemas.RegisterRow(
            self.finding_id,
            self.unit_id,
            self.unit_code,
            self.unit_name,
            self.visit_id,
            self.plan_kind,
            self.category,
            self.severity,
            self.status,
            self.observed_at,
            self.title,
            self.open_actions,
        )


def _bucket(path: Any, units: Sequence[UnitRef]) -> ColumnElement[Any]:
    """SQL: the path of the unit of `units` whose subtree holds the unit at `path` (NULL for none).

    Children of one unit have paths of one length (the parent's path and one id), so that is a
    prefix of the record's path; a forest of roots at several depths takes a CASE.
    """
    if not units:
        return null()
    lengths = {len(u.path) for u in units}
    if len(lengths) == 1:
        return func.substr(path, 1, lengths.pop())
    return case(*((path.startswith(u.path), literal(u.path)) for u in units), else_=null())


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


class ReportRepository:
    """The reports one reader may see, at one moment."""

    def __init__(
        self,
        session: AsyncSession,
        principal: Principal,
        zone: ZoneInfo,
        now: datetime,
        dialect: str,
        *,
        escalation_days: Sequence[int] = (1, 7, 30),
        repeat_threshold: int = 2,
        limitation_years: LimitationYears = DEFAULT_LIMITATION,
    ) -> None:
        self.session = session
        self.principal = principal
        self.zone = zone
        self.now = now
        self.today = local_today(now, zone)
        self.dialect = dialect
        self.escalation_days = tuple(escalation_days)
        self.repeat_threshold = repeat_threshold
        self.limitation_years = limitation_years
        # The plans the reader sees whole, read by `scope` (`access.seal.in_whole_plan`).
        self.whole_plans: Sequence[UUID] | None = None

    # --- scope -----------------------------------------------------------------------------

    async def scope(self, under: UUID | None) -> Scope:
        """The scope of a report: the subtree of `under`, which the reader must see (404 like an
        unknown id otherwise), or everything the reader may see. Every report starts here, so
        this also reads the plans the reader sees whole, once for all the report's statements."""
        whole_plans = seal.whole_plans_statement(self.principal)
        if whole_plans is not None:
            self.whole_plans = (await self.session.scalars(whole_plans)).all()
        columns = (Unit.id, Unit.code, Unit.name, Unit.path)
        visible = scopes.units_in_scope(self.principal)
        if under is not None:
            row = (
                await self.session.execute(select(*columns).where(Unit.id == under, visible))
            ).first()
            if row is None:
                raise NotFound(f"unit {under} not found")
            root: UnitRef | None = UnitRef(*row)
        else:
            roots = (
                await self.session.execute(
                    select(*columns).where(scopes.report_roots(self.principal)).order_by(Unit.code)
                )
            ).all()
            if len(roots) != 1:
                return Scope(None, tuple(UnitRef(*r) for r in roots))
            root = UnitRef(*roots[0])
        assert root is not None
        children = (
            await self.session.execute(
                select(*columns).where(Unit.parent_id == root.id, visible).order_by(Unit.code)
            )
        ).all()
        return Scope(root, tuple(UnitRef(*c) for c in children))

    def _in_scope(
        self, unit_id: InstrumentedAttribute[UUID] | ColumnElement[UUID], scope: Scope
    ) -> ColumnElement[bool]:
        units = select(Unit.id).where(scopes.report_units(self.principal, scope.root_path))
        return unit_id.in_(units)

    # --- the counted records ---------------------------------------------------------------

    def _visits(self, scope: Scope, period: Period) -> Select[Any]:
        """FROM visits (with their plan and unit) WHERE the visit counts in the report."""
        in_period = or_(
            and_(
                Visit.checked_in_at.is_not(None),
                Visit.checked_in_at >= period.start,
                Visit.checked_in_at < period.end,
            ),
            and_(
                Visit.checked_in_at.is_(None),
                Visit.window_start >= period.first,
                Visit.window_start <= period.last,
            ),
        )
        return (
            select()
            .select_from(Visit)
            .join(_PLAN, _PLAN.id == Visit.plan_id)
            .join(_UNIT, _UNIT.id == Visit.unit_id)
            .where(
                seal.visits_in_scope(self.principal),
                self._in_scope(Visit.unit_id, scope),
                _PLAN.approved_at.is_not(None),
                _PLAN.status != PlanStatus.CANCELLED.value,
                Visit.status != VisitStatus.CANCELLED.value,
                in_period,
            )
        )

    def _findings(
        self, scope: Scope, period: Period, *, in_time_order: bool = False
    ) -> Select[Any]:
        """FROM findings (with their unit) WHERE the finding counts in the report.

        `in_time_order`: the caller reads the findings in observation order, a chunk at a time
        (the register). SQLite then must walk `ix_findings_observed_at`; given the scope's units
        it picks the (unit_id, observed_at) index and sorts every remaining row of the period for
        each chunk in a temporary B-tree (0.22 s a chunk of 2,000 at 100,000 findings, against
        0.02 s along the time index). A unary `+` on the unit column is SQLite's documented way
        to keep a term from choosing an index; SQLite ignores SQLAlchemy's table hints."""
        unit_id: ColumnElement[UUID] = Finding.unit_id.expression
        if in_time_order and self.dialect == "sqlite":
            unit_id = UnaryExpression(unit_id, operator=custom_op("+"), type_=GUID())
        return (
            select()
            .select_from(Finding)
            .join(_UNIT, _UNIT.id == Finding.unit_id)
            .where(
                findings_repository.readable(self.principal, self.whole_plans),
                self._in_scope(unit_id, scope),
                Finding.status.in_(COUNTED_FINDINGS),
                Finding.observed_at >= period.start,
                Finding.observed_at < period.end,
            )
        )

    def _actions(self, scope: Scope, period: Period) -> Select[Any]:
        """FROM actions (with their finding and unit) WHERE the action counts in the report.

        The finding is joined as `Finding` itself, so that `access` reads its visibility from
        the joined row (`actions_of_joined_finding_in_scope`, the same rows as
        `actions_in_scope`) rather than from a semi-join over every finding."""
        return (
            select()
            .select_from(CorrectiveAction)
            .join(Finding, Finding.id == CorrectiveAction.finding_id)
            .join(_UNIT, _UNIT.id == CorrectiveAction.unit_id)
            .where(
                actions_repository.readable_with_joined_finding(self.principal, self.whole_plans),
                self._in_scope(CorrectiveAction.unit_id, scope),
                CorrectiveAction.status != ActionStatus.CANCELLED.value,
                Finding.status.in_(COUNTED_FINDINGS),
                Finding.observed_at >= period.start,
                Finding.observed_at < period.end,
            )
        )

    def _proposals(self, scope: Scope, period: Period) -> Select[Any]:
        """FROM discipline proposals (with their finding and the official's unit) WHERE the
        proposal counts: visible (`discipline.repository.readable`), about an official of the scope,
        on a counted finding observed in the period (a proposal goes with its finding, as an
        action does)."""
        return (
            select()
            .select_from(DisciplineProposal)
            .join(_FINDING, _FINDING.id == DisciplineProposal.finding_id)
            .join(_UNIT, _UNIT.id == DisciplineProposal.unit_id)
            .where(
                discipline_repository.readable(self.principal),
                self._in_scope(DisciplineProposal.unit_id, scope),
                _FINDING.status.in_(COUNTED_FINDINGS),
                _FINDING.observed_at >= period.start,
                _FINDING.observed_at < period.end,
            )
        )

    # --- dialect-specific arithmetic -------------------------------------------------------

    def _local_date(self, moment: Any) -> ColumnElement[date]:
        """SQL: the local calendar date of a UTC instant.

        PostgreSQL converts with the zone's rules; SQLite has no zone database and shifts by the
        zone's offset now (exact for zones without daylight saving, such as Asia/Ho_Chi_Minh)."""
        if self.dialect == "postgresql":
            return cast(func.timezone(self.zone.key, moment), Date)
        offset = self.now.astimezone(self.zone).utcoffset()
        minutes = int(offset.total_seconds() // 60) if offset else 0
        return func.date(moment, f"{minutes:+d} minutes")

    def _days_between(self, start: Any, end: Any) -> ColumnElement[Any]:
        """SQL: days (with fractions) from `start` to `end`."""
        if self.dialect == "postgresql":
            return func.extract("epoch", end - start) / 86400.0
        return func.julianday(end) - func.julianday(start)

    # --- aggregates ------------------------------------------------------------------------

    async def _visit_counts(
        self, scope: Scope, period: Period, units: Sequence[UnitRef]
    ) -> tuple[dict[str, schemas.Inspections], int, dict[str, tuple[int, float, int]]]:
        """Visits and concluded visits per kind, plans per kind, units inspected, and per unit of
        `units`: (visits, sum of scores, scores)."""
        concluded = Visit.status == VisitStatus.CONCLUDED.value
        rows = (
            self._visits(scope, period)
            .add_columns(
                _bucket(_UNIT.path, units).label("bucket"),
                _PLAN.kind.label("kind"),
                Visit.plan_id.label("plan_id"),
                concluded.label("concluded"),
                case((and_(concluded, Visit.score.is_not(None)), Visit.score)).label("score"),
            )
            .subquery()
        )
        grouped = await self.session.execute(
            select(
                rows.c.bucket,
                rows.c.kind,
                func.count(),
                func.coalesce(func.sum(case((rows.c.concluded, 1), else_=0)), 0),
                func.coalesce(func.sum(rows.c.score), 0.0),
                func.count(rows.c.score),
            ).group_by(rows.c.bucket, rows.c.kind)
        )
        visits = {k.value: [0, 0] for k in PlanKind}
        per_unit: dict[str, tuple[int, float, int]] = {}
        for bucket, kind, n, n_concluded, score_sum, scores in grouped.tuples():
            visits[kind][0] += n
            visits[kind][1] += n_concluded
            if bucket is not None:
                seen = per_unit.get(bucket, (0, 0.0, 0))
                per_unit[bucket] = (seen[0] + n, seen[1] + score_sum, seen[2] + scores)
        plans = dict(
            (
                await self.session.execute(
                    select(rows.c.kind, func.count(func.distinct(rows.c.plan_id))).group_by(
                        rows.c.kind
                    )
                )
            )
            .tuples()
            .all()
        )
        inspected = await self.session.scalar(
            self._visits(scope, period)
            .add_columns(func.count(func.distinct(Visit.unit_id)))
            .where(Visit.checked_in_at.is_not(None))
        )
        by_kind = {
            kind: schemas.Inspections(plans.get(kind, 0), counts[0], counts[1])
            for kind, counts in visits.items()
        }
        return by_kind, int(inspected or 0), per_unit

    async def _finding_counts(
        self, scope: Scope, period: Period, units: Sequence[UnitRef]
    ) -> tuple[schemas.FindingCounts, dict[str, int]]:
        """Findings by category and by severity (every category and severity present, zeros
        included, so the shape never depends on what was found), and per unit of `units`."""
        rows = (
            self._findings(scope, period)
            .add_columns(
                _bucket(_UNIT.path, units).label("bucket"),
                Finding.category.label("category"),
                Finding.severity.label("severity"),
            )
            .subquery()
        )
        grouped = await self.session.execute(
            select(rows.c.bucket, rows.c.category, rows.c.severity, func.count()).group_by(
                rows.c.bucket, rows.c.category, rows.c.severity
            )
        )
        by_category = {c.value: 0 for c in Category}
        by_severity = {s.value: 0 for s in Severity}
        per_unit: dict[str, int] = {}
        total = 0
        for bucket, category, severity, n in grouped.tuples():
            total += n
            by_category[category] = by_category.get(category, 0) + n
            by_severity[severity] = by_severity.get(severity, 0) + n
            if bucket is not None:
                per_unit[bucket] = per_unit.get(bucket, 0) + n
        return schemas.FindingCounts(total, by_category, by_severity), per_unit

    async def _action_counts(
        self, scope: Scope, period: Period, units: Sequence[UnitRef]
    ) -> tuple[schemas.ActionCounts, dict[str, tuple[int, int]]]:
        """Actions open, overdue, closed and closed on time, the median days to close, and per
        unit of `units`: (open, overdue)."""
        closed = CorrectiveAction.status == ActionStatus.CLOSED.value
        on_time = and_(
            closed,
            CorrectiveAction.closed_at.is_not(None),
            self._local_date(CorrectiveAction.closed_at) <= CorrectiveAction.due_date,
        )
        rows = (
            self._actions(scope, period)
            .add_columns(
                _bucket(_UNIT.path, units).label("bucket"),
                CorrectiveAction.status.in_(OPEN_STATUSES).label("open"),
                overdue_clause(self.today).label("overdue"),
                closed.label("closed"),
                on_time.label("on_time"),
            )
            .subquery()
        )

        def total(flag: Any) -> ColumnElement[int]:
            return func.coalesce(func.sum(case((flag, 1), else_=0)), 0)

        grouped = await self.session.execute(
            select(
                rows.c.bucket,
                func.count(),
                total(rows.c.open),
                total(rows.c.overdue),
                total(rows.c.closed),
                total(rows.c.on_time),
            ).group_by(rows.c.bucket)
        )
        sums = [0, 0, 0, 0, 0]
        per_unit: dict[str, tuple[int, int]] = {}
        for bucket, *counts in grouped.tuples():
            sums = [a + b for a, b in zip(sums, counts, strict=True)]
            if bucket is not None:
                per_unit[bucket] = (counts[1], counts[2])
        n, n_open, n_overdue, n_closed, n_on_time = sums
        return (
            schemas.ActionCounts(
                total=n,
                open=n_open,
                overdue=n_overdue,
                closed=n_closed,
                closed_on_time=n_on_time,
                closed_on_time_rate=_rate(n_on_time, n_closed),
                median_days_to_close=await self._median_days_to_close(scope, period)
                if n_closed
                else None,
            ),
            per_unit,
        )

    async def _median_days_to_close(self, scope: Scope, period: Period) -> float | None:
        """The median of days from assignment to closure, by a window over the closed actions:
        the middle row, or the mean of the two middle rows (the same SQL on both databases)."""
        days = self._days_between(CorrectiveAction.created_at, CorrectiveAction.closed_at)
        ranked = (
            self._actions(scope, period)
            .add_columns(
                days.label("days"),
                func.row_number().over(order_by=days).label("rn"),
                func.count().over().label("n"),
            )
            .where(
                CorrectiveAction.status == ActionStatus.CLOSED.value,
                CorrectiveAction.closed_at.is_not(None),
            )
            .subquery()
        )
        median = await self.session.scalar(
            select(func.avg(ranked.c.days)).where(
                ranked.c.rn * 2 >= ranked.c.n, ranked.c.rn * 2 <= ranked.c.n + 2
            )
        )
        return None if median is None else round(float(median), 1)

    # --- discipline ------------------------------------------------------------------------

    async def _proposal_counts(self, scope: Scope, period: Period) -> schemas.ProposalCounts:
        """Proposals by status and by measure (proposed, and decided): one GROUP BY."""
        grouped = await self.session.execute(
            self._proposals(scope, period)
            .add_columns(
                DisciplineProposal.status,
                DisciplineProposal.proposed_measure,
                DisciplineProposal.decided_measure,
                func.count(),
            )
            .group_by(
                DisciplineProposal.status,
                DisciplineProposal.proposed_measure,
                DisciplineProposal.decided_measure,
            )
        )
        by_status = {s.value: 0 for s in ProposalStatus}
        proposed = {m.value: 0 for m in MEASURE_ORDER}
        decided = {m.value: 0 for m in MEASURE_ORDER}
        total = 0
        for status, proposed_measure, decided_measure, n in grouped.tuples():
            total += n
            by_status[status] = by_status.get(status, 0) + n
            proposed[proposed_measure] = proposed.get(proposed_measure, 0) + n
            if status == ProposalStatus.DECIDED.value and decided_measure is not None:
                decided[decided_measure] = decided.get(decided_measure, 0) + n
        by_measure = [schemas.MeasureCount(m, proposed[m], decided.get(m, 0)) for m in proposed]
        return schemas.ProposalCounts(total, by_status, by_measure)

    def repeats_as_of(self, period: Period) -> date:
        """The day the repeat window ends: today, or the period's last day if that is earlier
        (a report on last year flags who was a repeat offender then)."""
        return min(self.today, period.last)

    async def _flagged(self, scope: Scope, period: Period) -> list[schemas.FlaggedOfficial]:
        """Officials at or over the repeat threshold (`discipline.repeats.flagged_officials`),
        counted only from what the reader may see of them: findings whose officials they may
        read (`findings.repository.officials_readable`: not the heads above the unit concerned) and
        proposals they see (`discipline.repository.readable`), in the scope. A reader who may not
        see an official's records learns neither the name nor the count."""
        in_scope_findings = self._in_scope(Finding.unit_id, scope)
        records = await flagged_officials(
            self.session,
            today=self.repeats_as_of(period),
            zone=self.zone,
            threshold=self.repeat_threshold,
            where_findings=[
                findings_repository.readable(self.principal, self.whole_plans),
                findings_repository.officials_readable(self.principal, self.whole_plans),
                in_scope_findings,
            ],
            where_proposals=[
                discipline_repository.readable(self.principal),
                self._in_scope(DisciplineProposal.unit_id, scope),
            ],
        )
        if not records:
            return []
        units = {
            unit_id: (code, name)
            for unit_id, code, name in (
                await self.session.execute(
                    select(Unit.id, Unit.code, Unit.name).where(
                        Unit.id.in_({r.key.unit_id for r in records})
                    )
                )
            ).tuples()
        }
        flagged = []
        for record in records:
            code, name = units[record.key.unit_id]
            last = record.last_decision
            flagged.append(
                schemas.FlaggedOfficial(
                    name=record.name,
                    position=record.position,
                    unit_id=record.key.unit_id,
                    unit_code=code,
                    unit_name=name,
                    count=record.count,
                    last_measure=last.measure.value if last else None,
                    last_decision_number=last.decision_number if last else None,
                    last_decision_date=last.decision_date if last else None,
                )
            )
        return flagged

    async def _unit_rates(self, scope: Scope, period: Period) -> list[schemas.UnitRate]:
        """Visited units ranked by counted findings per visit carried out (checked in), highest
        first: two GROUP BYs by unit."""
        visits = await self.session.execute(
            self._visits(scope, period)
            .add_columns(_UNIT.id, _UNIT.code, _UNIT.name, func.count())
            .where(Visit.checked_in_at.is_not(None))
            .group_by(_UNIT.id, _UNIT.code, _UNIT.name)
        )
        findings = dict(
            (
                await self.session.execute(
                    self._findings(scope, period)
                    .add_columns(Finding.unit_id, func.count())
                    .group_by(Finding.unit_id)
                )
            )
            .tuples()
            .all()
        )
        rows = [
            schemas.UnitRate(
                unit_id=unit_id,
                code=code,
                name=name,
                visits=n,
                findings=findings.get(unit_id, 0),
                findings_per_visit=round(findings.get(unit_id, 0) / n, 2),
            )
            for unit_id, code, name, n in visits.tuples()
        ]
        return sorted(rows, key=lambda r: (-r.findings_per_visit, -r.findings, r.code))

    async def _overdue(self, scope: Scope, period: Period) -> schemas.OverdueActions:
        """Overdue actions by escalation level, days overdue and child unit: one GROUP BY.

        Both the level and the ageing compare the due date with dates computed here from today
        (`days overdue >= n` is `due_date <= today - n`), the same SQL on both databases."""
        due = CorrectiveAction.due_date
        today = self.today
        level: ColumnElement[int] = literal(0)
        for threshold in self.escalation_days:
            level = level + case((due <= today - timedelta(days=threshold), 1), else_=0)
        short, long_ = AGEING
        age = case(
            (due >= today - timedelta(days=short), literal(0)),
            (due >= today - timedelta(days=long_), literal(1)),
            else_=literal(2),
        )
        rows = (
            self._actions(scope, period)
            .add_columns(
                _bucket(_UNIT.path, scope.units).label("bucket"),
                level.label("level"),
                age.label("age"),
            )
            .where(overdue_clause(today))
            .subquery()
        )
        grouped = await self.session.execute(
            select(rows.c.bucket, rows.c.level, rows.c.age, func.count()).group_by(
                rows.c.bucket, rows.c.level, rows.c.age
            )
        )
        # Level 0 (overdue, not yet escalated) exists only when the first threshold is over 1.
        first = 0 if not self.escalation_days or min(self.escalation_days) > 1 else 1
        levels = {n: [0, 0, 0] for n in range(first, len(self.escalation_days) + 1)}
        per_unit: dict[str, int] = {}
        total = 0
        for bucket, lvl, ageing, n in grouped.tuples():
            total += n
            levels.setdefault(int(lvl), [0, 0, 0])[int(ageing)] += n
            if bucket is not None:
                per_unit[bucket] = per_unit.get(bucket, 0) + n
        return schemas.OverdueActions(
            total=total,
            by_level=[
                schemas.OverdueLevel(n, c[0], c[1], c[2], sum(c)) for n, c in sorted(levels.items())
            ],
            by_unit=[
                schemas.OverdueUnit(u.id, u.code, u.name, per_unit.get(u.path, 0))
                for u in scope.units
            ],
        )

    async def _deadlines(self, scope: Scope, period: Period) -> list[schemas.DeadlineRow]:
        """Undecided proposals whose processing time or limitation period ends within
        `DEADLINE_WINDOW_DAYS` or has ended, soonest first.

        SQL narrows to the proposals that can qualify by comparing their dates with dates
        computed from today (a day of slack for 29 February); the exact deadlines are then
        `rules.processing_due_on` and `rules.limitation_ends_on`, the functions the proposal
        itself shows, on these few rows."""
        horizon = self.today + timedelta(days=DEADLINE_WINDOW_DAYS)
        slack = timedelta(days=1)
        years = self.limitation_years
        reprimand = DisciplineProposal.proposed_measure == Measure.REPRIMAND.value
        near = or_(
            and_(
                DisciplineProposal.extended.is_(False),
                DisciplineProposal.detected_date <= horizon - timedelta(days=rules.PROCESSING_DAYS),
            ),
            DisciplineProposal.detected_date
            <= horizon - timedelta(days=rules.EXTENDED_PROCESSING_DAYS),
            and_(
                reprimand,
                DisciplineProposal.violation_date
                <= rules.add_years(horizon, -years.reprimand) + slack,
            ),
            and_(
                ~reprimand,
                DisciplineProposal.violation_date <= rules.add_years(horizon, -years.other) + slack,
            ),
        )
        rows = await self.session.execute(
            self._proposals(scope, period)
            .add_columns(
                DisciplineProposal.id,
                DisciplineProposal.official_name,
                DisciplineProposal.official_position,
                _UNIT.id,
                _UNIT.code,
                _UNIT.name,
                DisciplineProposal.proposed_measure,
                DisciplineProposal.detected_date,
                DisciplineProposal.violation_date,
                DisciplineProposal.extended,
            )
            .where(DisciplineProposal.status == ProposalStatus.PROPOSED.value, near)
        )
        found = []
        for (
            proposal_id,
            name,
            position,
            unit_id,
            code,
            unit_name,
            measure,
            detected,
            violated,
            extended,
        ) in rows.tuples():
            ends = (
                (schemas.DeadlineKind.PROCESSING, rules.processing_due_on(detected, extended)),
                (
                    schemas.DeadlineKind.LIMITATION,
                    rules.limitation_ends_on(violated, years.for_measure(measure)),
                ),
            )
            for kind, day in ends:
                days_left = (day - self.today).days
                if days_left <= DEADLINE_WINDOW_DAYS:
                    found.append(
                        schemas.DeadlineRow(
                            proposal_id=proposal_id,
                            official_name=name,
                            official_position=position,
                            unit_id=unit_id,
                            unit_code=code,
                            unit_name=unit_name,
                            measure=measure,
                            deadline=kind,
                            date=day,
                            days_left=days_left,
                        )
                    )
        return sorted(found, key=lambda r: (r.date, r.unit_code, r.official_name, r.proposal_id))

    # --- the reports -----------------------------------------------------------------------

    async def summary(self, scope: Scope, period: Period) -> schemas.Summary:
        """The summary of a scope and period."""
        units = scope.units
        inspections, inspected, visits = await self._visit_counts(scope, period, units)
        findings, findings_by_unit = await self._finding_counts(scope, period, units)
        actions, actions_by_unit = await self._action_counts(scope, period, units)
        by_unit = []
        for unit in units:
            n_visits, score_sum, scores = visits.get(unit.path, (0, 0.0, 0))
            n_open, n_overdue = actions_by_unit.get(unit.path, (0, 0))
            by_unit.append(
                schemas.UnitRow(
                    unit_id=unit.id,
                    code=unit.code,
                    name=unit.name,
                    visits=n_visits,
                    findings=findings_by_unit.get(unit.path, 0),
                    open_actions=n_open,
                    overdue_actions=n_overdue,
                    average_score=round(score_sum / scores, 2) if scores else None,
                )
            )
        return schemas.Summary(
            period=schemas.PeriodOut(period.first, period.last),
            scope=scope.out(),
            generated_at=self.now,
            inspections=schemas.InspectionsByKind(
                scheduled=inspections[PlanKind.SCHEDULED.value],
                unannounced=inspections[PlanKind.UNANNOUNCED.value],
            ),
            units_inspected=inspected,
            findings=findings,
            actions=actions,
            by_unit=by_unit,
        )

    async def discipline(self, scope: Scope, period: Period) -> schemas.DisciplineReport:
        """The discipline report of a scope and period (docs/reports.md#discipline-report)."""
        return schemas.DisciplineReport(
            period=schemas.PeriodOut(period.first, period.last),
            scope=scope.out(),
            generated_at=self.now,
            proposals=await self._proposal_counts(scope, period),
            repeat_threshold=self.repeat_threshold,
            repeats_as_of=self.repeats_as_of(period),
            flagged_officials=await self._flagged(scope, period),
            units_by_findings_per_visit=await self._unit_rates(scope, period),
            overdue_actions=await self._overdue(scope, period),
            deadlines_within_days=DEADLINE_WINDOW_DAYS,
            deadlines=await self._deadlines(scope, period),
        )

    async def scorecard(self, unit_id: UUID, period: Period) -> schemas.Scorecard:
        """The scorecard of one unit (and its subtree): its visits with their scores in time
        order, findings by category and severity, actions, and the discipline proposals about
        its officials (through `discipline.repository.readable`, by the period of their
        findings)."""
        scope = await self.scope(unit_id)
        assert scope.root is not None
        local_day = case(
            (Visit.checked_in_at.is_not(None), self._local_date(Visit.checked_in_at)),
            else_=Visit.window_start,
        )
        rows = await self.session.execute(
            self._visits(scope, period)
            .add_columns(
                Visit.id,
                Visit.plan_id,
                _PLAN.kind,
                _UNIT.id,
                _UNIT.code,
                _UNIT.name,
                Visit.checked_in_at,
                Visit.window_start,
                Visit.status,
                Visit.score,
            )
            .order_by(local_day, _UNIT.code, Visit.id)
        )
        visits = [
            schemas.ScorecardVisit(
                visit_id=v_id,
                plan_id=plan_id,
                plan_kind=kind,
                unit_id=u_id,
                unit_code=code,
                unit_name=name,
                date=checked_in.astimezone(self.zone).date() if checked_in else window_start,
                status=status,
                score=score,
            )
            for v_id, plan_id, kind, u_id, code, name, checked_in, window_start, status, score in (
                rows.tuples()
            )
        ]
        scores = [
            v.score
            for v in visits
            if v.status == VisitStatus.CONCLUDED.value and v.score is not None
        ]
        findings, _ = await self._finding_counts(scope, period, ())
        actions, _ = await self._action_counts(scope, period, ())
        root = scope.root
        return schemas.Scorecard(
            period=schemas.PeriodOut(period.first, period.last),
            unit=schemas.UnitOut(root.id, root.code, root.name),
            generated_at=self.now,
            visits=visits,
            average_score=round(sum(scores) / len(scores), 2) if scores else None,
            findings=findings,
            actions=actions,
            discipline=await self._proposal_counts(scope, period),
        )

    # --- the findings register ---------------------------------------------------------------

    def _register(self, scope: Scope, period: Period, *leading: Any) -> Select[Any]:
        """The register's columns, in `RegisterRecord` order after `leading`, over the counted
        findings."""
        open_actions = (
            select(func.count())
            .select_from(CorrectiveAction)
            .where(
                actions_repository.of_readable_finding(Finding.id),
                CorrectiveAction.status.in_(OPEN_STATUSES),
            )
            .scalar_subquery()
        )
        return (
            self._findings(scope, period, in_time_order=True)
            .join(_PLAN, _PLAN.id == Finding.plan_id)
            .add_columns(
                *leading,
                # Labelled with `RegisterRecord`'s names, for `register_lines`' subquery.
                Finding.id.label("finding_id"),
                _UNIT.id.label("unit_id"),
                _UNIT.code.label("unit_code"),
                _UNIT.name.label("unit_name"),
                Finding.visit_id.label("visit_id"),
                _PLAN.kind.label("plan_kind"),
                Finding.category.label("category"),
                Finding.severity.label("severity"),
                Finding.status.label("status"),
                Finding.observed_at.label("observed_at"),
                Finding.title.label("title"),
                open_actions.label("open_actions"),
            )
        )

    async def register_page(
        self, scope: Scope, period: Period, cursor: str | None, limit: int
    ) -> schemas.RegisterPage:
        """One page of the register, in observation order (keyset cursor like every list)."""
        keys = [SortKey(Finding.observed_at), SortKey(Finding.id)]
        # The entity first: `page_rows` reads the cursor's values from it.
        statement = self._register(scope, period, Finding)
        rows, next_cursor = await page_rows(self.session, statement, keys, cursor, limit)
        return schemas.RegisterPage(
            items=[RegisterRecord(*row[1:]).out() for row in rows], next_cursor=next_cursor
        )

    async def database_writes_csv(self) -> bool:
        """Whether `register_lines` can run here: PostgreSQL with a UTF-8 database (`normalize`
        refuses other encodings; such a database gets the Python renderer instead)."""
        if self.dialect != "postgresql":
            return False
        encoding = await self.session.scalar(select(func.current_setting("server_encoding")))
        return encoding == "UTF8"

    async def register_lines(
        self,
        scope: Scope,
        period: Period,
        line: Callable[[ReadOnlyColumnCollection[str, Any]], ColumnElement[str]],
        zone: str,
    ) -> AsyncGenerator[list[str], None]:
        """PostgreSQL only: the whole register, in observation order, as one text per row that
        the database writes itself (`line`, given the register's columns by `RegisterRecord`
        name), `CHUNK_ROWS` at a time from a server-side cursor.

        `zone` becomes the transaction's `TimeZone` (`set_config(…, true)`: this transaction
        only), for `to_char` to print instants with the zone's offset. A row of the register is
        one text column here instead of twelve: the driver decodes and Python renders a tenth of
        what `register_chunks` costs (bench/reports.py)."""
        await self.session.execute(select(func.set_config("TimeZone", zone, True)))
        rows = self._register(scope, period).subquery("register")
        statement = select(line(rows.c)).order_by(rows.c.observed_at, rows.c.finding_id)
        connection = await self.session.connection()
        result = await connection.stream(statement.execution_options(yield_per=CHUNK_ROWS))
        async for part in result.partitions(CHUNK_ROWS):
            yield [text for (text,) in part]

    async def register_chunks(
        self, scope: Scope, period: Period
    ) -> AsyncGenerator[list[RegisterRecord], None]:
        """The whole register, in observation order, `CHUNK_ROWS` rows at a time.

        PostgreSQL: one statement on a server-side cursor (`yield_per`). SQLite: keyset chunks in
        the one read transaction (WAL keeps its snapshot), since its driver would otherwise read
        the whole result ahead. Memory is one chunk either way."""
        statement = self._register(scope, period).order_by(Finding.observed_at, Finding.id)
        # Executed as Core, on the session's connection: the rows are plain columns, and the
        # ORM's row loading cost ~11 µs a row, a fifth of the whole download (bench/reports.py).
        connection = await self.session.connection()
        if self.dialect == "postgresql":
            result = await connection.stream(statement.execution_options(yield_per=CHUNK_ROWS))
            async for part in result.partitions(CHUNK_ROWS):
                yield [RegisterRecord(*row) for row in part]
            return
        # Each chunk walks the (observed_at, id) index from where the last one ended and stops
        # after CHUNK_ROWS rows (`in_time_order` in `_register`); the keyset's `>=` bounds the
        # index range.
        after: tuple[datetime, UUID] | None = None
        while True:
            chunk = statement
            if after is not None:
                chunk = chunk.where(
                    Finding.observed_at >= after[0],
                    or_(Finding.observed_at > after[0], Finding.id > after[1]),
                )
            rows = [
                RegisterRecord(*row) for row in await connection.execute(chunk.limit(CHUNK_ROWS))
            ]
            if rows:
                yield rows
            if len(rows) < CHUNK_ROWS:
                return
            after = (rows[-1].observed_at, rows[-1].finding_id)
