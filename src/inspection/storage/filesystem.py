"""Object store in a local folder: the embedded default.

A put writes to a temporary file in the same folder, fsyncs and renames it into place, so a reader
never sees half an object and a crash leaves only a temporary file (removed at start).
"""

from __future__ import annotations

import hashlib
import mimetypes
import os
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
    PutResult,
    StorageUnavailable,
    check_key,
)

_TMP_PREFIX = ".tmp-"
_TYPE_SUFFIX = ".content-type"


class FilesystemObjectStore:
    """An `ObjectStore` over a folder; keys map to relative paths below it."""

    supports_signed_urls = False

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    async def ensure_ready(self) -> None:
        """Create the folder and remove temporary files left by an interrupted put."""

        def prepare() -> None:
            self.root.mkdir(parents=True, exist_ok=True)
            for tmp in self.root.rglob(f"{_TMP_PREFIX}*"):
                tmp.unlink(missing_ok=True)

        await anyio.to_thread.run_sync(prepare)

    async def check(self) -> None:
        """Readiness: the folder exists and is writable."""

        def probe() -> None:
            if not self.root.is_dir() or not os.access(self.root, os.W_OK | os.X_OK):
                raise StorageUnavailable(f"object folder {self.root} is missing or not writable")

        await anyio.to_thread.run_sync(probe)

    async def put(
        self,
        key: str,
        chunks: AsyncIterable[bytes],
        content_type: str = "application/octet-stream",
        *,
        max_size: int | None = None,
        retain_until: datetime | None = None,
    ) -> PutResult:
        """Stream into a temporary file, hashing as it goes, then rename it into place."""
        target = self._path(key)
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
            if content_type != "application/octet-stream":
                type_file = target.with_name(target.name + _TYPE_SUFFIX)
                await anyio.to_thread.run_sync(type_file.write_text, content_type)
        except OSError as exc:
            raise StorageUnavailable(f"cannot write {key}: {exc.strerror}") from exc
        finally:
            await anyio.to_thread.run_sync(lambda: tmp.unlink(missing_ok=True))
        return PutResult(key=key, size=size, sha256=digest.hexdigest())

    async def get(self, key: str) -> AsyncIterator[bytes]:
        """Stream the file in chunks."""
        path = self._path(key)
        try:
            handle = await anyio.open_file(path, "rb")
        except FileNotFoundError:
            raise ObjectNotFound(key) from None
        except OSError as exc:
            raise StorageUnavailable(f"cannot read {key}: {exc.strerror}") from exc
        async with handle:
            while chunk := await handle.read(CHUNK_SIZE):
                yield chunk

    async def stat(self, key: str) -> ObjectInfo:
        """Size, type and modification time from the file system."""
        path = self._path(key)

        def read_stat() -> ObjectInfo:
            try:
                st = path.stat()
            except FileNotFoundError:
                raise ObjectNotFound(key) from None
            return ObjectInfo(key, st.st_size, _content_type(path), _mtime(st.st_mtime))

        return await anyio.to_thread.run_sync(read_stat)

    async def delete(self, key: str) -> None:
        """Remove the file and its type note; a missing file is fine."""
        path = self._path(key)

        def remove() -> None:
            path.unlink(missing_ok=True)
            path.with_name(path.name + _TYPE_SUFFIX).unlink(missing_ok=True)

        await anyio.to_thread.run_sync(remove)

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        """Walk the folder; yields objects whose key starts with `prefix`, sorted by key."""

        def scan() -> list[ObjectInfo]:
            found: list[ObjectInfo] = []
            if not self.root.is_dir():
                return found
            for dirpath, _dirs, files in os.walk(self.root):
                for name in files:
                    if name.startswith(_TMP_PREFIX) or name.endswith(_TYPE_SUFFIX):
                        continue
                    path = Path(dirpath) / name
                    key = path.relative_to(self.root).as_posix()
                    if key.startswith(prefix):
                        st = path.stat()
                        found.append(
                            ObjectInfo(key, st.st_size, _content_type(path), _mtime(st.st_mtime))
                        )
            return sorted(found, key=lambda info: info.key)

        for info in await anyio.to_thread.run_sync(scan):
            yield info

    async def signed_get_url(self, key: str, expires: timedelta) -> str | None:
        """Not supported: the API streams the bytes itself."""
        return None

    async def signed_put_url(self, key: str, expires: timedelta) -> str | None:
        """Not supported: uploads go through the API."""
        return None

    async def close(self) -> None:
        """Nothing to release."""


def _finish(handle: BinaryIO, data: bytes, tmp: Path, target: Path) -> None:
    handle.write(data)
    handle.flush()
    os.fsync(handle.fileno())
    handle.close()
    os.replace(tmp, target)


def _content_type(path: Path) -> str:
    type_file = path.with_name(path.name + _TYPE_SUFFIX)
    try:
        return type_file.read_text().strip()
    except FileNotFoundError:
        return mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def _mtime(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, tz=UTC)
