"""Evidence bytes: one `ObjectStore` protocol, a filesystem and an S3 (MinIO) implementation.

Records live in the database; bytes live here. Both implementations pass the same test suite, so
the embedded default (a folder) behaves like production (MinIO) in every way the service relies on.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

CHUNK_SIZE = 256 * 1024
# Keys are built by the service, never taken from a client; this pattern is a second line of defence
# against path traversal in the filesystem store.
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$")


class StorageError(Exception):
    """Base of object-store errors."""


class ObjectNotFound(StorageError):
    """No object under that key."""


class ObjectTooLarge(StorageError):
    """The stream was longer than the size limit; nothing was stored."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"object exceeds {limit} bytes")
        self.limit = limit


class StorageUnavailable(StorageError):
    """The store cannot be reached or refused the operation (a 503 with `Retry-After`)."""


class InvalidKey(StorageError, ValueError):
    """A key that is not a safe relative path."""


def check_key(key: str) -> str:
    """Return the key if it is a safe relative path of simple segments, else raise `InvalidKey`."""
    if len(key) > 512 or not _KEY.match(key) or any(part in {".", ".."} for part in key.split("/")):
        raise InvalidKey(f"invalid object key {key!r}")
    return key


@dataclass(frozen=True, slots=True)
class PutResult:
    """What a put stored: the byte count and SHA-256 computed while streaming."""

    key: str
    size: int
    sha256: str


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """Metadata of a stored object."""

    key: str
    size: int
    content_type: str
    modified_at: datetime


@dataclass(frozen=True, slots=True)
class PresignedPost:
    """An upload the store itself checks: POST `url` as `multipart/form-data` with every entry
    of `fields`, then the file as the part `file` (last). The store refuses a file outside the
    size range and any use after the expiry; the policy cannot be revoked before that."""

    url: str
    fields: dict[str, str]


@runtime_checkable
class ObjectStore(Protocol):
    """What the service needs from an object store."""

    @property
    def supports_signed_urls(self) -> bool:
        """Whether `signed_get_url`/`signed_put_url` return URLs."""
        ...

    async def ensure_ready(self) -> None:
        """Create the bucket or folder when missing."""

    async def check(self) -> None:
        """Raise `StorageUnavailable` unless the store answers (readiness probe).

        The probe bounds it with a deadline: cancelling `check` (and `ensure_ready`, which the
        probe also runs) must return at once, leaving a thread that is stuck on the store behind.
        """

    async def put(
        self,
        key: str,
        chunks: AsyncIterable[bytes],
        content_type: str = "application/octet-stream",
        *,
        max_size: int | None = None,
        retain_until: datetime | None = None,
    ) -> PutResult:
        """Store a stream, hashing while writing; raise `ObjectTooLarge` past `max_size`."""
        ...

    def get(self, key: str) -> AsyncIterator[bytes]:
        """Stream an object's bytes; raise `ObjectNotFound` when absent."""
        ...

    async def stat(self, key: str) -> ObjectInfo:
        """Metadata of an object; raise `ObjectNotFound` when absent."""
        ...

    async def delete(self, key: str) -> None:
        """Remove an object; removing a missing object is not an error."""

    def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        """Every object whose key starts with `prefix`, in key order."""
        ...

    async def signed_get_url(
        self,
        key: str,
        expires: timedelta,
        *,
        content_type: str | None = None,
        disposition: str | None = None,
    ) -> str | None:
        """A short-lived URL to read the object directly from the store, where supported; the
        store answers it with `content_type` and `disposition` (Content-Disposition) if given."""
        ...

    async def signed_put_url(self, key: str, expires: timedelta) -> str | None:
        """A short-lived URL to upload the object directly to the store, where supported."""
        ...

    async def presigned_post(
        self, key: str, expires: timedelta, *, min_size: int, max_size: int
    ) -> PresignedPost | None:
        """A form upload of exactly `key`, of `min_size` to `max_size` bytes, that the store
        accepts until `expires` from now (S3's POST policy with `content-length-range`), where
        supported; None where uploads must go through the API."""
        ...

    async def close(self) -> None:
        """Release connections."""


async def iterate_bytes(data: bytes, chunk_size: int = CHUNK_SIZE) -> AsyncIterator[bytes]:
    """Feed in-memory bytes to `ObjectStore.put`."""
    for start in range(0, len(data), chunk_size):
        yield data[start : start + chunk_size]


async def read_all(store: ObjectStore, key: str) -> bytes:
    """Read a whole object into memory (small objects and tests only)."""
    return b"".join([chunk async for chunk in store.get(key)])
