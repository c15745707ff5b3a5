"""Request-scoped dependencies shared by every controller."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.di import Provide
from sqlalchemy.ext.asyncio import AsyncSession

from inspection.access.principal import Principal
from inspection.db.session import provide_db_session
from inspection.errors import Unauthenticated
from inspection.web.http import IdempotencyKey
from inspection.web.idempotency import Creation


async def provide_principal(request: Request[Any, Any, Any]) -> Principal:
    """The signed-in user; the JWT middleware has already refused requests without one."""
    user = request.scope.get("user")
    if not isinstance(user, Principal):
        raise Unauthenticated("a bearer token is required")
    return user


async def provide_creation(
    request: Request[Any, Any, Any],
    db_session: AsyncSession,
    principal: Principal,
    idempotency_key: IdempotencyKey = None,
) -> Creation:
    """What a creating POST needs to answer a retry with its first result (the header is
    declared here, so every handler that takes `creation` documents it)."""
    return Creation(request, db_session, principal.user_id, idempotency_key)


dependencies = {
    "db_session": Provide(provide_db_session),
    "principal": Provide(provide_principal),
    "creation": Provide(provide_creation),
}
