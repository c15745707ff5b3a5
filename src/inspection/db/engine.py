"""Engines and session factories for SQLite (embedded default) and PostgreSQL.

SQLite: WAL, foreign keys on, `synchronous=NORMAL`, and writing transactions opened with
`BEGIN IMMEDIATE`. With plain `BEGIN`, two requests that both read and then write can fail with
"database is locked" at once (a stale snapshot cannot be upgraded); `IMMEDIATE` takes the write
lock up front, so writers queue behind `busy_timeout` instead. Reads keep plain `BEGIN` and run
beside a writer thanks to WAL.

PostgreSQL: asyncpg with `plan_cache_mode=force_custom_plan` (generic plans are 3-4x slower for our
range queries) and a short connect timeout so a dead database fails fast.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from inspection.settings import Settings

WRITE_OPTION = "inspection_write"


@dataclass(frozen=True, slots=True)
class Database:
    """One engine and its two session factories (reading and writing)."""

    engine: AsyncEngine
    read_session: async_sessionmaker[AsyncSession]
    write_session: async_sessionmaker[AsyncSession]

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Take transaction control from the driver so the "begin" hook below decides how to begin.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    for pragma in (
        "PRAGMA journal_mode=WAL",
        "PRAGMA foreign_keys=ON",
        "PRAGMA synchronous=NORMAL",
        "PRAGMA busy_timeout=10000",
    ):
        cursor.execute(pragma)
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    immediate = conn.get_execution_options().get(WRITE_OPTION, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def create_engine(url: str, *, pool_size: int = 10, connect_timeout: float = 5.0) -> AsyncEngine:
    """An async engine configured for the dialect of `url`."""
    if url.startswith("sqlite"):
        engine = create_async_engine(url, pool_size=pool_size, max_overflow=pool_size)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
        return engine
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_timeout=10,
        connect_args={
            "timeout": connect_timeout,
            "server_settings": {
                "plan_cache_mode": "force_custom_plan",
                "application_name": "inspection",
            },
        },
    )


def create_database(settings: Settings) -> Database:
    """The engine and session factories for the configured database."""
    engine = create_engine(settings.database_url, pool_size=settings.database_pool_size)
    return Database(
        engine=engine,
        read_session=async_sessionmaker(engine, expire_on_commit=False),
        write_session=async_sessionmaker(
            engine.execution_options(**{WRITE_OPTION: True}), expire_on_commit=False
        ),
    )
