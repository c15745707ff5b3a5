"""Engines and session factories for SQLite (embedded default) and PostgreSQL.

SQLite: WAL, foreign keys on, `synchronous=NORMAL`, and writing transactions opened with
`BEGIN IMMEDIATE`. With plain `BEGIN`, two requests that both read and then write can fail with
"database is locked" at once (a stale snapshot cannot be upgraded); `IMMEDIATE` takes the write
lock up front. Reads keep plain `BEGIN` and run beside a writer thanks to WAL.

Writers of this process also queue in front of SQLite, first come first served (`WriteQueue`):
a writing connection takes its turn just before `BEGIN IMMEDIATE` and gives it back when it goes
back to the pool, which a session does right after COMMIT or ROLLBACK. SQLite's own waiting
(`busy_timeout`) is a sleep-and-retry loop, not a queue: a writer that has waited long sleeps
100 ms between tries while newcomers try after 1 ms, so under 20 tablets some writers lost every
race for 10 s and answered 503 "database is locked" although nothing was wrong. With the queue
only one connection of the process ever asks SQLite for the write lock, so the busy handler only
decides against other processes (`inspection jobs run` from cron, an operator's command).
PostgreSQL has row locks and takes no queue.

PostgreSQL: asyncpg with `plan_cache_mode=force_custom_plan` (generic plans are 3-4x slower for our
range queries). A database that stops answering must cost a request seconds: connecting, every
statement (asyncpg's `command_timeout`, which also bounds the pool's pre-ping) and the wait for a
pooled connection are bounded (`Timeouts`). A connection that failed (`is_connection_failure`:
timed out, reset, ended by a shutdown) is invalidated and dropped at once instead of going back to
the pool, and the request answers 503 with Retry-After (inspection.web.problems).
"""

from __future__ import annotations

import asyncio
import errno
import socket
import sqlite3
import weakref
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import AdaptedConnection, Connection, ExceptionContext
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from inspection.settings import Settings, Timeouts

WRITE_OPTION = "inspection_write"
# How long a writer waits for its turn in the write queue before the request answers 503 with
# Retry-After: far above a normal queue (20 tablets x ~10 ms per write), below a tablet's timeout.
WRITE_QUEUE_WAIT_SECONDS = 15.0
# The statement timeout of the reports' engine (PostgreSQL).
REPORT_STATEMENT_SECONDS = 60.0


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


class WriteQueueTimeout(SQLAlchemyTimeoutError):
    """A writer waited `WRITE_QUEUE_WAIT_SECONDS` for its turn: 503 with Retry-After, like a
    pool timeout (a `sqlalchemy.exc.TimeoutError`, so no service mistakes it for a rule)."""


class WriteQueue:
    """The writers of one SQLite database in this process, served one at a time, in order of
    arrival (`asyncio.Lock` wakes its waiters first in, first out, and lets nobody jump a queue).

    The turn belongs to a DBAPI connection: taken by `_sqlite_begin`, given back by the pool
    events of `_release_turn` (check-in after COMMIT/ROLLBACK, invalidation, detachment), so
    whatever ends the connection's use ends its turn, errors and cancellations included.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._lock = asyncio.Lock()
        # Writers waiting for their turn (for tests and diagnostics).
        self.waiting = 0

    async def acquire(self, wait: float) -> None:
        """Wait for the turn at most `wait` seconds, else raise `WriteQueueTimeout`."""
        self.waiting += 1
        try:
            async with asyncio.timeout(wait):
                await self._lock.acquire()
        except TimeoutError:
            raise WriteQueueTimeout(
                f"waited {wait:g} s for a turn to write to the database"
            ) from None
        finally:
            self.waiting -= 1

    def release(self) -> None:
        """Give the turn to the next writer (from the loop's thread, or handed to it)."""
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            self._lock.release()
        elif not self.loop.is_closed():
            # A connection finalised outside the loop's thread (garbage collection).
            self.loop.call_soon_threadsafe(self._lock.release)

    @property
    def locked(self) -> bool:
        """Whether a writer holds the turn."""
        return self._lock.locked()


# One queue per database file and event loop: every `Database` of the process on the same file
# shares it (asyncio primitives belong to one loop; the service runs one loop per process).
_QUEUES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, WriteQueue]] = (
    weakref.WeakKeyDictionary()
)
# The queue whose turn each DBAPI connection holds, by id (driver connections are slotted and
# cannot be weakly referenced); an entry lives from `BEGIN IMMEDIATE` to the end of that use.
_TURNS: dict[int, WriteQueue] = {}


def write_queue(database_url: str) -> WriteQueue:
    """The write queue of a SQLite database in the running loop (created when first needed)."""
    loop = asyncio.get_running_loop()
    queues = _QUEUES.setdefault(loop, {})
    if database_url not in queues:
        queues[database_url] = WriteQueue(loop)
    return queues[database_url]


