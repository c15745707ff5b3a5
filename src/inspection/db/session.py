"""The request's transaction is the unit of work.

`provide_db_session` opens one session per request and commits after the handler returns, before
the response is sent: a failed commit becomes an error response, never a 200 for a lost change.
Any exception rolls everything back, the change and its audit entry together.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Request
from sqlalchemy.ext.asyncio import AsyncSession

from inspection.db.engine import Database

_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def provide_db_session(request: Request[Any, Any, Any]) -> AsyncGenerator[AsyncSession, None]:
    """Yield the request's session; commit on success, roll back on any error."""
    database: Database = request.app.state.database
    factory = database.read_session if request.method in _READ_METHODS else database.write_session
    async with factory() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        else:
            await session.commit()


@asynccontextmanager
async def transaction(database: Database) -> AsyncIterator[AsyncSession]:
    """A writing transaction of its own, outside any request (CLI, jobs, security bookkeeping).

    Security bookkeeping (failed-login counters, revoked token families) must persist even though
    the request that caused it answers with an error and rolls its own work back.
    """
    async with database.write_session() as session, session.begin():
        yield session


async def lock(session: AsyncSession, *rows: object) -> None:
    """Lock rows this transaction has read (`SELECT … FOR UPDATE`) and reload them, in the order
    given (callers keep one order, e.g. plan before visit, so two writers cannot deadlock).

    SQLite has no row locks: its writing transactions (`BEGIN IMMEDIATE`) already hold the one
    write lock, and what they have read is current, so there this sends nothing.
    """
    bind = session.bind
    if bind is not None and bind.dialect.name == "sqlite":
        return
    for row in rows:
        await session.refresh(row, with_for_update=True)
