"""One suite for both `ObjectStore` implementations: a local folder (SQLite variant) and MinIO
(PostgreSQL variant, a fresh bucket per test)."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import random
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import anyio
import anyio.to_thread
import httpx
import pytest

from inspection.settings import Timeouts
from inspection.storage import (
    InvalidKey,
    ObjectInfo,
    ObjectNotFound,
    ObjectStore,
    ObjectTooLarge,
    StorageUnavailable,
    iterate_bytes,
    read_all,
)
from inspection.storage import filesystem as filesystem_module
from inspection.storage.filesystem import FilesystemObjectStore
from inspection.storage.s3 import S3ObjectStore
from tests.conftest import Backend
from tests.faults import FaultProxy

MIB = 1024 * 1024
# Above the S3 store's 8 MiB part size, so MinIO receives a multipart upload.
LARGE = 9 * MIB + MIB // 2
INVALID_KEYS = ["../x", "/abs", "a//b", "", "a/../b", "a/./b", "trailing/", ".hidden", "a b"]


def _bytes(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def _keys(store: ObjectStore, prefix: str = "") -> list[str]:
    return [info.key async for info in store.list(prefix)]


async def _infos(store: ObjectStore, prefix: str = "") -> list[ObjectInfo]:
    return [info async for info in store.list(prefix)]


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[ObjectStore]:
    """The backend's store, prepared (the folder or bucket does not exist before)."""
    object_store = backend.object_store()
    await object_store.ensure_ready()
    try:
        yield object_store
    finally:
        await object_store.close()


def _leftover_tmp_files(backend: Backend) -> list[Path]:
    if backend.s3 is not None or not backend.objects_dir.exists():
        return []
    return list(backend.objects_dir.rglob(".tmp-*"))


def _escaped(backend: Backend) -> bool:
    """Whether an invalid key wrote anything outside the objects folder."""
    return (backend.objects_dir.parent / "x").exists() or Path("/abs").exists()


async def _incomplete_uploads(store: ObjectStore) -> list[str]:
    """Object names of multipart uploads begun but neither completed nor aborted (S3 only)."""
    if not isinstance(store, S3ObjectStore):
        return []
    result = await store._call(store.client._list_multipart_uploads, store.bucket)
    return [upload.object_name for upload in result.uploads]


# --- put / get / stat ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "chunk_size"),
    [(0, 16), (1, 16), (5, 16), (4096, 4096), (100_000, 777), (600_000, 65_536)],
)
async def test_put_returns_size_and_sha256(store: ObjectStore, size: int, chunk_size: int) -> None:
    data = _bytes(size, seed=size)
    key = f"evidence/{size}-{chunk_size}.bin"
    result = await store.put(key, iterate_bytes(data, chunk_size=chunk_size))
    assert result.key == key
    assert result.size == size
    assert result.sha256 == _sha(data)
    assert await read_all(store, key) == data
    info = await store.stat(key)
    assert info.key == key
    assert info.size == size


async def test_put_empty_object(store: ObjectStore) -> None:
    result = await store.put("empty", iterate_bytes(b""))
    assert result.size == 0
    assert result.sha256 == hashlib.sha256(b"").hexdigest()
    assert await read_all(store, "empty") == b""
    assert (await store.stat("empty")).size == 0
    assert await _keys(store) == ["empty"]


async def test_large_object_multipart_round_trip(store: ObjectStore) -> None:
    data = _bytes(LARGE, seed=42)
    # An odd chunk size so chunks straddle every buffer and part boundary.
    result = await store.put("big/object.bin", iterate_bytes(data, chunk_size=100_003))
    assert result.size == LARGE
    assert result.sha256 == _sha(data)

    chunks = [chunk async for chunk in store.get("big/object.bin")]
    assert len(chunks) > 1, "get must stream, not return the object in one piece"
    assert b"".join(chunks) == data
    assert (await store.stat("big/object.bin")).size == LARGE
    if isinstance(store, S3ObjectStore):
        raw = await store._call(store.client.stat_object, store.bucket, "big/object.bin")
        assert raw.etag.endswith("-2"), f"expected a two-part multipart upload, etag {raw.etag}"
    assert await _incomplete_uploads(store) == []


