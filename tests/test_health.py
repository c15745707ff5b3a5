"""Liveness and readiness probes, with the database or the object store down."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from inspection.app import create_app
from inspection.settings import S3Settings, Settings, Timeouts
from inspection.storage import filesystem as filesystem_module
from tests.conftest import Backend
from tests.faults import FaultProxy
from tests.served import free_port

# Each failing probe must answer within readiness' deadline (3 s) plus some slack.
FAST = Timeouts().readiness + 2.0


def _unreachable_database(backend: Backend) -> str:
    if backend.name == "sqlite":
        return "sqlite+aiosqlite:////nonexistent-dir/x.db"
    return "postgresql+asyncpg://postgres@127.0.0.1:1/postgres"


def _dead_s3(s3: S3Settings) -> S3Settings:
    return S3Settings("127.0.0.1:1", s3.access_key, s3.secret_key, s3.bucket, False, None)


def _store_down_settings(backend: Backend, tmp_path: Path) -> Settings:
    """Settings whose object store cannot be used at start."""
    if backend.s3 is not None:
        return backend.settings(tmp_path, s3=_dead_s3(backend.s3))
    # A plain file where the objects folder should be: mkdir fails, the probe fails.
    backend.objects_dir.write_text("not a folder")
    return backend.settings(tmp_path)


async def _ready(client: AsyncTestClient[Litestar]) -> tuple[int, dict[str, str]]:
    started = time.monotonic()
    response = await client.get("/health/ready")
    assert time.monotonic() - started < FAST, "the readiness probe must fail fast"
    expected = "application/json" if response.status_code == 200 else "application/problem+json"
    assert response.headers["content-type"].startswith(expected)
    body = response.json()
    if response.status_code != 200:
        assert body["status"] == 503 and body["type"] == "/problems/unavailable"
        assert "unavailable" in body["detail"]
    checks: dict[str, str] = body["checks"]
    return response.status_code, checks


async def test_live_answers_without_token(client: AsyncTestClient[Litestar]) -> None:
    response = await client.get("/health/live")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "authorization" not in {k.lower() for k in response.request.headers}


async def test_ready_when_everything_answers(client: AsyncTestClient[Litestar]) -> None:
    status, body = await _ready(client)
    assert status == 200
    assert body == {"database": "ok", "object_store": "ok"}


async def test_ready_ignores_a_bad_token(client: AsyncTestClient[Litestar]) -> None:
    response = await client.get("/health/ready", headers={"Authorization": "Bearer nonsense"})
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


async def test_ready_is_503_when_database_is_down(backend: Backend, tmp_path: Path) -> None:
    settings = backend.settings(tmp_path, database_url=_unreachable_database(backend))
    async with AsyncTestClient(create_app(settings)) as client:
        live = await client.get("/health/live")
        assert live.status_code == 200
        assert live.json() == {"status": "ok"}
        status, body = await _ready(client)
        assert status == 503
        assert body == {"database": "unavailable", "object_store": "ok"}
        # Still down on a second probe (no cached success).
        status, body = await _ready(client)
        assert status == 503
        assert body["database"] == "unavailable"


async def test_ready_is_503_when_store_is_down_at_start(backend: Backend, tmp_path: Path) -> None:
    settings = _store_down_settings(backend, tmp_path)
    # The lifespan tolerates the dead store: the app starts and answers.
    async with AsyncTestClient(create_app(settings)) as client:
        live = await client.get("/health/live")
        assert live.status_code == 200
        assert live.json() == {"status": "ok"}
        status, body = await _ready(client)
        assert status == 503
        assert body == {"database": "ok", "object_store": "unavailable"}
        status, body = await _ready(client)
        assert status == 503
        assert body["object_store"] == "unavailable"
        assert (await client.get("/health/live")).status_code == 200


class _Forwarder(socketserver.BaseRequestHandler):
    """Pipes one TCP connection to `server.upstream` (a stand-in for a store coming back)."""

    server: _Proxy

    def handle(self) -> None:
        with socket.create_connection(self.server.upstream, timeout=10) as remote:
            back = threading.Thread(target=_pump, args=(remote, self.request), daemon=True)
            back.start()
            _pump(self.request, remote)
            back.join(timeout=10)


class _Proxy(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        super().__init__(("127.0.0.1", port), _Forwarder)


def _pump(source: socket.socket, target: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            target.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            target.shutdown(socket.SHUT_WR)


@contextlib.contextmanager
def _serving(proxy: _Proxy) -> Iterator[None]:
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        proxy.shutdown()
        proxy.server_close()
        thread.join(timeout=10)


async def test_store_down_at_start_comes_back(backend: Backend, tmp_path: Path) -> None:
    """Down at start: 503; once the store answers again the probe prepares it and turns 200.

    Filesystem: a plain file sits where the folder goes, then is deleted. S3: nothing listens on
    the endpoint at start, then a forwarder to MinIO starts on it (the bucket does not exist yet).
    """
    if backend.s3 is None:
        settings = _store_down_settings(backend, tmp_path)
        upstream = None
        port = 0
    else:
        port = free_port()
        host, _, upstream_port = backend.s3.endpoint.rpartition(":")
        upstream = (host, int(upstream_port))
        s3 = S3Settings(
            f"127.0.0.1:{port}",
            backend.s3.access_key,
            backend.s3.secret_key,
            backend.s3.bucket,
            False,
            None,
        )
        settings = backend.settings(tmp_path, s3=s3)
    async with AsyncTestClient(create_app(settings)) as client:
        assert (await client.get("/health/live")).status_code == 200
        status, body = await _ready(client)
        assert status == 503
        assert body["object_store"] == "unavailable"
        if upstream is None:
            backend.objects_dir.unlink()
            status, body = await _ready(client)
        else:
            with _serving(_Proxy(port, upstream)):
                status, body = await _ready(client)
        assert status == 200, body
        assert body == {"database": "ok", "object_store": "ok"}
    # The probe created the folder or bucket.
    store = backend.object_store()
    try:
        await store.check()
    finally:
        await store.close()


async def _take_store_down(backend: Backend) -> None:
    """The folder is replaced by a file; on S3 the bucket is removed."""
    if backend.s3 is None:
        shutil.rmtree(backend.objects_dir)
        backend.objects_dir.write_text("not a folder")
        return
    store = backend.object_store()
    try:
        await store._call(store.client.remove_bucket, backend.s3.bucket)
    finally:
        await store.close()


async def test_store_going_down_then_recovering(
    client: AsyncTestClient[Litestar], backend: Backend
) -> None:
    """503 while the store is gone (live stays 200); then the probe recreates the folder or
    bucket and turns 200 again."""
    status, _ = await _ready(client)
    assert status == 200
    await _take_store_down(backend)
    status, body = await _ready(client)
    assert status == 503
    assert body == {"database": "ok", "object_store": "unavailable"}
    assert (await client.get("/health/live")).status_code == 200
    if backend.s3 is None:
        backend.objects_dir.unlink()
    status, body = await _ready(client)
    assert status == 200, body
    assert body["object_store"] == "ok"


async def test_ready_answers_within_its_deadline_while_the_store_probe_hangs(
    backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store's probe is stuck in a thread (MinIO frozen: a read it never answers; the folder
    on a hung mount): readiness still answers 503 within its deadline, probe after probe, and 200
    as soon as the store answers again."""
    deadline = 0.5
    timeouts = dataclasses.replace(Timeouts(), readiness=deadline)
    release = threading.Event()
    with contextlib.ExitStack() as stack:
        stack.callback(release.set)
        if backend.s3 is None:
            settings = backend.settings(tmp_path, timeouts=timeouts)
            real_access = os.access

            def hung_access(path: Any, mode: int) -> bool:
                if Path(path) == backend.objects_dir and not release.is_set():
                    release.wait(30)
                return real_access(path, mode)

            def hang() -> None:
                monkeypatch.setattr(filesystem_module.os, "access", hung_access)

            recover = release.set
        else:
            host, _, port = backend.s3.endpoint.rpartition(":")
            proxy = stack.enter_context(FaultProxy((host, int(port))))
            s3 = dataclasses.replace(backend.s3, endpoint=proxy.address)
            settings = backend.settings(tmp_path, s3=s3, timeouts=timeouts)
            hang, recover = proxy.blackhole, proxy.recover
        async with AsyncTestClient(create_app(settings)) as client:
            status, _ = await _ready(client)
            assert status == 200
            hang()
            for _ in range(3):
                started = time.monotonic()
                status, body = await _ready(client)
                elapsed = time.monotonic() - started
                assert status == 503
                assert body == {"database": "ok", "object_store": "unavailable"}
                assert elapsed < deadline + 1.0, f"readiness took {elapsed:.1f} s"
            recover()
            status, body = await _ready(client)
            assert (status, body) == (200, {"database": "ok", "object_store": "ok"})
