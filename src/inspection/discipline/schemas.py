"""API shapes of discipline proposals."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec
from msgspec import Meta

from inspection.discipline.models import ProposalStatus
from inspection.discipline.rules import OfficialStatus

Text = Annotated[str, Meta(min_length=1, max_length=20_000)]
Reason = Annotated[str, Meta(min_length=1, max_length=5_000)]
Name = Annotated[str, Meta(min_length=1, max_length=255)]
# A measure is text, not an enum, at the boundary: one outside the table is a 422 that lists the
# measures allowed for this official and date, not a bare "invalid enum value".
MeasureName = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=64,
        description="reprimand, warning, salary_step_reduction, demotion, removal_from_post, "
        "dismissal or removal_from_office; which apply follows docs/discipline.md.",
    ),
]
DecisionNumber = Annotated[str, Meta(min_length=1, max_length=64)]


class OfficialIn(msgspec.Struct, forbid_unknown_fields=True):
    """The official proposed for discipline (personal data)."""

    name: Name
    unit_id: UUID
    status: OfficialStatus
    position: Annotated[str, Meta(max_length=255)] | None = None
    holds_management_post: bool = False


class ProposalCreate(msgspec.Struct, forbid_unknown_fields=True):
    """A proposal on a finding: who, what, when, and the measure proposed."""

    official: OfficialIn
    violation: Text
    violation_date: date
    detected_date: date
    proposed_measure: MeasureName
    legal_basis: Annotated[str, Meta(max_length=5_000)] | None = None


class Decision(msgspec.Struct, forbid_unknown_fields=True):
    """The competent authority's outcome: a measure decided (by number and date), or not pursued
    with a reason."""

    outcome: Literal["decided", "not_pursued"]
    measure: MeasureName | None = None
    decision_number: DecisionNumber | None = None
    decision_date: date | None = None
    reason: Reason | None = None


class Withdrawal(msgspec.Struct, forbid_unknown_fields=True):
    """Why the proposer withdraws the proposal."""

    reason: Reason


class Extension(msgspec.Struct, forbid_unknown_fields=True):
    """Why the case needs the longer processing time (150 days instead of 90)."""

    reason: Reason


class Official(msgspec.Struct):
    """The official as proposed."""

    name: str
    position: str | None
    unit_id: UUID
    status: OfficialStatus
    holds_management_post: bool


class MeasureInForce(msgspec.Struct):
    """A measure decided for the same official within the last 12 months."""

    proposal_id: UUID
    measure: str
    decision_number: str | None
    decision_date: date
    in_force_until: date


class Repeat(msgspec.Struct):
    """Repeat offences of the official in the 12 months up to today: distinct findings that name
    them or carry a proposal about them; `flagged` at INSPECTION_REPEAT_THRESHOLD."""

    count: int
    flagged: bool
    threshold: int
    measure_in_force: MeasureInForce | None


class Outcome(msgspec.Struct, omit_defaults=True):
    """How the proposal ended."""

    outcome: Literal["decided", "not_pursued", "withdrawn"]
    at: datetime
    by: UUID | None
    measure: str | None = None
    decision_number: str | None = None
    decision_date: date | None = None
    reason: str | None = None


class Proposal(msgspec.Struct):
    """A discipline proposal with what the law allows and its deadlines: `processing_due_on`
    (90 days from detection, 150 once extended) and `limitation_ends_on` (from the violation
    date, by the class of the measure decided, or else proposed)."""

    id: UUID
    finding_id: UUID
    visit_id: UUID
    plan_id: UUID
    official: Official
    violation: str
    violation_date: date
    detected_date: date
    proposed_measure: str
    legal_basis: str | None
    status: ProposalStatus
    allowed_measures: list[str]
    legal_sources: list[str]
    processing_due_on: date
    processing_extended: bool
    processing_overdue: bool
    limitation_ends_on: date
    repeat: Repeat
    outcome: Outcome | None
    allowed_transitions: list[str]
    proposed_by: UUID
    created_at: datetime
    updated_at: datetime
    version: int
    extension_reason: str | None = None