async def test_stat_reports_size_type_and_time(store: ObjectStore) -> None:
    before = datetime.now(UTC) - timedelta(minutes=5)
    await store.put("photos/p1", iterate_bytes(b"\xff\xd8jpeg-bytes"), "image/jpeg")
    await store.put("blobs/b1", iterate_bytes(b"12345"))
    photo = await store.stat("photos/p1")
    assert photo == ObjectInfo("photos/p1", 12, "image/jpeg", photo.modified_at)
    assert before < photo.modified_at < datetime.now(UTC) + timedelta(minutes=5)
    assert photo.modified_at.tzinfo is not None
    blob = await store.stat("blobs/b1")
    assert blob.size == 5
    assert blob.content_type == "application/octet-stream"


async def test_overwrite_replaces_content(store: ObjectStore) -> None:
    await store.put("doc/v", iterate_bytes(b"first version, longer"), "text/plain")
    result = await store.put("doc/v", iterate_bytes(b"second"), "image/png")
    assert result.size == 6
    assert await read_all(store, "doc/v") == b"second"
    info = await store.stat("doc/v")
    assert info.size == 6
    assert info.content_type == "image/png"
    listed = await _infos(store)
    assert [(i.key, i.size) for i in listed] == [("doc/v", 6)]


async def test_content_type_is_what_was_put(
    store: ObjectStore, backend: Backend, request: pytest.FixtureRequest
) -> None:
    """Both stores report the type given to put: no guessing from the key, no stale type."""
    await store.put("doc/overwritten", iterate_bytes(b"a"), "text/plain")
    await store.put("doc/overwritten", iterate_bytes(b"b"))
    assert (await store.stat("doc/overwritten")).content_type == "application/octet-stream"
    await store.put("doc/report.pdf", iterate_bytes(b"%PDF"))
    assert (await store.stat("doc/report.pdf")).content_type == "application/octet-stream"


# --- list ----------------------------------------------------------------------------------------


async def test_list_by_prefix_is_exact_and_sorted(store: ObjectStore) -> None:
    keys = [
        "reports/2025/a",
        "reports/2024/b",
        "reportsX/c",
        "reports/2024/a",
        "other/x",
        "a-b",
        "a/b",
        "ab",
        "a.c",
        "a/a/z",
    ]
    for number, key in enumerate(keys):
        await store.put(key, iterate_bytes(b"x" * (number + 1)))

    assert await _keys(store) == sorted(keys)
    assert await _keys(store, "reports/2024/") == ["reports/2024/a", "reports/2024/b"]
    assert await _keys(store, "reports/") == ["reports/2024/a", "reports/2024/b", "reports/2025/a"]
    assert await _keys(store, "reports") == [
        "reports/2024/a",
        "reports/2024/b",
        "reports/2025/a",
        "reportsX/c",
    ]
    assert await _keys(store, "a") == ["a-b", "a.c", "a/a/z", "a/b", "ab"]
    assert await _keys(store, "nothing/") == []
    sizes = {info.key: info.size for info in await _infos(store)}
    assert sizes == {key: number + 1 for number, key in enumerate(keys)}


async def test_list_of_empty_store_is_empty(store: ObjectStore) -> None:
    assert await _keys(store) == []
    assert await _keys(store, "any/") == []


# --- delete and missing objects ------------------------------------------------------------------


async def test_delete_removes_and_is_idempotent(store: ObjectStore) -> None:
    await store.put("d/keep", iterate_bytes(b"keep"))
    await store.put("d/gone", iterate_bytes(b"gone"), "text/plain")
    await store.delete("d/gone")
    assert await _keys(store) == ["d/keep"]
    with pytest.raises(ObjectNotFound):
        await store.stat("d/gone")
    with pytest.raises(ObjectNotFound):
        await read_all(store, "d/gone")
    await store.delete("d/gone")
    await store.delete("never/existed")
    assert await read_all(store, "d/keep") == b"keep"


async def test_missing_object_raises_not_found(store: ObjectStore) -> None:
    with pytest.raises(ObjectNotFound):
        await store.stat("missing/key")
    with pytest.raises(ObjectNotFound):
        await read_all(store, "missing/key")
    with pytest.raises(ObjectNotFound):
        await read_all(store, "missing")