async def _take_turn(database_url: str, holder: int) -> None:
    queue = write_queue(database_url)
    await queue.acquire(WRITE_QUEUE_WAIT_SECONDS)
    _TURNS[holder] = queue


def _release_turn(dbapi_connection: Any, *_args: Any) -> None:
    """Pool events `checkin`, `invalidate`, `detach`: the connection's turn, if any, ends."""
    if dbapi_connection is not None and (queue := _TURNS.pop(id(dbapi_connection), None)):
        queue.release()


def _sqlite_begin(conn: Connection) -> None:
    if not conn.get_execution_options().get(WRITE_OPTION, False):
        conn.exec_driver_sql("BEGIN")
        return
    dbapi_connection = conn.connection.dbapi_connection
    # Wait for the turn before asking SQLite (in the event, i.e. at the first statement of a
    # writing session: a request does not hold the turn while its body arrives or before it
    # writes). `run_async` is SQLAlchemy's bridge from a synchronous event to the event loop.
    if isinstance(dbapi_connection, AdaptedConnection) and id(dbapi_connection) not in _TURNS:
        url = conn.engine.url.render_as_string(hide_password=True)
        dbapi_connection.run_async(lambda _driver: _take_turn(url, id(dbapi_connection)))
    try:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    except BaseException:
        _release_turn(dbapi_connection)
        raise


# Network errors of a connection that cannot be opened or was lost (not a bug in our code).
_NETWORK_ERRNOS = frozenset(
    {
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.EPIPE,
        errno.ETIMEDOUT,
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.EHOSTDOWN,
        errno.ENETDOWN,
        errno.ENOTCONN,
    }
)
# SQLSTATEs of a server that cannot serve now, whatever the request: connection exceptions (08),
# insufficient resources (53: too many connections, disk full), operator intervention (57P01
# admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now, 57P04 database_dropped), system
# errors (58: I/O), a statement cancelled (57014, by statement_timeout), and a read-only standby
# after a failover (25006).
_UNAVAILABLE_CLASSES = ("08", "53", "57P", "58")
_UNAVAILABLE_STATES = frozenset({"57014", "25006"})
# asyncpg's own words for a connection it can no longer use (errors without a SQLSTATE).
_LOST_CONNECTION = ("connection is closed", "another operation is cancelling")
# SQLite's primary result codes of a database that is busy or cannot be reached (not of bad SQL).
_SQLITE_UNAVAILABLE = frozenset({5, 6, 7, 8, 10, 13, 14, 15})  # BUSY … PROTOCOL


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """`exc`, the driver error a SQLAlchemy error wraps, and what they were raised from."""
    seen: set[int] = set()
    pending = [exc]
    while pending and len(seen) < 16:
        error = pending.pop()
        if id(error) in seen:
            continue
        seen.add(id(error))
        yield error
        linked = [getattr(error, "orig", None), error.__cause__]
        if not error.__suppress_context__:
            linked.append(error.__context__)
        pending.extend(e for e in linked if isinstance(e, BaseException))


def is_connection_failure(exc: BaseException) -> bool:
    """Whether `exc` means the database cannot be reached or used right now, as opposed to a bad
    request or a bug: the request may succeed later, so it is a 503 with Retry-After.

    A connection failure surfaces in many shapes: raw from asyncpg when it happens while
    connecting or pre-pinging (SQLAlchemy wraps only driver errors of statements), wrapped in a
    `DBAPIError` otherwise, or as a plain `TimeoutError`/`OSError` of the socket.
    """
    for error in _causes(exc):
        if isinstance(error, DBAPIError):
            if error.connection_invalidated or isinstance(error, OperationalError):
                return True
        elif isinstance(error, SQLAlchemyTimeoutError | TimeoutError | ConnectionError):
            return True  # pool or write-queue timeout; statement or connect timeout; refused
        elif isinstance(error, socket.gaierror):
            return True  # the database host's name does not resolve
        elif isinstance(error, sqlite3.Error):
            if (getattr(error, "sqlite_errorcode", 0) & 0xFF) in _SQLITE_UNAVAILABLE:
                return True  # e.g. "database is locked", "unable to open database file"
        elif isinstance(error, OSError) and error.errno in _NETWORK_ERRNOS:
            return True
        state = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
        if isinstance(state, str) and (
            state.startswith(_UNAVAILABLE_CLASSES) or state in _UNAVAILABLE_STATES
        ):
            return True
        if type(error).__module__.startswith("asyncpg") and any(
            words in str(error) for words in _LOST_CONNECTION
        ):
            return True
    return False


