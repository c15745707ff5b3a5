"""Discipline proposals: an official named for discipline on a finding, and the decision."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from uuid import UUID

from advanced_alchemy.types import GUID, DateTimeUTC
from sqlalchemy import Boolean, Date, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from inspection.db.base import Entity


class ProposalStatus(StrEnum):
    """proposed → decided | not_pursued | withdrawn; the three outcomes are final."""

    PROPOSED = "proposed"
    DECIDED = "decided"
    NOT_PURSUED = "not_pursued"
    WITHDRAWN = "withdrawn"


class DisciplineProposal(Entity):
    """A proposal to discipline one official (đề xuất xử lý kỷ luật), made on a finding.

    The official is stored as written (name, position, unit) with a folded name: the same person
    is the same unit and the same folded name (`inspection.kit.search.fold`), which is how repeat
    offences are counted (`discipline/repository.py`).
    """

    __tablename__ = "discipline_proposals"
    __table_args__ = (
        Index("ix_discipline_proposals_official", "unit_id", "official_name_folded"),
        Index("ix_discipline_proposals_detected", "detected_date", "id"),
        Index("ix_discipline_proposals_status", "status"),
    )

    finding_id: Mapped[UUID] = mapped_column(GUID, ForeignKey("findings.id"), index=True)
    # Copied from the finding so that visibility needs no join through it.
    visit_id: Mapped[UUID] = mapped_column(GUID, ForeignKey("visits.id"), index=True)
    plan_id: Mapped[UUID] = mapped_column(GUID, ForeignKey("plans.id"), index=True)
    # The official's unit (the inspected unit or a unit inside it).
    unit_id: Mapped[UUID] = mapped_column(GUID, ForeignKey("units.id"))
    official_name: Mapped[str] = mapped_column(String(255))
    official_name_folded: Mapped[str] = mapped_column(String(255))
    official_position: Mapped[str | None] = mapped_column(String(255))
    official_status: Mapped[str] = mapped_column(String(32))
    holds_management_post: Mapped[bool] = mapped_column(Boolean, default=False)
    violation: Mapped[str] = mapped_column(Text)
    violation_date: Mapped[date] = mapped_column(Date)
    detected_date: Mapped[date] = mapped_column(Date)
    proposed_measure: Mapped[str] = mapped_column(String(32))
    legal_basis: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=ProposalStatus.PROPOSED.value)
    # Processing time extended from 90 to 150 days (a complex case), and why.
    extended: Mapped[bool] = mapped_column(Boolean, default=False)
    extension_reason: Mapped[str | None] = mapped_column(Text)
    decided_measure: Mapped[str | None] = mapped_column(String(32))
    decision_number: Mapped[str | None] = mapped_column(String(64))
    decision_date: Mapped[date | None] = mapped_column(Date)
    reason: Mapped[str | None] = mapped_column(Text)  # not pursued, or withdrawn: why
    closed_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    closed_by: Mapped[UUID | None] = mapped_column(GUID)
    proposed_by: Mapped[UUID] = mapped_column(GUID, ForeignKey("users.id"))
