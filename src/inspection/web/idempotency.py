"""`Idempotency-Key` for creating POSTs: a retry returns the first result and creates nothing.

The key and the stored response are written in the same transaction as what the request created,
so a request either happened once with its key recorded, or not at all. The key is scoped to the
user; the same key with a different body is a client bug and answers 409.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID

import msgspec
from advanced_alchemy.types import GUID, DateTimeUTC
from litestar import Request, Response
from sqlalchemy import Integer, LargeBinary, String, delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from inspection.db.base import Record
from inspection.errors import Conflict, Rejected
from inspection.web.http import created

T = TypeVar("T")
MAX_KEY_LENGTH = 255
# Tablets retry within hours; a key is remembered for a day, then forgotten.
KEY_LIFETIME = timedelta(hours=24)


class IdempotencyRecord(Record):
    """A creating request already answered: its key, a fingerprint of its body and its result."""

    __tablename__ = "idempotency_keys"

    user_id: Mapped[UUID] = mapped_column(GUID, primary_key=True)
    key: Mapped[str] = mapped_column(String(MAX_KEY_LENGTH), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), index=True)


def fingerprint(path: str, payload: object) -> str:
    """A hash of what the request asks for: the path and the decoded body, canonically encoded."""
    encoded = msgspec.json.encode(payload, order="sorted")
    return hashlib.sha256(path.encode() + b"\n" + encoded).hexdigest()


def _replay(seen: IdempotencyRecord, request_fingerprint: str, result_type: type[T]) -> T:
    if seen.fingerprint != request_fingerprint:
        raise Conflict("this Idempotency-Key was used for a different request")
    return msgspec.json.decode(seen.body, type=result_type)


async def once(
    session: AsyncSession,
    *,
    user_id: UUID,
    key: str | None,
    request_fingerprint: str,
    result_type: type[T],
    run: Callable[[], Awaitable[T]],
    status_code: int = 201,
) -> tuple[T, bool]:
    """Run `run` unless this key was seen; return the result and whether it was a replay.

    The key is claimed before the work runs, in a SAVEPOINT: a retry that arrives while the first
    request is still running waits on the claim (PostgreSQL's unique index; SQLite's write lock)
    and then replays the committed result instead of failing.
    """
    if key is None:
        return await run(), False
    if not key.strip() or len(key) > MAX_KEY_LENGTH:
        raise Rejected.field("Idempotency-Key", f"must be 1 to {MAX_KEY_LENGTH} characters")
    now = datetime.now(UTC)
    seen = await session.get(IdempotencyRecord, (user_id, key))
    if seen is not None and seen.created_at < now - KEY_LIFETIME:
        await session.delete(seen)
        await session.flush()
        seen = None
    if seen is not None:
        return _replay(seen, request_fingerprint, result_type), True
    claim = IdempotencyRecord(
        user_id=user_id,
        key=key,
        fingerprint=request_fingerprint,
        status_code=status_code,
        body=b"",
        created_at=now,
    )
    try:
        async with session.begin_nested():
            session.add(claim)
            await session.flush()
    except IntegrityError:
        twin = await session.get(IdempotencyRecord, (user_id, key), populate_existing=True)
        if twin is None or not twin.body:
            raise Conflict("a request with this Idempotency-Key is still running; retry") from None
        return _replay(twin, request_fingerprint, result_type), True
    result = await run()
    claim.body = msgspec.json.encode(result)
    # Forget this user's expired keys while we are here: the table stays small without a job.
    await session.execute(
        delete(IdempotencyRecord).where(
            IdempotencyRecord.user_id == user_id, IdempotencyRecord.created_at < now - KEY_LIFETIME
        )
    )
    await session.flush()
    return result, False


async def create_once(
    request: Request[Any, Any, Any],
    session: AsyncSession,
    user_id: UUID,
    key: str | None,
    data: object,
    result_type: type[T],
    run: Callable[[], Awaitable[T]],
) -> tuple[T, bool]:
    """`once` for a creating POST: the fingerprint is the path and the decoded body."""
    return await once(
        session,
        user_id=user_id,
        key=key,
        request_fingerprint=fingerprint(request.url.path, data),
        result_type=result_type,
        run=run,
    )


@dataclass(frozen=True, slots=True)
class Creation:
    """A creating POST made retry-safe by its `Idempotency-Key`: bound to the request, its
    session and its user, so a handler only says what it creates (see `provide_creation`)."""

    request: Request[Any, Any, Any]
    session: AsyncSession
    user_id: UUID
    key: str | None

    async def __call__(
        self, data: object, result_type: type[T], run: Callable[[], Awaitable[T]]
    ) -> Response[Any]:
        """201 with the result (the first one again, marked replayed, on a retry)."""
        result, replayed = await create_once(
            self.request, self.session, self.user_id, self.key, data, result_type, run
        )
        return created(result, replayed)
