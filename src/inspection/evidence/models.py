"""Evidence records and resumable (tus) uploads.

The bytes live in the object store; a row points at them only once they are stored (objects
before rows), so a row never points at nothing. Object keys contain the SHA-256 of the original:
two racing uploads of different bytes under one id write different objects, and the loser's
objects become orphans for the sweeper instead of overwriting the winner's.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from advanced_alchemy.types import GUID, DateTimeUTC, JsonB
from sqlalchemy import BigInteger, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from inspection.db.base import Entity


class Evidence(Entity):
    """One photo or document, under the id the client chose."""

    __tablename__ = "evidence"

    # Exactly one of the two: evidence of a finding, or of a corrective action's response.
    finding_id: Mapped[UUID | None] = mapped_column(GUID, ForeignKey("findings.id"), index=True)
    action_id: Mapped[UUID | None] = mapped_column(
        GUID, ForeignKey("corrective_actions.id"), index=True
    )
    content_type: Mapped[str] = mapped_column(String(40))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    original_key: Mapped[str] = mapped_column(String(300))
    preview_key: Mapped[str | None] = mapped_column(String(300))
    thumbnail_key: Mapped[str | None] = mapped_column(String(300))
    filename: Mapped[str | None] = mapped_column(String(255))
    # Upright dimensions (after the EXIF orientation is applied).
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    # What the camera wrote (EXIF), when present and sane.
    taken_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    gps_lat: Mapped[float | None] = mapped_column(Float)
    gps_lon: Mapped[float | None] = mapped_column(Float)
    camera_make: Mapped[str | None] = mapped_column(String(100))
    camera_model: Mapped[str | None] = mapped_column(String(100))
    # What the tablet says (meta part of the upload).
    captured_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    accuracy_m: Mapped[float | None] = mapped_column(Float)
    caption: Mapped[str | None] = mapped_column(Text)
    uploaded_by: Mapped[UUID] = mapped_column(GUID, ForeignKey("users.id"))


class Upload(Entity):
    """A tus upload in progress: its target, declared length, and the parts received so far.

    Each PATCH is stored as its own object (`parts`), so an upload resumes on any worker of any
    host; the parts are joined when the last byte arrives and removed afterwards.
    """

    __tablename__ = "uploads"

    user_id: Mapped[UUID] = mapped_column(GUID, ForeignKey("users.id"), index=True)
    finding_id: Mapped[UUID | None] = mapped_column(GUID, ForeignKey("findings.id"))
    action_id: Mapped[UUID | None] = mapped_column(GUID, ForeignKey("corrective_actions.id"))
    evidence_id: Mapped[UUID] = mapped_column(GUID)
    meta: Mapped[dict[str, Any]] = mapped_column(JsonB, default=dict)
    raw_metadata: Mapped[str | None] = mapped_column(Text)
    length: Mapped[int] = mapped_column(BigInteger)
    offset: Mapped[int] = mapped_column(BigInteger, default=0)
    parts: Mapped[list[dict[str, Any]]] = mapped_column(JsonB, default=list)
    expires_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), index=True)
    completed_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
