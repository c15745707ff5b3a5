"""Checklists, plans, teams, visits and checklist responses."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from uuid import UUID

from advanced_alchemy.types import GUID, DateTimeUTC, JsonB
from sqlalchemy import (
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from inspection.db.base import Entity


class PlanKind(StrEnum):
    """Scheduled inspections are announced; unannounced ones stay secret until the team arrives."""

    SCHEDULED = "scheduled"
    UNANNOUNCED = "unannounced"


class PlanStatus(StrEnum):
    """draft → approved → in_progress → completed, or cancelled."""

    DRAFT = "draft"
    APPROVED = "approved"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class VisitStatus(StrEnum):
    """planned → checked_in → checked_out → concluded, or cancelled."""

    PLANNED = "planned"
    CHECKED_IN = "checked_in"
    CHECKED_OUT = "checked_out"
    CONCLUDED = "concluded"
    CANCELLED = "cancelled"


class TeamRole(StrEnum):
    """The team lead (trưởng đoàn) confirms findings and concludes visits."""

    LEAD = "lead"
    MEMBER = "member"


class ResponseResult(StrEnum):
    """The outcome of one criterion at one visit."""

    PASS = "pass"  # noqa: S105 - a checklist result, not a password
    FAIL = "fail"
    NOT_APPLICABLE = "na"


class Checklist(Entity):
    """A template of criteria. Revisions of one template share `family_id`; once a plan uses a
    revision it is frozen and changes go into a new revision."""

    __tablename__ = "checklists"
    __table_args__ = (
        UniqueConstraint("family_id", "revision", name="uq_checklists_family_revision"),
    )

    family_id: Mapped[UUID] = mapped_column(GUID, index=True)
    revision: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    frozen: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by: Mapped[UUID | None] = mapped_column(GUID)


class Criterion(Entity):
    """One criterion of a checklist revision."""

    __tablename__ = "criteria"
    __table_args__ = (UniqueConstraint("checklist_id", "code", name="uq_criteria_checklist_code"),)

    checklist_id: Mapped[UUID] = mapped_column(
        GUID, ForeignKey("checklists.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    code: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(Text)
    category: Mapped[str] = mapped_column(String(64))
    weight: Mapped[float] = mapped_column(Float)
    evidence_required: Mapped[bool] = mapped_column(Boolean, default=False)
    note: Mapped[str | None] = mapped_column(Text)


class Plan(Entity):
    """An inspection plan (kế hoạch kiểm tra) organised by a unit, with a team and targets."""

    __tablename__ = "plans"
    __table_args__ = (Index("ix_plans_status_kind", "status", "kind"),)

    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=PlanStatus.DRAFT.value)
    title: Mapped[str] = mapped_column(String(500))
    legal_basis: Mapped[str | None] = mapped_column(Text)
    focus: Mapped[list[str]] = mapped_column(JsonB, default=list)
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    checklist_id: Mapped[UUID] = mapped_column(GUID, ForeignKey("checklists.id"), index=True)
    unit_id: Mapped[UUID] = mapped_column(GUID, ForeignKey("units.id"), index=True)
    created_by: Mapped[UUID | None] = mapped_column(GUID)
    approved_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    approved_by: Mapped[UUID | None] = mapped_column(GUID)
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    cancel_reason: Mapped[str | None] = mapped_column(Text)


class TeamMember(Entity):
    """A user on a plan's team (đoàn kiểm tra)."""

    __tablename__ = "plan_team"
    __table_args__ = (UniqueConstraint("plan_id", "user_id", name="uq_plan_team_plan_user"),)

    plan_id: Mapped[UUID] = mapped_column(
        GUID, ForeignKey("plans.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[UUID] = mapped_column(GUID, ForeignKey("users.id"), index=True)
    role: Mapped[str] = mapped_column(String(16))


class Visit(Entity):
    """One target of a plan: a unit to visit within a date window."""

    __tablename__ = "visits"
    __table_args__ = (
        UniqueConstraint("plan_id", "unit_id", name="uq_visits_plan_unit"),
        Index("ix_visits_window", "window_start", "window_end"),
        # Reports count a visit in the period of its check-in (reports/repository.py).
        Index("ix_visits_checked_in_at", "checked_in_at"),
    )

    plan_id: Mapped[UUID] = mapped_column(
        GUID, ForeignKey("plans.id", ondelete="CASCADE"), index=True
    )
    unit_id: Mapped[UUID] = mapped_column(GUID, ForeignKey("units.id"), index=True)
    window_start: Mapped[date] = mapped_column(Date)
    window_end: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), default=VisitStatus.PLANNED.value, index=True)
    checked_in_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    checked_in_by: Mapped[UUID | None] = mapped_column(GUID)
    check_in_lat: Mapped[float | None] = mapped_column(Float)
    check_in_lon: Mapped[float | None] = mapped_column(Float)
    check_in_accuracy_m: Mapped[float | None] = mapped_column(Float)
    check_in_reason: Mapped[str | None] = mapped_column(Text)
    checked_out_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    checked_out_by: Mapped[UUID | None] = mapped_column(GUID)
    concluded_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    concluded_by: Mapped[UUID | None] = mapped_column(GUID)
    conclusion: Mapped[str | None] = mapped_column(Text)
    score: Mapped[float | None] = mapped_column(Float)
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    cancel_reason: Mapped[str | None] = mapped_column(Text)


class ChecklistResponse(Entity):
    """The team's answer to one criterion at one visit."""

    __tablename__ = "checklist_responses"
    __table_args__ = (
        UniqueConstraint("visit_id", "criterion_code", name="uq_checklist_responses_visit_code"),
    )

    visit_id: Mapped[UUID] = mapped_column(
        GUID, ForeignKey("visits.id", ondelete="CASCADE"), index=True
    )
    criterion_code: Mapped[str] = mapped_column(String(32))
    result: Mapped[str] = mapped_column(String(8))
    note: Mapped[str | None] = mapped_column(Text)
    answered_by: Mapped[UUID | None] = mapped_column(GUID)
