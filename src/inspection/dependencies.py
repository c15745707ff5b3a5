"""Request-scoped dependencies shared by every controller."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.di import Provide

from inspection.access import Principal
from inspection.db.session import provide_db_session
from inspection.errors import Unauthenticated


async def provide_principal(request: Request[Any, Any, Any]) -> Principal:
    """The signed-in user; the JWT middleware has already refused requests without one."""
    user = request.scope.get("user")
    if not isinstance(user, Principal):
        raise Unauthenticated("a bearer token is required")
    return user


dependencies = {
    "db_session": Provide(provide_db_session),
    "principal": Provide(provide_principal),
}
