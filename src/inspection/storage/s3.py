"""Object store on S3 (MinIO in production) through the minio SDK.

The SDK is synchronous: every call runs in a worker thread. A put streams: the SDK pulls chunks
from the request body through `_StreamReader`, which hops back to the event loop for each chunk,
so a 25 MB upload never sits in memory whole and the hash is computed on the way through.

A store that stops answering must cost a request seconds, not minutes, and must not take the
rest of the service down with it (docs/operations.md, "When a back-end fails"):

- every HTTP request has a connect and a read timeout, and a bounded retry of what is safe to
  retry (a connection that could not be opened, a 5xx answer), never of an unanswered request;
- calls run on the store's own threads (a `CapacityLimiter`), not on anyio's default pool that
  other work shares (image checks), so calls stuck on a frozen store cannot starve the rest of
  the service: sign-ins stay prompt;
- a call waits a bounded time for one of those threads, then fails instead of queueing;
- the readiness probe (`check`, `ensure_ready`) runs on threads of its own and abandons its
  thread when its caller's deadline passes.

Every failure to reach or use the store is `StorageUnavailable`: a 503 with `Retry-After`.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import anyio
import anyio.from_thread
import anyio.to_thread
import urllib3
from minio import Minio
from minio.commonconfig import COMPLIANCE
from minio.datatypes import Object, PostPolicy
from minio.error import MinioException, S3Error
from minio.retention import Retention

from inspection.settings import S3Settings, Timeouts
from inspection.storage import (
    ObjectInfo,
    ObjectNotFound,
    ObjectTooLarge,
    PresignedPost,
    PutResult,
    StorageUnavailable,
    check_key,
)

_PART_SIZE = 8 * 1024 * 1024
_LIST_BATCH = 1000
_MISSING = {"NoSuchKey", "NoSuchObject", "NoSuchBucket"}
# Answers worth one more try: the store (or a proxy in front of it) is briefly overloaded.
_RETRY_STATUSES = frozenset({500, 502, 503, 504})
# Threads of the readiness probe, apart from the store's: a probe never waits behind uploads,
# and a stuck one (abandoned at its deadline) never holds a thread uploads need.
_PROBE_THREADS = 2


def http_client(timeouts: Timeouts) -> urllib3.PoolManager:
    """The SDK's HTTP client: bounded waits, bounded retries, one connection per store thread."""
    retries = urllib3.Retry(
        total=timeouts.store_connect_retries + timeouts.store_status_retries,
        connect=timeouts.store_connect_retries,
        # An unanswered request (read timeout, connection dropped mid-answer) is not retried:
        # the server may be frozen, and waiting for it twice doubles the hang.
        read=0,
        other=0,
        status=timeouts.store_status_retries,
        status_forcelist=_RETRY_STATUSES,
        backoff_factor=timeouts.store_backoff,
        # A store's `Retry-After` could make a request sleep for minutes in its thread.
        respect_retry_after_header=False,
        # The SDK turns error answers into S3Error itself once retries are spent.
        raise_on_status=False,
    )
    return urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=timeouts.store_connect, read=timeouts.store_read),
        retries=retries,
        maxsize=timeouts.store_threads,
    )


class _StreamReader:
    """A file-like object the SDK reads from a worker thread; chunks come from the event loop."""

    def __init__(self, chunks: AsyncIterable[bytes], max_size: int | None) -> None:
        self._iterator = aiter(chunks)
        self._buffer = bytearray()
        self._done = False
        self._max_size = max_size
        self.size = 0
        self.digest = hashlib.sha256()

    async def _next(self) -> bytes | None:
        try:
            return await anext(self._iterator)
        except StopAsyncIteration:
            return None

    def read(self, size: int = -1) -> bytes:
        while not self._done and (size < 0 or len(self._buffer) < size):
            chunk = anyio.from_thread.run(self._next)
            if chunk is None:
                self._done = True
                break
            self.size += len(chunk)
            if self._max_size is not None and self.size > self._max_size:
                raise ObjectTooLarge(self._max_size)
            self.digest.update(chunk)
            self._buffer += chunk
        if size < 0:
            size = len(self._buffer)
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data