async def test_key_prefix_of_an_object_is_not_an_object(
    store: ObjectStore, backend: Backend, request: pytest.FixtureRequest
) -> None:
    """ "dir" and "dir/obj/more" are missing keys even when "dir/obj" exists."""
    await store.put("dir/obj", iterate_bytes(b"data"))
    for key in ("dir", "dir/obj/more"):
        with pytest.raises(ObjectNotFound):
            await store.stat(key)
        with pytest.raises(ObjectNotFound):
            await read_all(store, key)
        await store.delete(key)
    assert await read_all(store, "dir/obj") == b"data"


# --- size limit ----------------------------------------------------------------------------------


async def test_put_over_max_size_stores_nothing(store: ObjectStore, backend: Backend) -> None:
    with pytest.raises(ObjectTooLarge) as caught:
        await store.put("limited/small", iterate_bytes(b"x" * 11, chunk_size=3), max_size=10)
    assert caught.value.limit == 10
    assert await _keys(store, "limited/") == []
    with pytest.raises(ObjectNotFound):
        await store.stat("limited/small")
    assert _leftover_tmp_files(backend) == []

    # Exactly at the limit is fine.
    result = await store.put("limited/exact", iterate_bytes(b"y" * 10, chunk_size=3), max_size=10)
    assert result.size == 10
    assert await _keys(store, "limited/") == ["limited/exact"]


async def test_multipart_put_over_max_size_stores_nothing(
    store: ObjectStore, backend: Backend
) -> None:
    """The limit trips after a first 8 MiB part was sent: the upload is aborted."""
    data = _bytes(LARGE, seed=7)
    with pytest.raises(ObjectTooLarge):
        await store.put("limited/big", iterate_bytes(data, chunk_size=MIB), max_size=9 * MIB)
    assert await _keys(store) == []
    with pytest.raises(ObjectNotFound):
        await store.stat("limited/big")
    assert await _incomplete_uploads(store) == []
    assert _leftover_tmp_files(backend) == []


async def test_put_over_max_size_keeps_previous_version(store: ObjectStore) -> None:
    await store.put("limited/v", iterate_bytes(b"old"))
    with pytest.raises(ObjectTooLarge):
        await store.put("limited/v", iterate_bytes(b"z" * 100, chunk_size=10), max_size=50)
    assert await read_all(store, "limited/v") == b"old"
    assert await _keys(store) == ["limited/v"]


# --- keys ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", INVALID_KEYS)
async def test_invalid_keys_are_refused(store: ObjectStore, backend: Backend, key: str) -> None:
    with pytest.raises(InvalidKey):
        await store.put(key, iterate_bytes(b"evil"))
    with pytest.raises(InvalidKey):
        await read_all(store, key)
    with pytest.raises(InvalidKey):
        await store.stat(key)
    with pytest.raises(InvalidKey):
        await store.delete(key)
    assert await _keys(store) == []
    if backend.s3 is None:
        # Nothing escaped the folder either.
        assert not _escaped(backend)


async def test_invalid_key_is_a_value_error() -> None:
    assert issubclass(InvalidKey, ValueError)


async def test_long_but_valid_keys_work(store: ObjectStore) -> None:
    key = "units/0190a0a0-0000-7000-8000-000000000000/evidence/IMG_0001.final-v2.jpeg"
    await store.put(key, iterate_bytes(b"jpeg"), "image/jpeg")
    assert await _keys(store, "units/") == [key]
    with pytest.raises(InvalidKey):
        await store.stat("k" * 513)


# --- readiness -----------------------------------------------------------------------------------


async def test_ensure_ready_creates_and_is_idempotent(backend: Backend) -> None:
    store = backend.object_store()
    try:
        with pytest.raises(StorageUnavailable):
            await store.check()
        await store.ensure_ready()
        await store.check()
        if backend.s3 is None:
            assert backend.objects_dir.is_dir()
        else:
            assert isinstance(store, S3ObjectStore)
            assert await store._call(store.client.bucket_exists, backend.s3.bucket)
        await store.put("kept", iterate_bytes(b"still here"))
        await store.ensure_ready()
        await store.check()
        assert await read_all(store, "kept") == b"still here"
        assert await _keys(store) == ["kept"]
    finally:
        await store.close()


