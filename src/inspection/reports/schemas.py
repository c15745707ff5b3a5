"""The JSON answers of the reports (msgspec Structs). The CSV, XLSX and PDF forms are built from
these same answers (`reports/documents.py`), so every format shows the same numbers."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from uuid import UUID

import msgspec


class Format(StrEnum):
    """What a report is answered as: JSON, or a download."""

    JSON = "json"
    CSV = "csv"
    XLSX = "xlsx"
    PDF = "pdf"


class RegisterFormat(StrEnum):
    """The findings register is a list: JSON pages, or the whole register as a download."""

    JSON = "json"
    CSV = "csv"
    XLSX = "xlsx"


class PeriodOut(msgspec.Struct, rename={"first": "from", "last": "to"}):
    """The period covered, local dates, both included."""

    first: date
    last: date


class ScopeOut(msgspec.Struct):
    """The unit whose subtree the report covers; `unit_id` is null when the reader's grants cover
    several subtrees and no `under` was given (then `by_unit` lists each of them)."""

    unit_id: UUID | None
    name: str


class Inspections(msgspec.Struct):
    """Visits of approved plans of one kind counted in the period (cancelled ones left out), the
    plans they belong to, and how many of them are concluded."""

    plans: int
    visits: int
    concluded: int


class InspectionsByKind(msgspec.Struct):
    """Scheduled and unannounced inspections."""

    scheduled: Inspections
    unannounced: Inspections


class FindingCounts(msgspec.Struct):
    """Submitted findings (closed ones included; drafts and dismissed ones left out)."""

    total: int
    by_category: dict[str, int]
    by_severity: dict[str, int]


class ActionCounts(msgspec.Struct):
    """Corrective actions of the counted findings (cancelled ones left out), as of now.

    `open` includes responses awaiting verification; `overdue` is the part of `open` past its due
    date while the unit still owes work; `closed_on_time_rate` is the share of closed actions
    closed by the end of their due date (null without closed actions); `median_days_to_close`
    counts days from assignment to verification (null without closed actions).
    """

    total: int
    open: int
    overdue: int
    closed: int
    closed_on_time: int
    closed_on_time_rate: float | None
    median_days_to_close: float | None


class UnitRow(msgspec.Struct):
    """One child unit of the scope, counting its whole subtree."""

    unit_id: UUID
    code: str
    name: str
    visits: int
    findings: int
    open_actions: int
    overdue_actions: int
    average_score: float | None


class Summary(msgspec.Struct):
    """`GET /api/v1/reports/summary`."""

    period: PeriodOut
    scope: ScopeOut
    generated_at: datetime
    inspections: InspectionsByKind
    units_inspected: int
    findings: FindingCounts
    actions: ActionCounts
    by_unit: list[UnitRow]


class ScorecardVisit(msgspec.Struct):
    """One visit of the unit's subtree in the period, with its checklist score once concluded.

    `date` is the local check-in date, or the window's first day while not checked in."""

    visit_id: UUID
    plan_id: UUID
    plan_kind: str
    unit_id: UUID
    unit_code: str
    unit_name: str
    date: date
    status: str
    score: float | None


class UnitOut(msgspec.Struct):
    """The unit a scorecard is about."""

    unit_id: UUID
    code: str
    name: str


class MeasureCount(msgspec.Struct):
    """One disciplinary measure: proposals that propose it (every status), and decisions that
    decided it (the decided measure may differ from the proposed one)."""

    measure: str
    proposed: int
    decided: int


class ProposalCounts(msgspec.Struct):
    """Discipline proposals on the counted findings of the period
    (`discipline.repository.readable`).

    `by_status` lists every status and `by_measure` every measure of the law (lightest first),
    zeros included, so the shape never depends on the data."""

    total: int
    by_status: dict[str, int]
    by_measure: list[MeasureCount]


class Scorecard(msgspec.Struct):
    """`GET /api/v1/reports/units/{id}/scorecard`: the unit and its subtree; `discipline` counts
    the proposals about officials of the subtree, by the period of their findings."""

    period: PeriodOut
    unit: UnitOut
    generated_at: datetime
    visits: list[ScorecardVisit]
    average_score: float | None
    findings: FindingCounts
    actions: ActionCounts
    discipline: ProposalCounts


class FlaggedOfficial(msgspec.Struct):
    """An official with `count` incidents in the 12 months ending `DisciplineReport.repeats_as_of`
    (at or over the threshold), counted only from records the reader may see; the last measure
    decided for them, if any."""

    name: str
    position: str | None
    unit_id: UUID
    unit_code: str
    unit_name: str
    count: int
    last_measure: str | None
    last_decision_number: str | None
    last_decision_date: date | None


class UnitRate(msgspec.Struct):
    """A unit visited in the period: visits carried out (checked in), counted findings, and
    findings per visit (the ranking's key)."""

    unit_id: UUID
    code: str
    name: str
    visits: int
    findings: int
    findings_per_visit: float


class OverdueLevel(msgspec.Struct):
    """Overdue corrective actions at one escalation level, by days overdue."""

    level: int
    days_1_7: int
    days_8_30: int
    days_over_30: int
    total: int


class OverdueUnit(msgspec.Struct):
    """Overdue corrective actions of one child unit of the scope (its whole subtree)."""

    unit_id: UUID
    code: str
    name: str
    overdue: int


class OverdueActions(msgspec.Struct):
    """Overdue corrective actions of the period's counted findings, as of today: past the end of
    the due date while the unit still owes work. `level` is the escalation level the action has
    reached (`INSPECTION_ESCALATION_DAYS`), as on the actions list."""

    total: int
    by_level: list[OverdueLevel]
    by_unit: list[OverdueUnit]


class DeadlineKind(StrEnum):
    """Which deadline of an undecided proposal: processing time or limitation period."""

    PROCESSING = "processing"
    LIMITATION = "limitation"


class DeadlineRow(msgspec.Struct):
    """An undecided proposal whose deadline ends within 30 days or has passed: `days_left` is
    negative once passed (days overdue), 0 on the last day."""

    proposal_id: UUID
    official_name: str
    official_position: str | None
    unit_id: UUID
    unit_code: str
    unit_name: str
    measure: str
    deadline: DeadlineKind
    date: date
    days_left: int


class DisciplineReport(msgspec.Struct):
    """`GET /api/v1/reports/discipline`."""

    period: PeriodOut
    scope: ScopeOut
    generated_at: datetime
    proposals: ProposalCounts
    repeat_threshold: int
    repeats_as_of: date
    flagged_officials: list[FlaggedOfficial]
    units_by_findings_per_visit: list[UnitRate]
    overdue_actions: OverdueActions
    deadlines_within_days: int
    deadlines: list[DeadlineRow]


class RegisterRow(msgspec.Struct):
    """One finding of the register."""

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


class RegisterPage(msgspec.Struct):
    """A page of the findings register (`{items, next_cursor}` like every list)."""

    items: list[RegisterRow]
    next_cursor: str | None
