"""Findings: what the team observed at a visit."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from advanced_alchemy.types import GUID, DateTimeUTC, JsonB
from sqlalchemy import Float, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from inspection.db.base import Entity


class Category(StrEnum):
    """What kind of problem a finding records (DOMAIN.md's focus of inspections)."""

    LATE_DOSSIERS = "late_dossiers"
    EXTRA_DOCUMENTS_REQUESTED = "extra_documents_requested"
    PROCEDURES_NOT_POSTED = "procedures_not_posted"
    ABSENT_OR_LATE = "absent_or_late"
    CONDUCT_TOWARD_CITIZENS = "conduct_toward_citizens"
    ISO_9001_NONCONFORMITY = "iso_9001_nonconformity"
    ONLINE_SERVICE_NOT_WORKING = "online_service_not_working"
    EQUIPMENT = "equipment"
    OTHER = "other"


CATEGORY_LABELS: dict[Category, tuple[str, str]] = {
    Category.LATE_DOSSIERS: (
        "Giải quyết hồ sơ thủ tục hành chính trễ hạn",
        "Dossiers resolved late",
    ),
    Category.EXTRA_DOCUMENTS_REQUESTED: (
        "Yêu cầu thành phần hồ sơ ngoài quy định",
        "Documents requested beyond the regulation",
    ),
    Category.PROCEDURES_NOT_POSTED: (
        "Không niêm yết công khai thủ tục hành chính",
        "Procedures not publicly posted",
    ),
    Category.ABSENT_OR_LATE: (
        "Vắng mặt, đi muộn, không có mặt tại vị trí làm việc",
        "Absent or late at post",
    ),
    Category.CONDUCT_TOWARD_CITIZENS: (
        "Thái độ, ứng xử với người dân, doanh nghiệp; né tránh, đùn đẩy, gây phiền hà",
        "Conduct toward citizens: avoiding, shifting, harassing",
    ),
    Category.ISO_9001_NONCONFORMITY: (
        "Không phù hợp hệ thống quản lý chất lượng TCVN ISO 9001:2015",
        "ISO 9001:2015 non-conformity",
    ),
    Category.ONLINE_SERVICE_NOT_WORKING: (
        "Dịch vụ công trực tuyến không hoạt động",
        "Online public service not working",
    ),
    Category.EQUIPMENT: ("Trang thiết bị Bộ phận một cửa", "One-stop shop equipment"),
    Category.OTHER: ("Khác", "Other"),
}


class Severity(StrEnum):
    """How serious a finding is."""

    OBSERVATION = "observation"
    MINOR = "minor"
    MAJOR = "major"
    CRITICAL = "critical"


class FindingStatus(StrEnum):
    """draft → submitted (the lead confirms) → closed when its actions are closed; or dismissed."""

    DRAFT = "draft"
    SUBMITTED = "submitted"
    CLOSED = "closed"
    DISMISSED = "dismissed"


class Finding(Entity):
    """A finding, created offline on a tablet under a client-generated id."""

    __tablename__ = "findings"
    __table_args__ = (
        Index("ix_findings_observed_at", "observed_at", "id"),
        Index("ix_findings_unit_status", "unit_id", "status"),
        # `under=` + a period: one range scan per unit of the subtree (bench/findings_list.py:
        # PostgreSQL p95 81 -> 31 ms at 100,000 findings).
        Index("ix_findings_unit_observed", "unit_id", "observed_at"),
        # Category (and status) lists come out of this index already in page order, so a page
        # stops after its rows instead of sorting the whole category (SQLite: p50 35 -> 11 ms).
        Index("ix_findings_category_list", "category", "status", "observed_at", "id"),
    )

    visit_id: Mapped[UUID] = mapped_column(GUID, ForeignKey("visits.id"), index=True)
    # Copied from the visit so that filters and reports need no join.
    plan_id: Mapped[UUID] = mapped_column(GUID, ForeignKey("plans.id"), index=True)
    unit_id: Mapped[UUID] = mapped_column(GUID, ForeignKey("units.id"))
    criterion_code: Mapped[str | None] = mapped_column(String(32))
    category: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(String(500))
    description: Mapped[str | None] = mapped_column(Text)
    search_text: Mapped[str] = mapped_column(Text)
    observed_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    accuracy_m: Mapped[float | None] = mapped_column(Float)
    officials: Mapped[list[dict[str, Any]]] = mapped_column(JsonB, default=list)
    recommendation: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=FindingStatus.DRAFT.value)
    created_by: Mapped[UUID | None] = mapped_column(GUID)
    submitted_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    submitted_by: Mapped[UUID | None] = mapped_column(GUID)
    dismissed_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    dismiss_reason: Mapped[str | None] = mapped_column(Text)