async def test_two_stores_share_the_location(backend: Backend) -> None:
    first, second = backend.object_store(), backend.object_store()
    try:
        await first.ensure_ready()
        await second.ensure_ready()
        await first.put("shared", iterate_bytes(b"one"))
        assert await read_all(second, "shared") == b"one"
    finally:
        await first.close()
        await second.close()


async def test_filesystem_removes_leftover_temporary_files(tmp_path: Path) -> None:
    root = tmp_path / "objects"
    store = FilesystemObjectStore(root)
    await store.ensure_ready()
    await store.put("a/real", iterate_bytes(b"real"))
    leftovers = [root / ".tmp-0123abcd", root / "a" / ".tmp-deadbeef", root / "b" / ".tmp-x"]
    for leftover in leftovers:
        leftover.parent.mkdir(parents=True, exist_ok=True)
        leftover.write_bytes(b"half an object")

    assert await _keys(store) == ["a/real"]
    assert await _keys(store, ".tmp") == []
    assert await _keys(store, "a/") == ["a/real"]

    # Two are old leftovers of a crash; the third may be a put in flight in another worker.
    two_hours_ago = time.time() - 7200
    for leftover in leftovers[:2]:
        os.utime(leftover, (two_hours_ago, two_hours_ago))
    await store.ensure_ready()
    assert [leftover.exists() for leftover in leftovers] == [False, False, True]
    assert await read_all(store, "a/real") == b"real"
    assert await _keys(store) == ["a/real"]
    await store.close()


async def test_filesystem_check_fails_when_folder_is_a_file(tmp_path: Path) -> None:
    root = tmp_path / "objects"
    root.write_text("not a folder")
    store = FilesystemObjectStore(root)
    with pytest.raises(StorageUnavailable):
        await store.check()
    # Raw OSError today (S3 raises StorageUnavailable); either way it must fail loudly.
    with pytest.raises((OSError, StorageUnavailable)):
        await store.ensure_ready()


# --- signed URLs ---------------------------------------------------------------------------------


async def test_signed_urls(store: ObjectStore, backend: Backend) -> None:
    expires = timedelta(minutes=5)
    await store.put("signed/get", iterate_bytes(b"read me directly"), "text/plain")
    assert store.supports_signed_urls is (backend.s3 is not None)
    if not store.supports_signed_urls:
        assert await store.signed_get_url("signed/get", expires) is None
        assert await store.signed_put_url("signed/put", expires) is None
        return

    get_url = await store.signed_get_url("signed/get", expires)
    put_url = await store.signed_put_url("signed/put", expires)
    assert get_url is not None
    assert put_url is not None
    assert "X-Amz-Signature=" in get_url
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.get(get_url)
        assert response.status_code == 200
        assert response.content == b"read me directly"

        uploaded = _bytes(70_000, seed=3)
        response = await http.put(put_url, content=uploaded)
        assert response.status_code == 200, response.text
        assert await read_all(store, "signed/put") == uploaded
        assert (await store.stat("signed/put")).size == len(uploaded)

        # A tampered signature is refused.
        parts = urlsplit(get_url)
        query = dict(parse_qsl(parts.query))
        query["X-Amz-Signature"] = "0" * 64
        forged = urlunsplit(parts._replace(query=urlencode(query)))
        assert (await http.get(forged)).status_code == 403

        # A signed URL of a missing object answers 404.
        missing_url = await store.signed_get_url("signed/missing", expires)
        assert missing_url is not None
        assert (await http.get(missing_url)).status_code == 404

    with pytest.raises(InvalidKey):
        await store.signed_get_url("../x", expires)
    assert await _keys(store, "signed/") == ["signed/get", "signed/put"]


# --- a store that stops answering ----------------------------------------------------------------

# Small timeouts for the S3 store behind a fault proxy (production: `Timeouts()`).
QUICK = Timeouts(
    store_connect=0.5,
    store_read=1.0,
    store_connect_retries=1,
    store_status_retries=1,
    store_backoff=0.05,
    store_threads=2,
    store_queue=0.5,
)
# A failing call answers within this (its timeouts add up to about a second).
FAIL_FAST = 5.0


@contextlib.contextmanager
def _proxied_store(
    backend: Backend, timeouts: Timeouts = QUICK
) -> Iterator[tuple[S3ObjectStore, FaultProxy]]:
    """The backend's bucket through a fault proxy in front of MinIO."""
    assert backend.s3 is not None
    host, _, port = backend.s3.endpoint.rpartition(":")
    with FaultProxy((host, int(port))) as proxy:
        s3 = dataclasses.replace(backend.s3, endpoint=proxy.address)
        yield S3ObjectStore(s3, timeouts=timeouts), proxy


