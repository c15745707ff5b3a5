"""Audit entries and the chain head.

Each entry carries the hash of the previous one. `audit_head` holds the last sequence number and
hash; writers lock it (`SELECT … FOR UPDATE` on PostgreSQL, the write lock on SQLite), so entries
are numbered without gaps and the chain never forks under concurrent requests.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from advanced_alchemy.types import GUID, DateTimeUTC, JsonB
from sqlalchemy import BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from inspection.db.base import Record

GENESIS_HASH = "0" * 64


class AuditEntry(Record):
    """One change: who, when, what entity, which action, the changed fields before and after."""

    __tablename__ = "audit_entries"
    __table_args__ = (
        Index("ix_audit_entries_entity", "entity", "entity_id"),
        Index("ix_audit_entries_occurred_at", "occurred_at"),
        Index("ix_audit_entries_actor_id", "actor_id"),
    )

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    occurred_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    actor_id: Mapped[UUID | None] = mapped_column(GUID)
    actor: Mapped[str] = mapped_column(String(64))
    entity: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    unit_id: Mapped[UUID | None] = mapped_column(GUID, index=True)
    # The plan a change belongs to (plans, visits and what hangs off them): such entries are as
    # confidential as the plan itself.
    plan_id: Mapped[UUID | None] = mapped_column(GUID, index=True)
    changes: Mapped[dict[str, Any]] = mapped_column(JsonB)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Record):
    """The single row holding the chain's last sequence number and hash."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
