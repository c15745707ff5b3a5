"""Sign-in throttling: brute force kept out without handing strangers a kill switch.

Two counters of wrong passwords, both rows of `login_throttle`:

- per **username and client address** (the pair): after `INSPECTION_LOGIN_MAX_FAILURES`
  failures, that address may not try that username again for `INSPECTION_LOGIN_LOCKOUT_SECONDS`.
  This lock falls on the guesser alone: the real user signs in from their own tablet as usual.
- per **username**, from every address: past twice as many free failures, each further failure
  makes the next attempt wait twice as long (1 s, 2 s, 4 s …, at most
  `INSPECTION_LOGIN_MAX_DELAY_SECONDS`). A guesser at one address is locked out before the
  username slows at all; guesses from many addresses are slowed to one per delay, while the
  owner, right password in hand, waits seconds, never a quarter of an hour.

A counter starts afresh once it has been quiet (no failure) for the lockout window. An attempt
that arrives while its pair is locked or its username delayed is refused (429 with
`Retry-After`) without checking the password and without being counted. Every other attempt is
checked, and only a wrong password counts: a correct one clears both counters, so two tablets and
a retrying app signing in at once never lock anybody. Attempts at one username are checked one at
a time in a process (`username_lock`), so parallel guesses cannot all pass the check before the
first failure is counted; with several workers, one more guess per worker can be in flight.
"""

from __future__ import annotations

import asyncio
import hashlib
import weakref
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, delete, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from inspection.units.models import LoginThrottle

# Delays double from one second; the exponent is capped long before it could overflow.
_MAX_DOUBLINGS = 30


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    """The numbers of throttling, from the settings."""

    free_failures: int
    window: timedelta
    max_delay: timedelta

    @property
    def username_free_failures(self) -> int:
        """Failures of a username, from every address, before its attempts slow down: twice
        the pair's, so one address is locked out before the username is touched."""
        return 2 * self.free_failures

    def username_delay(self, failures: int) -> timedelta:
        """How long a username waits after its `failures`-th failure in a row."""
        beyond = failures - self.username_free_failures
        if beyond < 0:
            return timedelta(0)
        return min(timedelta(seconds=2 ** min(beyond, _MAX_DOUBLINGS)), self.max_delay)


@dataclass(frozen=True, slots=True)
class Attempt:
    """One sign-in attempt's two counters: the username's, and the username's from one address."""

    username: str
    address: str | None
    user_key: str
    pair_key: str

    @classmethod
    def of(cls, username: str, address: str | None) -> Attempt:
        """The counters of `username` signing in from `address` (None when the server does not
        know it: all such attempts share one pair). The pair's key is a hash, so its length is
        fixed whatever the address is, and the table holds no address in the clear."""
        pair = hashlib.sha256(f"{username}\n{address or '-'}".encode()).hexdigest()[:40]
        return cls(username, address, f"u:{username}", f"p:{pair}")

    @property
    def keys(self) -> tuple[str, str]:
        """Both counters' keys."""
        return (self.user_key, self.pair_key)


def _upsert(session: AsyncSession) -> Any:
    """The dialect's INSERT that supports ON CONFLICT."""
    return postgresql_insert if session.bind.dialect.name == "postgresql" else sqlite_insert


async def wait_seconds(session: AsyncSession, attempt: Attempt, now: datetime) -> int | None:
    """Whole seconds until `attempt` may be checked, or None when it may be checked now."""
    blocked = await session.scalars(
        select(LoginThrottle.blocked_until).where(
            LoginThrottle.key.in_(attempt.keys), LoginThrottle.blocked_until > now
        )
    )
    latest = max((until for until in blocked if until is not None), default=None)
    if latest is None:
        return None
    return max(1, int((latest - now).total_seconds() + 0.999))


async def record_failure(
    session: AsyncSession, attempt: Attempt, policy: ThrottlePolicy, now: datetime
) -> datetime | None:
    """Count a wrong password on both counters; return the end of the pair's lock when this
    failure has just started it (for the audit trail), else None.

    One upsert per counter, so parallel failures from several workers neither collide on the
    key nor lose a count; a counter quiet for the window starts again from one.
    """
    quiet = LoginThrottle.last_failure_at < now - policy.window
    pair_locked_at: datetime | None = None
    for key in attempt.keys:
        statement = (
            _upsert(session)(LoginThrottle)
            .values(
                key=key,
                username=attempt.username,
                failures=1,
                last_failure_at=now,
                blocked_until=None,
            )
            .on_conflict_do_update(
                index_elements=[LoginThrottle.key],
                # Every expression reads the row as it was (both dialects evaluate SET so).
                set_={
                    "failures": case((quiet, 1), else_=LoginThrottle.failures + 1),
                    "blocked_until": case((quiet, None), else_=LoginThrottle.blocked_until),
                    "last_failure_at": now,
                },
            )
            .returning(LoginThrottle.failures, LoginThrottle.blocked_until)
        )
        failures, blocked_until = (await session.execute(statement)).one()
        if key == attempt.user_key:
            delay = policy.username_delay(failures)
            until = now + delay if delay else None
        elif failures >= policy.free_failures:
            until = now + policy.window
            if blocked_until is None or blocked_until <= now:
                pair_locked_at = until
        else:
            continue
        if until is not None:
            await session.execute(
                update(LoginThrottle).where(LoginThrottle.key == key).values(blocked_until=until)
            )
    await forget_ended(session, policy, now)
    return pair_locked_at


async def clear(session: AsyncSession, attempt: Attempt) -> None:
    """A successful sign-in: both of its counters start afresh."""
    await session.execute(delete(LoginThrottle).where(LoginThrottle.key.in_(attempt.keys)))


async def lift(session: AsyncSession, username: str) -> None:
    """Every counter of a username, from every address (a password reset)."""
    await session.execute(delete(LoginThrottle).where(LoginThrottle.username == username))


async def forget_ended(session: AsyncSession, policy: ThrottlePolicy, now: datetime) -> None:
    """Drop counters that are quiet and unblocked: the table holds live ones only."""
    await session.execute(
        delete(LoginThrottle).where(
            LoginThrottle.last_failure_at < now - policy.window,
            or_(LoginThrottle.blocked_until.is_(None), LoginThrottle.blocked_until <= now),
        )
    )


_LOCKS: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()


def username_lock(username: str) -> asyncio.Lock:
    """The process's lock for checking passwords of one username; forgotten once unused (the
    map holds it weakly, so a storm of invented usernames leaves nothing behind)."""
    lock = _LOCKS.get(username)
    if lock is None:
        lock = asyncio.Lock()
        _LOCKS[username] = lock
    return lock
