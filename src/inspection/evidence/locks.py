"""One lock per tus upload, held by the request that reads or writes its offset.

Why: a PATCH whose client went away keeps running on the server (uvicorn does not cancel it) and
still has to store the bytes that arrived and record them on the upload row. A tus client resumes
at once, `HEAD` then `PATCH`, possibly through another worker; without a lock the HEAD read the
offset from before the cut and the resumed PATCH got 409. So every PATCH holds its upload's lock
from before it checks `Upload-Offset` until its part is recorded (and the upload completed), and
HEAD, PATCH and DELETE take the lock before they read the offset.

As in tusd, a request that finds the lock held asks the holder to let go: a PATCH still reading
its body stops reading, keeps and records what arrived, and releases. That matters on mobile
networks, where a connection often dies without the server ever hearing of it (half-open): the
abandoned PATCH would otherwise hold the upload until the kernel gives up, hours later. A PATCH
that is already storing or recording finishes that first, so a HEAD always sees every byte that
will be kept. Waiting is bounded (`wait` seconds): then the answer is 423 with `Retry-After`,
never a stale offset, and never a request that hangs.

Two implementations, chosen by the database:

* PostgreSQL (several workers, several hosts): a session-level advisory lock
  (`pg_try_advisory_lock`) on a 64-bit key derived from the upload id, taken on a connection of
  its own, opened for the request and closed after it (`NullPool`). Closing the connection
  releases the lock whatever happened to the request (an error, a cancellation, a worker that
  died: the server ends the session), so no lock outlives its holder. The connection runs in
  autocommit, so no transaction stays open while a body streams in. Requests to let go travel
  as `NOTIFY inspection_upload_release, '<upload id>'`; the holder `LISTEN`s on its lock
  connection. A waiter polls `pg_try_advisory_lock` (never a blocking `pg_advisory_lock`, which
  a cancellation could leave acquired on a connection nobody uses) and repeats its request while
  it waits, for a holder that began listening after the first one. Cost: one short-lived
  connection per tus request in flight, beside the pool.
* SQLite (one process: the database is a local file and its writers already serialise): a table
  of holders in this process, keyed by database and upload, and plain asyncio events. Nothing
  touches the database, so no write transaction is held while a body streams in (that would stop
  every other writer of the service).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Any, Protocol
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from inspection.db.engine import Database
from inspection.errors import TooManyRequests

log = logging.getLogger("inspection.uploads")

RELEASE_CHANNEL = "inspection_upload_release"
# How often a waiter on PostgreSQL tries the lock again, and asks the holder again to let go.
POLL_SECONDS = 0.05
ASK_AGAIN_SECONDS = 0.5


class UploadLocked(TooManyRequests):
    """Another request still holds the upload (tusd answers 423 Locked too); retry shortly.

    A `TooManyRequests`, so the answer carries `Retry-After` like every "come back later".
    """

    status = 423
    slug = "upload-locked"
    title = "Upload locked"


@dataclass(eq=False)
class Holding:
    """One request's hold on an upload's lock."""

    upload_id: UUID
    # Set when another request for the upload asks this one to let go.
    asked_to_let_go: asyncio.Event = field(default_factory=asyncio.Event)
    # Set once released (waiters in this process wake on it).
    released: asyncio.Event = field(default_factory=asyncio.Event)


class UploadLocks(Protocol):
    """Per-upload locks shared by every worker that serves the database."""

    def hold(self, upload_id: UUID, wait: float) -> AbstractAsyncContextManager[Holding]:
        """Hold the upload's lock for the `async with` block: ask the current holder to let go
        and wait for it at most `wait` seconds, else raise `UploadLocked`."""
        ...


def _locked(wait: float) -> UploadLocked:
    return UploadLocked(
        f"another request for this upload is still storing what it received (waited {wait:g} s);"
        " HEAD again in a moment",
        retry_after=1,
    )


# Holders in this process, by (database, upload): the SQLite implementation's lock table.
_HOLDERS: dict[tuple[str, UUID], Holding] = {}


class ProcessUploadLocks:
    """Locks within this process (SQLite: the service runs as one process)."""

    def __init__(self, database_key: str) -> None:
        # Apps of one process on the same database file share their locks.
        self.database_key = database_key

    @asynccontextmanager
    async def hold(self, upload_id: UUID, wait: float) -> AsyncIterator[Holding]:
        """See `UploadLocks.hold`."""
        key = (self.database_key, upload_id)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while (current := _HOLDERS.get(key)) is not None:
            current.asked_to_let_go.set()
            try:
                async with asyncio.timeout_at(deadline):
                    await current.released.wait()
            except TimeoutError:
                raise _locked(wait) from None
        # No await between the check above and this line: nobody else can slip in.
        holding = Holding(upload_id)
        _HOLDERS[key] = holding
        try:
            yield holding
        finally:
            del _HOLDERS[key]
            holding.released.set()


def lock_key(upload_id: UUID) -> int:
    """The advisory lock key of an upload: 64 bits of a keyed hash of its id (a collision only
    makes two uploads wait for each other; requests to let go name the upload itself)."""
    digest = hashlib.blake2b(upload_id.bytes, digest_size=8, person=b"tus-upld").digest()
    return int.from_bytes(digest, "big", signed=True)


class PostgresUploadLocks:
    """Advisory locks on PostgreSQL, shared by every worker on every host."""

    def __init__(self, database: Database) -> None:
        # Lock connections are opened per request and really closed after it (NullPool): the
        # close is what guarantees the release, and they never compete with the request pool
        # (a PATCH holding its lock still needs pool connections to record its part).
        self.engine: AsyncEngine = create_async_engine(
            database.engine.url,
            poolclass=NullPool,
            isolation_level="AUTOCOMMIT",
            connect_args={
                "timeout": 5,
                "command_timeout": 10,
                "server_settings": {
                    "application_name": "inspection-upload-lock",
                    # A holder whose host vanished is noticed in about half a minute, not hours.
                    "tcp_keepalives_idle": "10",
                    "tcp_keepalives_interval": "5",
                    "tcp_keepalives_count": "3",
                },
            },
        )

    @asynccontextmanager
    async def hold(self, upload_id: UUID, wait: float) -> AsyncIterator[Holding]:
        """See `UploadLocks.hold`."""
        key = lock_key(upload_id)
        holding = Holding(upload_id)
        acquired = False
        connection = await self.engine.connect()
        try:
            await self._acquire(connection, key, upload_id, wait)
            acquired = True
            driver: Any = (await connection.get_raw_connection()).driver_connection

            def on_request(_conn: Any, _pid: int, _channel: str, payload: str) -> None:
                if payload == str(upload_id):
                    holding.asked_to_let_go.set()

            await driver.add_listener(RELEASE_CHANNEL, on_request)
            yield holding
        finally:
            # Shielded: a request cancelled right now must still let go at once.
            await asyncio.shield(self._let_go(connection, key, acquired))

    @staticmethod
    async def _acquire(connection: AsyncConnection, key: int, upload_id: UUID, wait: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        asked_at: float | None = None
        try_lock = text("SELECT pg_try_advisory_lock(:key)")
        while not await connection.scalar(try_lock, {"key": key}):
            now = loop.time()
            if now >= deadline:
                raise _locked(wait)
            if asked_at is None or now - asked_at >= ASK_AGAIN_SECONDS:
                await connection.execute(
                    text("SELECT pg_notify(:channel, :upload)"),
                    {"channel": RELEASE_CHANNEL, "upload": str(upload_id)},
                )
                asked_at = now
            await asyncio.sleep(min(POLL_SECONDS, max(deadline - now, 0)))

    @staticmethod
    async def _let_go(connection: AsyncConnection, key: int, acquired: bool) -> None:
        try:
            # Explicitly first, so the next request gets the lock at once; the close below
            # releases it anyway should this fail, or should a cancelled `_acquire` have taken
            # the lock without learning it.
            if acquired:
                with suppress(Exception):
                    await connection.scalar(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
        finally:
            try:
                await connection.close()
            except Exception as exc:  # the server ends the session, and its locks, regardless
                log.warning("could not close an upload lock connection: %s", exc)
                await connection.invalidate()


def upload_locks(database: Database) -> UploadLocks:
    """The locks for uploads of `database` (advisory on PostgreSQL, in-process on SQLite)."""
    if database.engine.dialect.name == "postgresql":
        return PostgresUploadLocks(database)
    return ProcessUploadLocks(database.engine.url.render_as_string(hide_password=True))
