"""Object store on S3 (MinIO in production) through the minio SDK.

The SDK is synchronous: every call runs in a worker thread. A put streams: the SDK pulls chunks
from the request body through `_StreamReader`, which hops back to the event loop for each chunk,
so a 25 MB upload never sits in memory whole and the hash is computed on the way through.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterable, AsyncIterator, Iterator
from datetime import datetime, timedelta
from typing import Any

import anyio.from_thread
import anyio.to_thread
import urllib3
from minio import Minio
from minio.commonconfig import COMPLIANCE
from minio.datatypes import Object
from minio.error import S3Error
from minio.retention import Retention

from inspection.settings import S3Settings
from inspection.storage import (
    ObjectInfo,
    ObjectNotFound,
    ObjectTooLarge,
    PutResult,
    StorageUnavailable,
    check_key,
)

_PART_SIZE = 8 * 1024 * 1024
_LIST_BATCH = 1000
_MISSING = {"NoSuchKey", "NoSuchObject", "NoSuchBucket"}


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

    def __init__(self, settings: S3Settings, *, object_lock: bool = False) -> None:
        self.bucket = settings.bucket
        self._object_lock = object_lock
        # Short connect timeout and few retries: a dead store should fail a request in seconds
        # and turn the readiness probe red, not hang workers.
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=3.0, read=60.0),
            maxsize=16,
            retries=urllib3.Retry(
                total=2, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]
            ),
        )
        self.client = Minio(
            settings.endpoint,
            access_key=settings.access_key,
            secret_key=settings.secret_key,
            secure=settings.secure,
            region=settings.region,
            http_client=http,
        )

    async def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await anyio.to_thread.run_sync(lambda: fn(*args, **kwargs))
        except S3Error as exc:
            if exc.code in _MISSING:
                raise ObjectNotFound(exc.object_name or exc.bucket_name or "") from None
            raise StorageUnavailable(f"object store refused the request: {exc.code}") from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise StorageUnavailable(f"object store unreachable: {type(exc).__name__}") from exc

    async def ensure_ready(self) -> None:
        """Create the bucket when missing (with object locking when retention is configured)."""
        if not await self._call(self.client.bucket_exists, self.bucket):
            try:
                await self._call(
                    self.client.make_bucket, self.bucket, object_lock=self._object_lock
                )
            except StorageUnavailable:
                # Another worker may have created it a moment ago.
                if not await self._call(self.client.bucket_exists, self.bucket):
                    raise

    async def check(self) -> None:
        """Readiness: the bucket exists and the server answers."""
        if not await self._call(self.client.bucket_exists, self.bucket):
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


def _info(obj: Object) -> ObjectInfo:
    assert obj.object_name is not None
    assert obj.last_modified is not None
    return ObjectInfo(
        key=obj.object_name,
        size=obj.size or 0,
        content_type=obj.content_type or "application/octet-stream",
        modified_at=obj.last_modified,
    )