class S3ObjectStore:
    """An `ObjectStore` over one bucket of an S3-compatible server."""

    supports_signed_urls = True

    def __init__(
        self, settings: S3Settings, *, object_lock: bool = False, timeouts: Timeouts | None = None
    ) -> None:
        self.bucket = settings.bucket
        self._object_lock = object_lock
        self.timeouts = timeouts or Timeouts()
        self.client = Minio(
            settings.endpoint,
            access_key=settings.access_key,
            secret_key=settings.secret_key,
            secure=settings.secure,
            region=settings.region,
            http_client=http_client(self.timeouts),
        )
        # The store's thread pool: as many threads as HTTP connections. Calls wait for one in
        # `_slots` (bounded by `store_queue`); holding a slot, a call always finds a thread.
        self.limiter = anyio.CapacityLimiter(self.timeouts.store_threads)
        self._slots = anyio.Semaphore(self.timeouts.store_threads)
        self._probe_limiter = anyio.CapacityLimiter(_PROBE_THREADS)

    async def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run one SDK call on the store's threads; map its failures to storage errors.

        The thread is not abandoned when the caller is cancelled (a client that went away): its
        socket timeouts end it within seconds, and until then it keeps its slot, so the store
        never runs more threads than `store_threads`.
        """
        with anyio.move_on_after(self.timeouts.store_queue) as waiting:
            await self._slots.acquire()
        if waiting.cancelled_caught:
            raise StorageUnavailable(
                f"object store busy: all {self.timeouts.store_threads} connections in use "
                f"for {self.timeouts.store_queue:g} s"
            )
        try:
            with _storage_errors():
                return await anyio.to_thread.run_sync(
                    partial(fn, *args, **kwargs), limiter=self.limiter
                )
        finally:
            self._slots.release()

    async def _probe(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run one SDK call for the readiness probe: on its own threads, and abandoned (left to
        its socket timeouts) as soon as the caller's deadline cancels it."""
        with _storage_errors():
            return await anyio.to_thread.run_sync(
                partial(fn, *args, **kwargs), limiter=self._probe_limiter, abandon_on_cancel=True
            )

    async def ensure_ready(self) -> None:
        """Create the bucket when missing (with object locking when retention is configured).

        Runs as a probe: the caller bounds it (see `check`)."""
        if not await self._probe(self.client.bucket_exists, self.bucket):
            try:
                await self._probe(
                    self.client.make_bucket, self.bucket, object_lock=self._object_lock
                )
            except StorageUnavailable:
                # Another worker may have created it a moment ago.
                if not await self._probe(self.client.bucket_exists, self.bucket):
                    raise

    async def check(self) -> None:
        """Readiness: the bucket exists and the server answers. Cancelling it (the probe's
        deadline) returns at once; its thread is left to its socket timeouts."""
        if not await self._probe(self.client.bucket_exists, self.bucket):
            raise StorageUnavailable(f"bucket {self.bucket} does not exist")

    async def put(
        self,
        key: str,
        chunks: AsyncIterable[bytes],
        content_type: str = "application/octet-stream",
        *,
        max_size: int | None = None,
        retain_until: datetime | None = None,
    ) -> PutResult:
        """Stream the chunks into the bucket; multipart above 8 MB, aborted on any error."""
        check_key(key)
        reader = _StreamReader(chunks, max_size)
        retention = Retention(COMPLIANCE, retain_until) if retain_until else None
        # ObjectTooLarge raised inside `reader.read` propagates through the SDK, which aborts
        # a multipart upload it had begun.
        await self._call(
            self.client.put_object,
            self.bucket,
            key,
            reader,
            length=-1,
            part_size=_PART_SIZE,
            content_type=content_type,
            retention=retention,
        )
        return PutResult(key=key, size=reader.size, sha256=reader.digest.hexdigest())

    async def get(self, key: str) -> AsyncIterator[bytes]:
        """Stream the object; the HTTP connection is released when the stream ends."""
        check_key(key)
        response = await self._call(self.client.get_object, self.bucket, key)
        try:
            stream: Iterator[bytes] = response.stream(256 * 1024)
            while True:
                chunk = await self._call(next, stream, None)
                if chunk is None:
                    break
                yield chunk
        finally:
            response.close()
            response.release_conn()

    async def stat(self, key: str) -> ObjectInfo:
        """Size, type and modification time from the server."""
        check_key(key)
        obj: Object = await self._call(self.client.stat_object, self.bucket, key)
        return _info(obj)

    async def delete(self, key: str) -> None:
        """Remove the object; S3 deletes are idempotent."""
        check_key(key)
        await self._call(self.client.remove_object, self.bucket, key)

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        """List by prefix in pages, each page fetched in a worker thread."""
        objects = self.client.list_objects(self.bucket, prefix=prefix, recursive=True)
        while True:
            page: list[Object] = await self._call(
                lambda: [o for _, o in zip(range(_LIST_BATCH), objects, strict=False)]
            )
            for obj in page:
                yield _info(obj)
            if len(page) < _LIST_BATCH:
                break

    async def signed_get_url(
        self,
        key: str,
        expires: timedelta,
        *,
        content_type: str | None = None,
        disposition: str | None = None,
    ) -> str | None:
        """A presigned GET URL; the type and disposition are S3's signed response overrides."""
        check_key(key)
        overrides = {}
        if content_type is not None:
            overrides["response-content-type"] = content_type
        if disposition is not None:
            overrides["response-content-disposition"] = disposition
        url: str = await self._call(
            self.client.presigned_get_object,
            self.bucket,
            key,
            expires=expires,
            response_headers=overrides or None,
        )
        return url

    async def signed_put_url(self, key: str, expires: timedelta) -> str | None:
        """A presigned PUT URL."""
        check_key(key)
        url: str = await self._call(
            self.client.presigned_put_object, self.bucket, key, expires=expires
        )
        return url

    async def presigned_post(
        self, key: str, expires: timedelta, *, min_size: int, max_size: int
    ) -> PresignedPost | None:
        """A presigned POST policy: exactly `key`, `min_size` to `max_size` bytes
        (`content-length-range`, which the store checks itself: MinIO answers 400 EntityTooLarge
        and keeps nothing), until `expires` from now.

        The form goes to the bucket's URL as the SDK addresses it (path or virtual-host style),
        read off a presigned GET of the same key rather than rebuilt from the settings.
        """
        check_key(key)
        policy = PostPolicy(self.bucket, datetime.now(UTC) + expires)
        policy.add_equals_condition("key", key)
        policy.add_content_length_range_condition(min_size, max_size)
        fields: dict[str, str] = await self._call(self.client.presigned_post_policy, policy)
        located: str = await self._call(
            self.client.presigned_get_object, self.bucket, key, expires=expires
        )
        parts = urlsplit(located)
        path = parts.path.removesuffix("/" + quote(key)) or "/"
        return PresignedPost(
            urlunsplit((parts.scheme, parts.netloc, path, "", "")), {"key": key, **fields}
        )

    async def remove_bucket(self) -> None:
        """Delete every object and the bucket itself: for scratch buckets (tests, benchmarks),
        never called by the service."""
        if await self._call(self.client.bucket_exists, self.bucket):
            async for info in self.list():
                await self.delete(info.key)
            await self._call(self.client.remove_bucket, self.bucket)

    async def close(self) -> None:
        """Close pooled connections."""
        self.client._http.clear()


