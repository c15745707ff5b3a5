"""Reading the audit log through `access/`."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from inspection.access.principal import Principal, may_read_audit, may_verify_audit
from inspection.audit import recorder as chain
from inspection.audit import repository as audit_repository
from inspection.audit import schemas
from inspection.audit.models import AuditEntry
from inspection.errors import NotFound
from inspection.kit.moments import checked_moment
from inspection.kit.pagination import Page, SortKey, keyset_page


class AuditLog:
    """The audit log as an admin or leader may read it."""

    def __init__(self, session: AsyncSession, principal: Principal) -> None:
        self.session = session
        self.principal = principal

    def _require_reader(self) -> None:
        # Others learn nothing, not even that the log exists.
        if not may_read_audit(self.principal):
            raise NotFound("not found")

    async def list_entries(
        self,
        *,
        entity: str | None,
        entity_id: str | None,
        actor: UUID | None,
        occurred_from: datetime | None,
        occurred_to: datetime | None,
        cursor: str | None,
        limit: int,
    ) -> Page[schemas.AuditEntry]:
        """Entries the caller may see, newest first."""
        self._require_reader()
        if occurred_from is not None:
            occurred_from = checked_moment(occurred_from, "from")
        if occurred_to is not None:
            occurred_to = checked_moment(occurred_to, "to")
        statement = select(AuditEntry).where(audit_repository.readable(self.principal))
        if entity:
            statement = statement.where(AuditEntry.entity == entity)
        if entity_id:
            statement = statement.where(AuditEntry.entity_id == entity_id)
        if actor:
            statement = statement.where(AuditEntry.actor_id == actor)
        if occurred_from:
            statement = statement.where(AuditEntry.occurred_at >= occurred_from)
        if occurred_to:
            statement = statement.where(AuditEntry.occurred_at < occurred_to)
        rows, next_cursor = await keyset_page(
            self.session, statement, [SortKey(AuditEntry.seq, descending=True)], cursor, limit
        )
        items = [
            schemas.AuditEntry(
                seq=e.seq,
                occurred_at=e.occurred_at,
                actor_id=e.actor_id,
                actor=e.actor,
                entity=e.entity,
                entity_id=e.entity_id,
                action=e.action,
                unit_id=e.unit_id,
                plan_id=e.plan_id,
                changes=e.changes,
                prev_hash=e.prev_hash,
                hash=e.hash,
            )
            for e in rows
        ]
        return Page(items=items, next_cursor=next_cursor)

    async def verify(self) -> schemas.ChainReport:
        """Check the whole chain (system-wide admins and leaders only: it spans every unit)."""
        if not may_verify_audit(self.principal):
            raise NotFound("not found")
        return schemas.ChainReport(**asdict(await chain.verify(self.session)))
