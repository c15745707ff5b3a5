"""Argon2id password hashing, off the event loop, a bounded number at a time.

Each hash or verification costs hundreds of milliseconds of CPU (t=3, 4 lanes) and holds its
whole memory cost (`INSPECTION_ARGON2_MEMORY_KIB`, 64 MiB by default) while it runs. Unbounded, a
sign-in storm ran them all at once: 25 parallel sign-ins held 1.7 GB, and dozens of hashing
threads took the CPU from the event loop, so the requests holding SQLite's write turn crawled
and everyone behind them waited. So:

- at most `HASH_CONCURRENCY` (the usable cores, at least 2) run at once per process; further
  sign-ins wait their turn in order for at most `HASH_WAIT_SECONDS`, then answer 503 with
  Retry-After (`HashingBusy`) instead of piling up. Memory for hashing is bounded by
  HASH_CONCURRENCY x memory cost: 128 MiB on 2 cores;
- they run in a pool of threads of their own at a lower CPU priority (nice `HASH_NICENESS`;
  Linux keeps niceness per thread and libargon2's lane threads inherit it): when requests need
  the CPU they get most of it, and hashing still gets its share.

Callers hash outside any database transaction (a transaction would hold the write turn).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from inspection.errors import TooManyRequests

T = TypeVar("T")


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


# Argon2 computations at once in this process: one per core keeps the CPU busy without
# oversubscribing it (each already uses 4 lanes), and at least 2 so a slow one never blocks all.
HASH_CONCURRENCY = max(2, _usable_cores())
# How long a sign-in waits for a hashing slot before it is told to come back (503): a team's
# storm of sign-ins gets through (20 tablets took up to 10 s on 2 busy cores), a flood does not
# pile up past what a tablet waits for an answer.
HASH_WAIT_SECONDS = 20.0
RETRY_AFTER_SECONDS = 5
# Niceness of the hashing threads (0 normal, 19 lowest). Linux weighs a nice-5 thread at a third
# of a normal one: during a storm the 8 lane threads of 2 hashes (4 lanes each) leave the event
# loop over a quarter of the CPU instead of a ninth. 10 (a tenth) starved sign-ins on a machine
# busy with other work: they waited out HASH_WAIT_SECONDS and got 503 (docs/benchmarks.md).
HASH_NICENESS = 5


class HashingBusy(TooManyRequests):
    """Every hashing slot stayed busy for `HASH_WAIT_SECONDS`: the service is overloaded with
    sign-ins (or password changes) right now; 503 with Retry-After."""

    status = 503
    slug = "unavailable"
    title = "Service Unavailable"


# One semaphore per event loop (asyncio primitives belong to one; the service runs one loop per
# process, the test suite one per test).
_SLOTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


def _slots() -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    slots = _SLOTS.get(loop)
    if slots is None:
        slots = _SLOTS[loop] = asyncio.Semaphore(HASH_CONCURRENCY)
    return slots


def _lower_priority() -> None:
    """Initialiser of each hashing thread (`setpriority(PRIO_PROCESS, 0)` is the calling thread
    on Linux). Where it is not supported or permitted, hashing runs at normal priority."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, 0, HASH_NICENESS)


_threads: ThreadPoolExecutor | None = None


def _hash_threads() -> ThreadPoolExecutor:
    global _threads  # noqa: PLW0603 - one pool of hashing threads per process, made when needed
    if _threads is None:
        _threads = ThreadPoolExecutor(
            HASH_CONCURRENCY, thread_name_prefix="argon2", initializer=_lower_priority
        )
    return _threads


async def _bounded(work: Callable[[], T]) -> T:
    """Run `work` in a hashing thread once a hashing slot is free."""
    slots = _slots()
    try:
        async with asyncio.timeout(HASH_WAIT_SECONDS):
            await slots.acquire()
    except TimeoutError:
        raise HashingBusy(
            "too many sign-ins are being checked right now; retry shortly", RETRY_AFTER_SECONDS
        ) from None
    try:
        done = asyncio.get_running_loop().run_in_executor(_hash_threads(), work)
    except BaseException:
        slots.release()
        raise
    # The slot is given back when the thread has finished, even if the caller is cancelled
    # meanwhile (the shield keeps the work's future alive): until then the memory is in use.
    done.add_done_callback(lambda _future: slots.release())
    return await asyncio.shield(done)


DEFAULT_MEMORY_KIB = 64 * 1024
_hasher = PasswordHasher(time_cost=3, memory_cost=DEFAULT_MEMORY_KIB, parallelism=4)
# Verified against when the username does not exist, so both cases take the same time.
_DUMMY_HASH = _hasher.hash("timing-equaliser-not-a-password")


def configure_hashing(memory_kib: int) -> None:
    """Set the Argon2id memory (`INSPECTION_ARGON2_MEMORY_KIB`): RFC 9106's second
    recommendation (t=3, 64 MiB) by default, less on small hardware and in the test suite.
    Existing hashes keep verifying; they are upgraded at the next sign-in when weaker."""
    global _hasher, _DUMMY_HASH  # noqa: PLW0603 - one hasher per process, set at start
    if memory_kib == _hasher.memory_cost:
        return
    _hasher = PasswordHasher(time_cost=3, memory_cost=memory_kib, parallelism=4)
    _DUMMY_HASH = _hasher.hash("timing-equaliser-not-a-password")


async def hash_password(password: str) -> str:
    """An Argon2id hash of `password` (waits for a hashing slot; may raise `HashingBusy`)."""
    hasher = _hasher
    return await _bounded(lambda: hasher.hash(password))


async def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether `password` matches; a missing hash still costs one verification (waits for a
    hashing slot; may raise `HashingBusy`)."""

    def check() -> bool:
        try:
            return (
                _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
            )
        except (VerificationError, InvalidHashError):
            return False

    return await _bounded(check)


def needs_rehash(password_hash: str) -> bool:
    """Whether the hash was made with weaker parameters than today's."""
    return _hasher.check_needs_rehash(password_hash)
