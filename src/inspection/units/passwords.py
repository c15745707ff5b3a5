"""Argon2id password hashing, off the event loop (each hash costs tens of milliseconds)."""

from __future__ import annotations

import anyio.to_thread
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

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
    """An Argon2id hash of `password`."""
    return await anyio.to_thread.run_sync(_hasher.hash, password)


async def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether `password` matches; a missing hash still costs one verification."""

    def check() -> bool:
        try:
            return (
                _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
            )
        except (VerificationError, InvalidHashError):
            return False

    return await anyio.to_thread.run_sync(check)


def needs_rehash(password_hash: str) -> bool:
    """Whether the hash was made with weaker parameters than today's."""
    return _hasher.check_needs_rehash(password_hash)
