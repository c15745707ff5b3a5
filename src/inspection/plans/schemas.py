"""API shapes of checklists, plans, visits and checklist responses."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated
from uuid import UUID

import msgspec
from msgspec import UNSET, Meta, UnsetType

from inspection.plans.models import PlanKind, PlanStatus, ResponseResult, TeamRole, VisitStatus

Text = Annotated[str, Meta(min_length=1, max_length=20_000)]
Title = Annotated[str, Meta(min_length=1, max_length=500)]
Reason = Annotated[str, Meta(min_length=1, max_length=2_000)]
CriterionCode = Annotated[
    str,
    Meta(
        min_length=1, max_length=32, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$(?!\n)", examples=["C03"]
    ),
]
Focus = Annotated[str, Meta(min_length=1, max_length=64, examples=["dossier_handling"])]


class CriterionIn(msgspec.Struct, forbid_unknown_fields=True):
    """One criterion of a checklist."""

    code: CriterionCode
    text: Text
    category: Annotated[str, Meta(min_length=1, max_length=64)]
    weight: Annotated[float, Meta(gt=0, le=1000)] = 1.0
    evidence_required: bool = False
    note: Annotated[str, Meta(max_length=2_000)] | None = None


class ChecklistCreate(msgspec.Struct, forbid_unknown_fields=True):
    """A new checklist template (revision 1)."""

    title: Title
    criteria: Annotated[list[CriterionIn], Meta(min_length=1, max_length=500)]
    description: Annotated[str, Meta(max_length=20_000)] | None = None


class ChecklistUpdate(msgspec.Struct, forbid_unknown_fields=True):
    """Changes to an unused revision; `criteria` replaces the whole list."""

    title: Title | UnsetType = UNSET
    description: Annotated[str, Meta(max_length=20000)] | UnsetType | None = UNSET
    criteria: Annotated[list[CriterionIn], Meta(min_length=1, max_length=500)] | UnsetType = UNSET


class Criterion(msgspec.Struct):
    """A criterion as stored."""

    code: str
    text: str
    category: str
    weight: float
    evidence_required: bool
    note: str | None


class Checklist(msgspec.Struct):
    """A checklist revision. `frozen`: a plan uses it, so changes need a new revision."""

    id: UUID
    family_id: UUID
    revision: int
    title: str
    description: str | None
    frozen: bool
    criteria: list[Criterion]
    version: int
    created_at: datetime
    updated_at: datetime


class ChecklistSummary(msgspec.Struct):
    """A checklist in a list (without its criteria)."""

    id: UUID
    family_id: UUID
    revision: int
    title: str
    frozen: bool
    criteria_count: int
    version: int
    created_at: datetime


class TeamMemberIn(msgspec.Struct, forbid_unknown_fields=True):
    """A user on the team, as lead or member."""

    user_id: UUID
    role: TeamRole = TeamRole.MEMBER


class TargetIn(msgspec.Struct, forbid_unknown_fields=True):
    """A unit to visit and the dates within which the visit happens."""

    unit_id: UUID
    window_start: date
    window_end: date


class PlanCreate(msgspec.Struct, forbid_unknown_fields=True):
    """A new plan (draft). Each target becomes a visit."""

    kind: PlanKind
    title: Title
    period_start: date
    period_end: date
    checklist_id: UUID
    team: Annotated[list[TeamMemberIn], Meta(min_length=1, max_length=50)]
    targets: Annotated[list[TargetIn], Meta(min_length=1, max_length=500)]
    unit_id: UUID | None = None
    legal_basis: Annotated[str, Meta(max_length=5_000)] | None = None
    focus: Annotated[list[Focus], Meta(max_length=20)] = msgspec.field(default_factory=list)


class PlanUpdate(msgspec.Struct, forbid_unknown_fields=True):
    """Changes to a plan. A draft may change anything but its organising unit; an approved plan
    may add or cancel targets (`targets` is the complete new list) and change its team."""

    kind: PlanKind | UnsetType = UNSET
    title: Title | UnsetType = UNSET
    legal_basis: Annotated[str, Meta(max_length=5000)] | UnsetType | None = UNSET
    focus: Annotated[list[Focus], Meta(max_length=20)] | UnsetType = UNSET
    period_start: date | UnsetType = UNSET
    period_end: date | UnsetType = UNSET
    checklist_id: UUID | UnsetType = UNSET
    team: Annotated[list[TeamMemberIn], Meta(min_length=1, max_length=50)] | UnsetType = UNSET
    targets: Annotated[list[TargetIn], Meta(min_length=1, max_length=500)] | UnsetType = UNSET


class Cancellation(msgspec.Struct, forbid_unknown_fields=True):
    """Why a plan is cancelled."""

    reason: Reason


class TeamMember(msgspec.Struct):
    """A team member with their name."""

    user_id: UUID
    full_name: str
    role: TeamRole


class PlanRef(msgspec.Struct):
    """What a visit shows of its plan. Without the period when the viewer may not know it, and
    without the free text (title null, legal basis null, focus empty) while it may name a target
    still sealed to the viewer."""

    id: UUID
    kind: PlanKind
    status: PlanStatus
    title: str | None
    legal_basis: str | None
    focus: list[str]
    period_start: date | None
    period_end: date | None


class Position(msgspec.Struct, forbid_unknown_fields=True):
    """A GPS fix: decimal degrees and accuracy in metres."""

    lat: Annotated[float, Meta(ge=-90, le=90)]
    lon: Annotated[float, Meta(ge=-180, le=180)]
    accuracy_m: Annotated[float, Meta(ge=0, le=100_000)] | None = None


class Visit(msgspec.Struct):
    """A visit to one unit."""

    id: UUID
    plan: PlanRef
    unit_id: UUID
    unit_code: str
    unit_name: str
    window_start: date
    window_end: date
    status: VisitStatus
    checked_in_at: datetime | None
    check_in_position: Position | None
    check_in_reason: str | None
    checked_out_at: datetime | None
    concluded_at: datetime | None
    conclusion: str | None
    score: float | None
    cancel_reason: str | None
    # Open corrective actions of the visit's findings.
    open_actions: int
    version: int


class Plan(msgspec.Struct):
    """A plan with its team and the visits the viewer may see. A unit head who sees it through
    its visits gets no team, no period of an unannounced plan, and no free text (title, legal
    basis, focus) while a visit of it to their units is not checked in."""

    id: UUID
    kind: PlanKind
    status: PlanStatus
    title: str | None
    legal_basis: str | None
    focus: list[str]
    period_start: date | None
    period_end: date | None
    checklist_id: UUID
    unit_id: UUID
    team: list[TeamMember]
    visits: list[Visit]
    approved_at: datetime | None
    cancel_reason: str | None
    # Open corrective actions over the visits shown.
    open_actions: int
    version: int
    created_at: datetime
    updated_at: datetime


class CheckIn(msgspec.Struct, forbid_unknown_fields=True):
    """Arrival on site. `reason` is required when the date is outside the visit's window."""

    position: Position
    at: datetime | None = None
    reason: Reason | None = None


class CheckOut(msgspec.Struct, forbid_unknown_fields=True):
    """Leaving the site."""

    at: datetime | None = None


class Conclusion(msgspec.Struct, forbid_unknown_fields=True):
    """The inspection conclusion (kết luận kiểm tra); the score is computed."""

    conclusion: Text


class ResponseIn(msgspec.Struct, forbid_unknown_fields=True):
    """The answer to one criterion."""

    result: ResponseResult
    note: Annotated[str, Meta(max_length=5_000)] | None = None


class Response(msgspec.Struct):
    """A stored answer."""

    visit_id: UUID
    criterion_code: str
    result: ResponseResult
    note: str | None
    answered_by: UUID | None
    version: int
    updated_at: datetime


class VisitDetail(Visit):
    """A visit with its checklist responses."""

    responses: list[Response]
