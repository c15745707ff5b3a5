"""HTTP endpoints of the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from litestar import Controller, get
from litestar.di import Provide
from litestar.params import Parameter, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from inspection.access.principal import Principal
from inspection.audit import schemas
from inspection.audit.service import AuditLog
from inspection.kit.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page


def provide_audit_log(db_session: AsyncSession, principal: Principal) -> AuditLog:
    """The audit log as this user may read it."""
    return AuditLog(db_session, principal)


class AuditController(Controller):
    """Every change, who, when, what; and the chain check."""

    path = "/api/v1/audit"
    tags = ["audit"]
    dependencies = {"audit_log": Provide(provide_audit_log, sync_to_thread=False)}

    @get("/", summary="List audit entries")
    async def list_entries(
        self,
        audit_log: AuditLog,
        entity: Annotated[str | None, Parameter(max_length=32)] = None,
        entity_id: Annotated[str | None, Parameter(max_length=64)] = None,
        actor: UUID | None = None,
        occurred_from: Annotated[datetime | None, QueryParameter(name="from")] = None,
        occurred_to: Annotated[datetime | None, QueryParameter(name="to")] = None,
        cursor: Annotated[str | None, Parameter(max_length=512)] = None,
        limit: Annotated[int, Parameter(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    ) -> Page[schemas.AuditEntry]:
        """Newest first; admins and leaders, within their units."""
        return await audit_log.list_entries(
            entity=entity,
            entity_id=entity_id,
            actor=actor,
            occurred_from=occurred_from,
            occurred_to=occurred_to,
            cursor=cursor,
            limit=limit,
        )

    @get("/verify", summary="Verify the hash chain")
    async def verify(self, audit_log: AuditLog) -> schemas.ChainReport:
        """Recompute every hash; report the first altered or missing entry."""
        return await audit_log.verify()