@contextmanager
def _storage_errors() -> Iterator[None]:
    """The SDK's and urllib3's failures as storage errors (a missing object is not a failure)."""
    try:
        yield
    except S3Error as exc:
        if exc.code in _MISSING:
            raise ObjectNotFound(exc.object_name or exc.bucket_name or "") from None
        raise StorageUnavailable(f"object store refused the request: {exc.code}") from exc
    except MinioException as exc:  # a 5xx without an S3 error body, a malformed answer
        raise StorageUnavailable(f"object store failed: {type(exc).__name__}") from exc
    except (urllib3.exceptions.HTTPError, OSError) as exc:  # timeouts, refused, reset
        raise StorageUnavailable(f"object store unreachable: {_reason(exc)}") from exc


def _reason(exc: BaseException) -> str:
    """What went wrong, in a few words: urllib3's MaxRetryError carries its last cause."""
    cause = getattr(exc, "reason", None)
    if isinstance(cause, BaseException):
        return f"{type(exc).__name__} ({type(cause).__name__})"
    return type(exc).__name__


def _info(obj: Object) -> ObjectInfo:
    assert obj.object_name is not None
    assert obj.last_modified is not None
    return ObjectInfo(
        key=obj.object_name,
        size=obj.size or 0,
        content_type=obj.content_type or "application/octet-stream",
        modified_at=obj.last_modified,
    )
