"""API shapes of corrective actions."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec
from msgspec import UNSET, Meta, UnsetType

from inspection.actions.models import ActionStatus, Priority

Text = Annotated[str, Meta(min_length=1, max_length=20_000)]
Reason = Annotated[str, Meta(min_length=1, max_length=5_000)]


class ActionCreate(msgspec.Struct, forbid_unknown_fields=True):
    """What the unit must fix, who answers for it and by when."""

    requirement: Text
    unit_id: UUID
    assignee_id: UUID
    due_date: date
    priority: Priority = Priority.MEDIUM


class Response(msgspec.Struct, forbid_unknown_fields=True):
    """The unit's answer: what was done, with evidence uploaded to the action beforehand."""

    text: Text
    evidence_ids: Annotated[list[UUID], Meta(max_length=50)] = msgspec.field(default_factory=list)


class Verification(msgspec.Struct, forbid_unknown_fields=True):
    """The inspector's decision on a response; a return needs a reason."""

    outcome: Literal["accepted", "returned"]
    reason: Reason | None = None


class ExtensionRequest(msgspec.Struct, forbid_unknown_fields=True):
    """The unit asks for a later due date."""

    due_date: date
    reason: Reason


class ExtensionDecision(msgspec.Struct, forbid_unknown_fields=True):
    """A planner approves or refuses the pending request."""

    approve: bool
    note: Reason | None = None


class Cancellation(msgspec.Struct, forbid_unknown_fields=True):
    """Why the action is no longer needed."""

    reason: Reason


class CommentIn(msgspec.Struct, forbid_unknown_fields=True):
    """A remark on the action's timeline."""

    text: Text


class PendingExtension(msgspec.Struct):
    """An extension asked for and not decided yet (the clock keeps running meanwhile)."""

    due_date: date
    reason: str


class Event(msgspec.Struct):
    """One entry of the timeline."""

    id: UUID
    kind: str
    at: datetime
    actor_id: UUID | None
    actor: str
    data: dict[str, Any]


class Action(msgspec.Struct, omit_defaults=True):
    """A corrective action; `overdue`, `days_overdue` and `escalation_level` are computed from
    the due date at the end of that day in the configured time zone."""

    id: UUID
    finding_id: UUID
    visit_id: UUID
    plan_id: UUID
    unit_id: UUID
    assignee_id: UUID
    requirement: str
    priority: Priority
    due_date: date
    original_due_date: date
    status: ActionStatus
    overdue: bool
    days_overdue: int
    escalation_level: int
    rounds: int
    extensions_approved: int
    allowed_transitions: list[str]
    created_by: UUID
    created_at: datetime
    updated_at: datetime
    version: int
    pending_extension: PendingExtension | None = None
    response: str | None = None
    submitted_at: datetime | None = None
    closed_at: datetime | None = None
    cancelled_at: datetime | None = None
    cancel_reason: str | None = None
    timeline: list[Event] | UnsetType = UNSET