def _invalidate_on_failure(context: ExceptionContext) -> None:
    """SQLAlchemy event `handle_error`: a connection that failed is invalidated.

    asyncpg's dialect counts only a closed connection as a disconnect. After a statement timeout
    the connection is still open but waits for a cancellation the server may never see, and
    after `57P01` it is about to close: back in the pool it would fail (or hang) the next
    request. Invalidated, it is dropped and the next checkout opens a fresh one. During the
    pool's pre-ping this makes the pool reconnect instead of failing the checkout.
    """
    if not context.is_disconnect and is_connection_failure(context.original_exception):
        context.is_disconnect = True


def _terminate_invalidated(dbapi_connection: Any, _record: Any, exception: Any) -> None:
    """Pool event `invalidate`: a connection invalidated by an error is aborted at once.

    SQLAlchemy would first try to close it politely and wait up to 2 s for the server to
    acknowledge, which a frozen server never does.
    """
    driver = getattr(dbapi_connection, "driver_connection", None)
    if exception is not None and driver is not None and hasattr(driver, "terminate"):
        driver.terminate()


def create_engine(
    url: str,
    *,
    pool_size: int = 10,
    timeouts: Timeouts | None = None,
    server_settings: Mapping[str, str] | None = None,
) -> AsyncEngine:
    """An async engine configured for the dialect of `url`; `server_settings` are PostgreSQL
    settings of its sessions, beyond the ones every engine sets."""
    timeouts = timeouts or Timeouts()
    if url.startswith("sqlite"):
        engine = create_async_engine(url, pool_size=pool_size, max_overflow=pool_size)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
        for end_of_use in ("checkin", "invalidate", "detach"):
            event.listen(engine.sync_engine, end_of_use, _release_turn)
        return engine
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_timeout=timeouts.database_pool,
        connect_args={
            "timeout": timeouts.database_connect,
            "command_timeout": timeouts.database_statement,
            "server_settings": {
                "plan_cache_mode": "force_custom_plan",
                "application_name": "inspection",
                **(server_settings or {}),
            },
        },
    )
    event.listen(engine.sync_engine, "handle_error", _invalidate_on_failure)
    event.listen(engine.sync_engine.pool, "invalidate", _terminate_invalidated)
    return engine


def create_database(settings: Settings) -> Database:
    """The engine and session factories for the configured database."""
    engine = create_engine(
        settings.database_url, pool_size=settings.database_pool_size, timeouts=settings.timeouts
    )
    return Database(
        engine=engine,
        read_session=async_sessionmaker(engine, expire_on_commit=False),
        write_session=async_sessionmaker(
            engine.execution_options(**{WRITE_OPTION: True}), expire_on_commit=False
        ),
    )


def _sqlite_query_only(dbapi_connection: Any, _record: Any) -> None:
    """Connections of the reports' engine refuse every write (`PRAGMA query_only`)."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA query_only=ON")
    cursor.close()


@dataclass(frozen=True, slots=True)
class ReportsDatabase:
    """The engine that only reports use, and its read-only sessions.

    Reports may read from a replica (`INSPECTION_REPORTS_DATABASE_URL`), and a long export must not
    take connections from the pool that serves the tablets. Every transaction is read-only: on
    PostgreSQL `BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY`, so the several statements of one
    report read one snapshot; on SQLite a deferred `BEGIN` (one snapshot from the first read, in
    WAL mode) on connections with `PRAGMA query_only`.
    """

    engine: AsyncEngine
    session: async_sessionmaker[AsyncSession]

    @property
    def dialect(self) -> str:
        """`sqlite` or `postgresql`."""
        return self.engine.dialect.name

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()


def create_reports_database(settings: Settings) -> ReportsDatabase:
    """The reports' own engine on `settings.reports_url` (the main database by default)."""
    url = settings.reports_url
    # An aggregate over a year of a province, or one fetch of a long export, may take longer than
    # a tablet's statement: reports get their own bound.
    timeouts = replace(
        settings.timeouts,
        database_statement=max(settings.timeouts.database_statement, REPORT_STATEMENT_SECONDS),
    )
    engine = create_engine(
        url,
        pool_size=settings.database_pool_size,
        timeouts=timeouts,
        # The planner prices the access subplans of a report over a year of findings in the
        # millions, so JIT compiled them: 150-650 ms per statement, for statements that run in
        # hundreds of milliseconds without it (bench/reports.py).
        server_settings={"jit": "off"},
    )
    if url.startswith("sqlite"):
        event.listen(engine.sync_engine, "connect", _sqlite_query_only)
        bound = engine
    else:
        bound = engine.execution_options(
            isolation_level="REPEATABLE READ", postgresql_readonly=True
        )
    return ReportsDatabase(engine, async_sessionmaker(bound, expire_on_commit=False))
