"""Object store in a local folder: the embedded default.

A put writes to a temporary file in the same folder, fsyncs and renames it into place, so a reader
never sees half an object; a crash leaves only a temporary file, swept once it is an hour old.
Content types live in a `.meta/` tree beside the objects: no key can start with a dot, so a note
can never collide with an object, and the store answers exactly as the S3 store does.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat as stat_module
import time
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO

import anyio
import anyio.to_thread

from inspection.storage import (
    CHUNK_SIZE,
    ObjectInfo,
    ObjectNotFound,
    ObjectTooLarge,
    PresignedPost,
    PutResult,
    StorageUnavailable,
    check_key,
)

_TMP_PREFIX = ".tmp-"
_META_DIR = ".meta"
_DEFAULT_TYPE = "application/octet-stream"
_STALE_TMP_SECONDS = 3600
# A path that crosses or names something other than a regular file is simply not an object.
_NOT_AN_OBJECT = (FileNotFoundError, NotADirectoryError, IsADirectoryError)


class FilesystemObjectStore:
    """An `ObjectStore` over a folder; keys map to relative paths below it."""

    supports_signed_urls = False

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def _meta(self, key: str) -> Path:
        return self.root / _META_DIR / check_key(key)

    def _regular_file(self, key: str) -> os.stat_result:
        try:
            st = self._path(key).stat()
        except _NOT_AN_OBJECT:
            raise ObjectNotFound(key) from None
        except OSError as exc:
            raise StorageUnavailable(f"cannot read {key}: {exc.strerror}") from exc
        if not stat_module.S_ISREG(st.st_mode):
            raise ObjectNotFound(key)
        return st

    async def ensure_ready(self) -> None:
        """Create the folder; remove temporary files an interrupted put left an hour ago or more.

        Younger ones may belong to a put in flight in another worker, so they stay.
        """

        def prepare() -> None:
            try:
                self.root.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StorageUnavailable(f"cannot create {self.root}: {exc.strerror}") from exc
            cutoff = time.time() - _STALE_TMP_SECONDS
            for tmp in self.root.rglob(f"{_TMP_PREFIX}*"):
                with contextlib.suppress(OSError):
                    if tmp.stat().st_mtime < cutoff:
                        tmp.unlink()

        # Also run by the readiness probe: abandoned at its deadline (a hung network mount),
        # like `check`.
        await anyio.to_thread.run_sync(prepare, abandon_on_cancel=True)

    async def check(self) -> None:
        """Readiness: the folder exists and is writable. Cancelling it (the probe's deadline)
        returns at once; a thread stuck on a hung mount is left behind."""

        def probe() -> None:
            if not self.root.is_dir() or not os.access(self.root, os.W_OK | os.X_OK):
                raise StorageUnavailable(f"object folder {self.root} is missing or not writable")

        await anyio.to_thread.run_sync(probe, abandon_on_cancel=True)

    async def put(
        self,
        key: str,
        chunks: AsyncIterable[bytes],
        content_type: str = _DEFAULT_TYPE,
        *,
        max_size: int | None = None,
        retain_until: datetime | None = None,
    ) -> PutResult:
        """Stream into a temporary file, hashing as it goes, then rename it into place."""
        target, meta = self._path(key), self._meta(key)
        tmp = target.parent / f"{_TMP_PREFIX}{uuid.uuid4().hex}"
        digest = hashlib.sha256()
        size = 0
        try:
            await anyio.to_thread.run_sync(lambda: target.parent.mkdir(parents=True, exist_ok=True))
            handle: BinaryIO = await anyio.to_thread.run_sync(lambda: tmp.open("wb"))
            try:
                buffer = bytearray()
                async for chunk in chunks:
                    size += len(chunk)
                    if max_size is not None and size > max_size:
                        raise ObjectTooLarge(max_size)
                    digest.update(chunk)
                    buffer += chunk
                    # Batch small network chunks so each thread hop writes a useful amount.
                    if len(buffer) >= CHUNK_SIZE:
                        data = bytes(buffer)
                        buffer.clear()
                        await anyio.to_thread.run_sync(handle.write, data)
                data = bytes(buffer)
                await anyio.to_thread.run_sync(lambda: _finish(handle, data, tmp, target))
            finally:
                handle.close()
            await anyio.to_thread.run_sync(lambda: _write_note(meta, content_type))
        except OSError as exc:
            raise StorageUnavailable(f"cannot write {key}: {exc.strerror or exc}") from exc
        finally:
            # Cleanup must never replace the error that got us here.
            with contextlib.suppress(OSError):
                await anyio.to_thread.run_sync(lambda: tmp.unlink(missing_ok=True))
        return PutResult(key=key, size=size, sha256=digest.hexdigest())

    async def get(self, key: str) -> AsyncIterator[bytes]:
        """Stream the file in chunks."""
        await anyio.to_thread.run_sync(self._regular_file, key)
        try:
            handle = await anyio.open_file(self._path(key), "rb")
        except _NOT_AN_OBJECT:
            raise ObjectNotFound(key) from None
        except OSError as exc:
            raise StorageUnavailable(f"cannot read {key}: {exc.strerror}") from exc
        async with handle:
            while chunk := await handle.read(CHUNK_SIZE):
                yield chunk

    async def stat(self, key: str) -> ObjectInfo:
        """Size, type and modification time from the file system."""

        def read_stat() -> ObjectInfo:
            st = self._regular_file(key)
            return ObjectInfo(key, st.st_size, _read_note(self._meta(key)), _mtime(st.st_mtime))

        return await anyio.to_thread.run_sync(read_stat)

    async def delete(self, key: str) -> None:
        """Remove the file and its type note; a missing object is fine."""
        path, meta = self._path(key), self._meta(key)

        def remove() -> None:
            for target in (path, meta):
                with contextlib.suppress(*_NOT_AN_OBJECT):
                    if stat_module.S_ISREG(target.stat().st_mode):
                        target.unlink()

        await anyio.to_thread.run_sync(remove)

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        """Walk the folder; yields objects whose key starts with `prefix`, sorted by key."""

        def scan() -> list[ObjectInfo]:
            found: list[ObjectInfo] = []
            if not self.root.is_dir():
                return found
            for dirpath, dirs, files in os.walk(self.root):
                if Path(dirpath) == self.root and _META_DIR in dirs:
                    dirs.remove(_META_DIR)
                for name in files:
                    if name.startswith(_TMP_PREFIX):
                        continue
                    path = Path(dirpath) / name
                    key = path.relative_to(self.root).as_posix()
                    if key.startswith(prefix):
                        st = path.stat()
                        note = _read_note(self._meta(key))
                        found.append(ObjectInfo(key, st.st_size, note, _mtime(st.st_mtime)))
            return sorted(found, key=lambda info: info.key)

        for info in await anyio.to_thread.run_sync(scan):
            yield info

    async def signed_get_url(
        self,
        key: str,
        expires: timedelta,
        *,
        content_type: str | None = None,
        disposition: str | None = None,
    ) -> str | None:
        """Not supported: the API streams the bytes itself."""
        check_key(key)
        return None

    async def signed_put_url(self, key: str, expires: timedelta) -> str | None:
        """Not supported: uploads go through the API."""
        check_key(key)
        return None

    async def presigned_post(
        self, key: str, expires: timedelta, *, min_size: int, max_size: int
    ) -> PresignedPost | None:
        """Not supported: uploads go through the API, which enforces the same range itself."""
        check_key(key)
        return None

    async def close(self) -> None:
        """Nothing to release."""


def _finish(handle: BinaryIO, data: bytes, tmp: Path, target: Path) -> None:
    handle.write(data)
    handle.flush()
    os.fsync(handle.fileno())
    handle.close()
    os.replace(tmp, target)


def _write_note(meta: Path, content_type: str) -> None:
    meta.parent.mkdir(parents=True, exist_ok=True)
    meta.write_text(content_type)


def _read_note(meta: Path) -> str:
    try:
        return meta.read_text().strip() or _DEFAULT_TYPE
    except OSError:
        return _DEFAULT_TYPE


def _mtime(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, tz=UTC)