async def _fails_fast(call: Awaitable[object]) -> float:
    """Assert `call` raises StorageUnavailable within FAIL_FAST; return how long it took."""
    started = time.monotonic()
    with anyio.fail_after(FAIL_FAST + 5), pytest.raises(StorageUnavailable):
        await call
    elapsed = time.monotonic() - started
    assert elapsed < FAIL_FAST, f"took {elapsed:.1f} s"
    return elapsed


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_s3_calls_fail_fast_on_a_blackholed_or_cut_store(backend: Backend) -> None:
    """Every kind of call raises StorageUnavailable within seconds, whether MinIO is frozen
    (connections accepted, never answered) or gone (refused); afterwards all works again."""
    # Enough threads for all the calls at once (a full pool is the next test's subject).
    with _proxied_store(backend, dataclasses.replace(QUICK, store_threads=8)) as (store, proxy):
        await store.ensure_ready()
        await store.put("kept/one", iterate_bytes(b"acknowledged"))
        for fault in (proxy.blackhole, proxy.cut):
            fault()
            async with anyio.create_task_group() as group:
                for call in (
                    store.put("late/one", iterate_bytes(b"x" * 300_000)),
                    read_all(store, "kept/one"),
                    store.stat("kept/one"),
                    store.delete("kept/one"),
                    _keys(store),
                    store.check(),
                    store.ensure_ready(),
                ):
                    group.start_soon(_fails_fast, call)
            proxy.recover()
        await store.check()
        assert await read_all(store, "kept/one") == b"acknowledged"
        assert await _keys(store) == ["kept/one"]
        await store.close()


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_s3_calls_stuck_on_the_store_keep_off_the_default_thread_pool(
    backend: Backend,
) -> None:
    """Calls hanging on a frozen store use the store's own threads (at most `store_threads`);
    anyio's default pool (image checks) stays free. A call finding every store
    thread busy waits `store_queue`, not for the stuck ones."""
    limiter = anyio.to_thread.current_default_thread_limiter()
    before = limiter.total_tokens
    limiter.total_tokens = 1
    try:
        with _proxied_store(backend) as (store, proxy):
            await store.ensure_ready()
            proxy.blackhole()
            results: list[float] = []

            async def stuck() -> None:
                results.append(await _fails_fast(store.stat("any/key")))

            async with anyio.create_task_group() as group:
                for _ in range(QUICK.store_threads + 2):
                    group.start_soon(stuck)
                await anyio.sleep(0.2)
                started = time.monotonic()
                assert await anyio.to_thread.run_sync(lambda: "free") == "free"
                assert time.monotonic() - started < 0.5, "the default pool was taken"
            # Two waited for a thread (store_queue) and gave up before the stuck ones did.
            assert len(results) == QUICK.store_threads + 2
            assert sorted(results)[1] < QUICK.store_read
            proxy.recover()
            await store.close()
    finally:
        limiter.total_tokens = before


async def test_a_cancelled_check_returns_at_once_although_its_thread_is_stuck(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The readiness probe cancels `check` at its deadline: `check` returns then, leaving its
    thread stuck on the store (a read MinIO never answers; a hung mount) behind."""
    release = threading.Event()
    with contextlib.ExitStack() as stack:
        stack.callback(release.set)
        if backend.s3 is None:
            store: ObjectStore = backend.object_store()
            await store.ensure_ready()
            real_access = os.access

            def hung_access(path: Any, mode: int) -> bool:
                if Path(path) == backend.objects_dir:
                    release.wait(30)
                return real_access(path, mode)

            monkeypatch.setattr(filesystem_module.os, "access", hung_access)
        else:
            # The production read timeout: the thread stays stuck for seconds.
            store, proxy = stack.enter_context(_proxied_store(backend, Timeouts()))
            await store.ensure_ready()
            proxy.blackhole()
        for _ in range(2):
            started = time.monotonic()
            with anyio.move_on_after(0.3):
                await store.check()
            assert time.monotonic() - started < 1.5, "check ignored its cancellation"
        await store.close()
