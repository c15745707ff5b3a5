"""Corrective actions and their timeline."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from advanced_alchemy.types import GUID, DateTimeUTC, JsonB
from sqlalchemy import Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from inspection.db.base import Entity, Record
from inspection.kit.ids import new_id


class ActionStatus(StrEnum):
    """open → in_progress → submitted → closed; a returned response goes back to in_progress;
    cancelled by a planner. `overdue` is derived from the due date, never stored."""

    OPEN = "open"
    IN_PROGRESS = "in_progress"
    SUBMITTED = "submitted"
    CLOSED = "closed"
    CANCELLED = "cancelled"


OPEN_STATUSES = (
    ActionStatus.OPEN.value,
    ActionStatus.IN_PROGRESS.value,
    ActionStatus.SUBMITTED.value,
)
# Overdue counts only while the unit still owes work: a submitted response awaits the inspector.
OWING_STATUSES = (ActionStatus.OPEN.value, ActionStatus.IN_PROGRESS.value)


class Priority(StrEnum):
    """How urgent the fix is."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    URGENT = "urgent"


class CorrectiveAction(Entity):
    """What the inspected unit must fix, by when, and where it stands."""

    __tablename__ = "corrective_actions"
    __table_args__ = (Index("ix_corrective_actions_status_due", "status", "due_date"),)

    finding_id: Mapped[UUID] = mapped_column(GUID, ForeignKey("findings.id"), index=True)
    # Copied from the finding so that lists and counts need no join.
    visit_id: Mapped[UUID] = mapped_column(GUID, ForeignKey("visits.id"), index=True)
    plan_id: Mapped[UUID] = mapped_column(GUID, ForeignKey("plans.id"), index=True)
    unit_id: Mapped[UUID] = mapped_column(GUID, ForeignKey("units.id"), index=True)
    assignee_id: Mapped[UUID] = mapped_column(GUID, ForeignKey("users.id"), index=True)
    requirement: Mapped[str] = mapped_column(Text)
    priority: Mapped[str] = mapped_column(String(16))
    due_date: Mapped[date] = mapped_column(Date)
    original_due_date: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), default=ActionStatus.OPEN.value)
    rounds: Mapped[int] = mapped_column(Integer, default=0)
    extensions_approved: Mapped[int] = mapped_column(Integer, default=0)
    pending_due_date: Mapped[date | None] = mapped_column(Date)
    pending_reason: Mapped[str | None] = mapped_column(Text)
    response: Mapped[str | None] = mapped_column(Text)
    submitted_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    cancel_reason: Mapped[str | None] = mapped_column(Text)
    # Bookkeeping of `inspection jobs run`: the highest escalation level already raised, and the
    # due date a due-soon reminder was sent for (an approved extension re-arms it).
    escalated_level: Mapped[int] = mapped_column(Integer, default=0)
    reminded_for: Mapped[date | None] = mapped_column(Date)
    created_by: Mapped[UUID] = mapped_column(GUID, ForeignKey("users.id"))


class ActionEvent(Record):
    """One entry of an action's timeline (append-only): who did what, when, with what."""

    __tablename__ = "action_events"

    id: Mapped[UUID] = mapped_column(GUID, primary_key=True, default=new_id)
    action_id: Mapped[UUID] = mapped_column(GUID, ForeignKey("corrective_actions.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    actor_id: Mapped[UUID | None] = mapped_column(GUID)
    actor: Mapped[str] = mapped_column(String(255))
    data: Mapped[dict[str, Any]] = mapped_column(JsonB, default=dict)
