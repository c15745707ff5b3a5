"""API shapes of evidence."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated
from uuid import UUID

import msgspec
from msgspec import Meta

from inspection.plans.schemas import Position

Sha256 = Annotated[str, Meta(pattern="^[0-9a-fA-F]{64}$", description="Hex SHA-256 of the file.")]


class Variant(StrEnum):
    """Which bytes of an evidence item: the original as uploaded, or a derived JPEG."""

    ORIGINAL = "original"
    PREVIEW = "preview"
    THUMBNAIL = "thumbnail"


class EvidenceMeta(msgspec.Struct, forbid_unknown_fields=True):
    """The `meta` part of an upload: what the tablet knows about the file."""

    captured_at: datetime | None = None
    position: Position | None = None
    caption: Annotated[str, Meta(max_length=2000)] | None = None
    sha256: Sha256 | None = None


class Camera(msgspec.Struct, omit_defaults=True):
    """What the file's EXIF says (absent fields were not in the file)."""

    taken_at: datetime | None = None
    position: Position | None = None
    make: str | None = None
    model: str | None = None


class Evidence(msgspec.Struct):
    """A stored photo or document (metadata; the bytes are under `/content`)."""

    id: UUID
    finding_id: UUID | None
    action_id: UUID | None
    content_type: str
    size: int
    sha256: str
    filename: str | None
    width: int | None
    height: int | None
    variants: list[Variant]
    camera: Camera
    captured_at: datetime | None
    position: Position | None
    caption: str | None
    uploaded_by: UUID
    created_at: datetime
    version: int
