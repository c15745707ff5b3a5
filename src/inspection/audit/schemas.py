"""API shapes of the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec


class AuditEntry(msgspec.Struct):
    """One change: who, when, what, and the changed fields before and after."""

    seq: int
    occurred_at: datetime
    actor_id: UUID | None
    actor: str
    entity: str
    entity_id: str
    action: str
    unit_id: UUID | None
    plan_id: UUID | None
    changes: dict[str, Any]
    prev_hash: str
    hash: str


class ChainReport(msgspec.Struct):
    """Whether the hash chain holds; if not, the first broken entry and why."""

    ok: bool
    checked: int
    head_seq: int
    broken_at: int | None
    problem: str | None
