"""Back-end faults seen from outside: PostgreSQL and MinIO cut, black-holed or shutting down
behind a `tests.faults` proxy while the service answers.

During every fault each answer comes within seconds (`BOUND`) and is a 503 `/problems/unavailable`
with `Retry-After`: never a 500, never a hang; it is logged as one line, without a trace.
Readiness turns 503 within its deadline and 200 again after recovery. Every write acknowledged
with a 2xx is there afterwards, and both the audit chain and the stored evidence verify.

The service runs with small timeouts (`FAST`) so that each test takes seconds; production
defaults are `inspection.settings.Timeouts()` (docs/operations.md). The fault tests need
PostgreSQL and MinIO and skip like the other PostgreSQL variants; the classification tests at the
end run everywhere.
"""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import logging
import socket
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar, cast

import anyio.to_thread
import asyncpg
import httpx
import pytest
import sqlalchemy.exc
from litestar import Litestar, get
from litestar.testing import AsyncTestClient
from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url

from inspection.db.engine import WRITE_OPTION
from inspection.evidence.maintenance import verify as verify_evidence
from inspection.settings import Timeouts
from inspection.storage import StorageUnavailable
from inspection.web.problems import exception_handlers
from tests import images
from tests.conftest import ADMIN_PASSWORD, Backend, make_app
from tests.faults import FaultProxy, PostgresFaultProxy
from tests.helpers import PASSWORD, Api, build_world, finding_body, on_site, problem

# Small timeouts so that each fault costs about a second (production: `Timeouts()`).
FAST = Timeouts(
    database_connect=1.0,
    database_statement=1.5,
    database_pool=1.0,
    store_connect=0.5,
    store_read=1.0,
    store_connect_retries=1,
    store_status_retries=1,
    store_backoff=0.05,
    store_threads=4,
    store_queue=1.0,
    readiness=1.0,
)
# An answer during a fault: the timeouts above add up to 2-3 s; the rest is slack for a loaded
# 2-core machine. Anything slower is a hang.
BOUND = 6.0
# Readiness: its own deadline plus scheduling slack.
READY_BOUND = FAST.readiness + 1.0
# After recovery, the service must be back within this.
RECOVERY = 10.0

POSTGRES = pytest.mark.parametrize("backend", ["postgres"], indirect=True)
T = TypeVar("T")


class _Capture(logging.Handler):
    """Keeps the service's log records."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@dataclasses.dataclass
class Service:
    """The app behind a real HTTP client (requests run concurrently), with both proxies."""

    app: Litestar
    client: httpx.AsyncClient
    db: PostgresFaultProxy
    store: FaultProxy
    log: _Capture
    pending: set[asyncio.Task[Any]] = dataclasses.field(default_factory=set)

    @property
    def anonymous(self) -> Api:
        return Api(cast(AsyncTestClient[Litestar], self.client))

    async def sign_in(self, username: str, password: str = PASSWORD) -> Api:
        api = self.anonymous
        await api.sign_in(username, password)
        return api

    async def timed(self, call: Awaitable[T], bound: float = BOUND) -> tuple[T, float]:
        """The answer and how long it took; fails the test (without waiting for it) when no
        answer comes within `bound`. The request is left running and cancelled at teardown,
        once the proxies are cut, so that a hang costs `bound`, not the hang."""
        task = asyncio.ensure_future(call)
        started = time.monotonic()
        done, _ = await asyncio.wait({task}, timeout=bound)
        if not done:
            self.pending.add(task)
            pytest.fail(f"no answer within {bound} s: the request hangs")
        return task.result(), time.monotonic() - started

    async def unavailable(self, call: Awaitable[httpx.Response], what: str) -> float:
        """Assert a prompt 503 problem with Retry-After; return how long it took."""
        response, elapsed = await self.timed(call)
        assert response.status_code == 503, f"{what}: {response.status_code} {response.text}"
        body = problem(response, 503)
        assert body["type"] == "/problems/unavailable", body
        assert int(response.headers["retry-after"]) > 0, response.headers
        return elapsed

    async def ready(self) -> tuple[int, dict[str, str]]:
        """Readiness, asserted to answer within its deadline."""
        response, elapsed = await self.timed(self.client.get("/health/ready"), READY_BOUND)
        assert elapsed < READY_BOUND, f"/health/ready took {elapsed:.1f} s"
        body = response.json()
        if response.status_code == 503:
            assert response.headers["retry-after"]
            assert body["type"] == "/problems/unavailable"
        checks: dict[str, str] = body["checks"]
        return response.status_code, checks

    async def ready_again(self) -> None:
        """Readiness turns 200 within `RECOVERY` of the back-ends' return."""
        deadline = time.monotonic() + RECOVERY
        while True:
            status, checks = await self.ready()
            if status == 200:
                assert checks == {"database": "ok", "object_store": "ok"}
                return
            assert time.monotonic() < deadline, f"still not ready after recovery: {checks}"
            await asyncio.sleep(0.2)

    async def wait_stalled(self, proxy: FaultProxy, count: int) -> None:
        """Until the proxy sits on `count` requests (they reached the black hole)."""
        deadline = time.monotonic() + BOUND
        while proxy.stalled < count:
            assert time.monotonic() < deadline, f"only {proxy.stalled} requests reached the proxy"
            await asyncio.sleep(0.05)

    def assert_log_clean(self) -> None:
        """Faults are logged as one-line warnings: no error, no trace."""
        for record in self.log.records:
            message = record.getMessage()
            assert record.exc_info is None, f"a trace was logged: {message}"
            assert record.levelno < logging.ERROR, f"logged as an error: {message}"
            assert "\n" not in message, f"a multi-line log entry: {message}"

    async def verify_everything(self, admin: Api) -> None:
        """The audit chain holds and every stored original matches its SHA-256."""
        chain = await admin.get("/api/v1/audit/verify")
        assert chain.status_code == 200, chain.text
        assert chain.json()["ok"] is True, chain.json()
        report = await verify_evidence(self.app.state.database, self.app.state.object_store)
        assert report.ok, (report.missing, report.changed)

    async def settle(self) -> None:
        """Cancel what the test left running and wait (bounded) for it to end."""
        for task in self.pending:
            task.cancel()
        if self.pending:
            await asyncio.wait(self.pending, timeout=30)


@pytest.fixture
async def service(backend: Backend, tmp_path: Path) -> AsyncIterator[Service]:
    """The app on the test's PostgreSQL database and MinIO bucket, both reached through a
    fault proxy."""
    assert backend.s3 is not None
    database = make_url(backend.database_url)
    assert database.host is not None and database.port is not None
    store_host, _, store_port = backend.s3.endpoint.rpartition(":")
    with (
        PostgresFaultProxy((database.host, database.port)) as db,
        FaultProxy((store_host, int(store_port))) as store,
    ):
        settings = backend.settings(
            tmp_path,
            database_url=database.set(host=db.host, port=db.port).render_as_string(
                hide_password=False
            ),
            s3=dataclasses.replace(backend.s3, endpoint=store.address),
            timeouts=FAST,
        )
        app = await make_app(settings)
        capture = _Capture()
        logger = logging.getLogger("inspection")
        async with app.lifespan():
            logger.addHandler(capture)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
                running = Service(app, http, db, store, capture)
                try:
                    yield running
                finally:
                    # Whatever a failed test left behind ends now instead of hanging: every
                    # connection through the proxies is dropped.
                    db.cut()
                    store.cut()
                    await running.settle()
                    logger.removeHandler(capture)


@dataclasses.dataclass
class Scene:
    """An admin, the inspector of a checked-in visit, and one draft finding of theirs."""

    admin: Api
    inspector: Api
    visit: dict[str, Any]
    finding_id: str


async def scene(service: Service) -> Scene:
    admin = await service.sign_in("admin", ADMIN_PASSWORD)
    world = await build_world(admin)
    visit = await on_site(admin, world)
    inspector = await service.sign_in("inspector")
    finding_id = str(uuid.uuid4())
    created = await inspector.put(f"/api/v1/findings/{finding_id}", json=finding_body(visit))
    assert created.status_code == 201, created.text
    return Scene(admin, inspector, visit, finding_id)


def photo(seed: int) -> bytes:
    """A small JPEG, different for each seed."""
    image = images.upright(320, 200)
    image.putpixel((0, 0), (seed % 256, 7, 9))
    return images.jpeg(image)


def upload(api: Api, finding_id: str, evidence_id: str, data: bytes) -> Awaitable[httpx.Response]:
    return api.put(
        f"/api/v1/findings/{finding_id}/evidence/{evidence_id}",
        files={"file": ("photo.jpg", data, "image/jpeg")},
    )


def sign_in(service: Service, username: str = "inspector") -> Awaitable[httpx.Response]:
    return service.client.post(
        "/api/v1/auth/token", json={"username": username, "password": PASSWORD}
    )


async def assert_evidence(api: Api, stored: dict[str, bytes]) -> None:
    """Each acknowledged upload is there, byte for byte (through the store's signed URL)."""
    for evidence_id, data in stored.items():
        meta = await api.get(f"/api/v1/evidence/{evidence_id}")
        assert meta.status_code == 200, meta.text
        content = await api.get(f"/api/v1/evidence/{evidence_id}/content")
        if content.status_code == 307:
            async with httpx.AsyncClient(timeout=10) as direct:
                content = await direct.get(content.headers["location"])
        assert content.status_code == 200, content.text
        assert content.content == data, evidence_id


async def assert_findings(api: Api, acknowledged: dict[str, dict[str, Any]]) -> None:
    """Each acknowledged finding is there as it was acknowledged."""
    for finding_id, body in acknowledged.items():
        response = await api.get(f"/api/v1/findings/{finding_id}")
        assert response.status_code == 200, response.text
        assert response.json()["title"] == body["title"]


# --- the object store ----------------------------------------------------------------------------


@POSTGRES
async def test_store_blackholed_during_an_upload(service: Service) -> None:
    """MinIO frozen: the upload answers 503 within seconds, nothing half-stored is recorded;
    after recovery the same upload (same id) is stored and everything verifies."""
    s = await scene(service)
    stored = {str(uuid.uuid4()): photo(1)}
    for evidence_id, data in stored.items():
        assert (await upload(s.inspector, s.finding_id, evidence_id, data)).status_code == 201

    service.store.blackhole()
    late_id, late = str(uuid.uuid4()), photo(2)
    await service.unavailable(upload(s.inspector, s.finding_id, late_id, late), "upload")
    # The database still serves what does not need the store.
    listed = await s.inspector.get(f"/api/v1/findings/{s.finding_id}/evidence")
    assert listed.status_code == 200
    assert [e["id"] for e in listed.json()] == list(stored)
    status, checks = await service.ready()
    assert (status, checks) == (503, {"database": "ok", "object_store": "unavailable"})

    service.store.recover()
    await service.ready_again()
    retried = await upload(s.inspector, s.finding_id, late_id, late)
    assert retried.status_code == 201, retried.text
    stored[late_id] = late
    await assert_evidence(s.inspector, stored)
    await service.verify_everything(s.admin)
    service.assert_log_clean()


@POSTGRES
async def test_readiness_answers_within_its_deadline_while_the_store_is_blackholed(
    service: Service,
) -> None:
    """The probe's thread is stuck in a read MinIO never answers: readiness still answers 503
    within its deadline, probe after probe, and 200 once MinIO is back."""
    status, _ = await service.ready()
    assert status == 200
    service.store.blackhole()
    for _ in range(3):
        status, checks = await service.ready()
        assert (status, checks) == (503, {"database": "ok", "object_store": "unavailable"})
    assert (await service.client.get("/health/live")).status_code == 200
    service.store.recover()
    await service.ready_again()
    service.assert_log_clean()


@POSTGRES
async def test_store_cut(service: Service) -> None:
    """MinIO stopped (connections refused): uploads answer 503 at once, readiness says which
    back-end is down; after restart the upload is stored and everything verifies."""
    s = await scene(service)
    stored = {str(uuid.uuid4()): photo(3)}
    for evidence_id, data in stored.items():
        assert (await upload(s.inspector, s.finding_id, evidence_id, data)).status_code == 201

    service.store.cut()
    late_id, late = str(uuid.uuid4()), photo(4)
    for _ in range(2):
        await service.unavailable(upload(s.inspector, s.finding_id, late_id, late), "upload")
    status, checks = await service.ready()
    assert (status, checks) == (503, {"database": "ok", "object_store": "unavailable"})

    service.store.recover()
    await service.ready_again()
    retried = await upload(s.inspector, s.finding_id, late_id, late)
    assert retried.status_code == 201, retried.text
    stored[late_id] = late
    await assert_evidence(s.inspector, stored)
    await service.verify_everything(s.admin)
    service.assert_log_clean()


@contextmanager
def default_threads(tokens: int) -> Iterator[None]:
    """A smaller default thread pool (anyio's default limiter: image checks, and password
    hashing when it runs there), so that a few hanging uploads would be enough to take it over
    if store calls ran on it."""
    limiter = anyio.to_thread.current_default_thread_limiter()
    before = limiter.total_tokens
    limiter.total_tokens = tokens
    try:
        yield
    finally:
        limiter.total_tokens = before


@POSTGRES
async def test_sign_in_answers_while_uploads_hang_on_a_blackholed_store(
    service: Service,
) -> None:
    """Uploads stuck on a frozen MinIO hold the store's own threads only: anyio's default pool
    stays free, a sign-in still answers at once, and the uploads then answer 503."""
    s = await scene(service)
    service.store.blackhole()
    with default_threads(4):
        uploads = [
            asyncio.ensure_future(
                service.timed(upload(s.inspector, s.finding_id, str(uuid.uuid4()), photo(n)))
            )
            for n in range(10, 16)
        ]
        await service.wait_stalled(service.store, FAST.store_threads)
        started = time.monotonic()
        free, _ = await service.timed(anyio.to_thread.run_sync(lambda: "free"), bound=BOUND)
        waited = time.monotonic() - started
        assert free == "free"
        assert waited < 1.0, f"the default thread pool was taken for {waited:.1f} s"
        response, elapsed = await service.timed(sign_in(service), bound=BOUND)
        assert response.status_code == 200, response.text
        assert elapsed < 2.0, f"a sign-in waited {elapsed:.1f} s behind hanging uploads"
        assert (await service.client.get("/health/live")).status_code == 200
        for answered in await asyncio.gather(*uploads):
            stuck, took = answered
            assert stuck.status_code == 503, stuck.text
            assert int(stuck.headers["retry-after"]) > 0
            assert took < BOUND
    service.store.recover()
    await service.ready_again()
    await service.verify_everything(s.admin)
    service.assert_log_clean()


# --- the database --------------------------------------------------------------------------------


async def database_down(service: Service, s: Scene) -> tuple[str, dict[str, Any]]:
    """While the database is down: a finding PUT, a sign-in and readiness all answer 503
    promptly. Returns the finding that could not be stored (id and body), to replay later."""
    finding_id = str(uuid.uuid4())
    body = finding_body(s.visit, title=f"Ghi nhận lúc mất kết nối {finding_id[:8]}")
    await service.unavailable(
        s.inspector.put(f"/api/v1/findings/{finding_id}", json=body), "finding PUT"
    )
    await service.unavailable(sign_in(service), "sign-in")
    status, checks = await service.ready()
    assert status == 503
    assert checks["database"] == "unavailable"
    return finding_id, body


async def database_back(
    service: Service,
    s: Scene,
    acknowledged: dict[str, dict[str, Any]],
    refused: list[tuple[str, dict[str, Any]]],
) -> None:
    """After recovery: ready again; the refused PUTs succeed when replayed (201, or 200 when a
    commit did land before its connection broke); sign-in works; nothing acknowledged is lost."""
    await service.ready_again()
    for finding_id, body in refused:
        replay = await s.inspector.put(f"/api/v1/findings/{finding_id}", json=body)
        assert replay.status_code in {200, 201}, replay.text
        acknowledged[finding_id] = body
    assert (await sign_in(service)).status_code == 200
    await assert_findings(s.inspector, acknowledged)
    await service.verify_everything(s.admin)
    service.assert_log_clean()


@POSTGRES
async def test_database_shut_down_then_cut(service: Service) -> None:
    """PostgreSQL shutting down (sessions end with 57P01 admin_shutdown, new ones are refused
    with 57P03 cannot_connect_now), then gone (connections refused), then back."""
    s = await scene(service)
    acknowledged = {s.finding_id: finding_body(s.visit)}
    # A statement in flight when the shutdown comes: it is stuck in the proxy, then the server
    # ends its session.
    service.db.blackhole()
    in_flight = asyncio.ensure_future(
        service.timed(s.inspector.get(f"/api/v1/findings/{s.finding_id}"))
    )
    await service.wait_stalled(service.db, 1)
    service.db.shut_down()
    response, _ = await in_flight
    body = problem(response, 503)
    assert body["type"] == "/problems/unavailable"
    assert int(response.headers["retry-after"]) > 0

    refused = [await database_down(service, s)]
    service.db.cut()
    refused.append(await database_down(service, s))
    service.db.recover()
    await database_back(service, s, acknowledged, refused)


@POSTGRES
async def test_database_blackholed(service: Service) -> None:
    """PostgreSQL frozen: statements, pre-pings and new connections time out; every request
    answers 503 within seconds, also when more requests wait than the pool has connections."""
    s = await scene(service)
    acknowledged = {s.finding_id: finding_body(s.visit)}
    service.db.blackhole()
    refused = [await database_down(service, s)]
    # More concurrent requests than the pool holds (5 + 5): the rest wait for the pool timeout.
    crowd = [
        asyncio.ensure_future(service.unavailable(s.inspector.get("/api/v1/me"), "GET /me"))
        for _ in range(12)
    ]
    await asyncio.gather(*crowd)
    service.db.recover()
    await database_back(service, s, acknowledged, refused)


@POSTGRES
async def test_database_blackholed_at_commit(service: Service) -> None:
    """The COMMIT of a finding PUT never comes back: a 503 within seconds, never a 201 for a
    change that may be lost. Whether that COMMIT landed, the service cannot know (the proxy
    delivers it on recovery, as a thawed server would); the tablet's replay of the same PUT
    settles it: 201 if it did not land, 200 (a replay) if it did."""
    s = await scene(service)
    engine = service.app.state.database.engine.sync_engine
    frozen: list[bool] = []

    def freeze_before_commit(connection: Connection) -> None:
        if not frozen and connection.get_execution_options().get(WRITE_OPTION):
            frozen.append(True)
            service.db.blackhole()

    finding_id = str(uuid.uuid4())
    body = finding_body(s.visit, title="Ghi nhận lúc COMMIT không có hồi âm")
    event.listen(engine, "commit", freeze_before_commit)
    try:
        await service.unavailable(
            s.inspector.put(f"/api/v1/findings/{finding_id}", json=body), "finding PUT"
        )
    finally:
        event.remove(engine, "commit", freeze_before_commit)
    assert frozen, "the PUT reached its COMMIT"
    service.db.recover()
    await database_back(service, s, {s.finding_id: finding_body(s.visit)}, [(finding_id, body)])


# --- classification: every connection failure is one 503 (no services needed) -------------------


def _asyncpg(cls: type[asyncpg.PostgresError], message: str) -> asyncpg.PostgresError:
    """A server error as asyncpg raises it (its class carries the SQLSTATE)."""
    return cls(message)


def _sqlite(error: sqlite3.Error, code: int) -> sqlite3.Error:
    """A sqlite3 error as the driver raises it, with SQLite's result code (14: SQLITE_CANTOPEN,
    raw from a connect, which SQLAlchemy does not wrap)."""
    error.sqlite_errorcode = code
    return error


def _wrapped(orig: Exception, cls: type[sqlalchemy.exc.DBAPIError]) -> Exception:
    """As SQLAlchemy raises a driver error (the driver's exception as `orig`)."""
    return cls("SELECT secret FROM users", {}, orig)


CONNECTION_FAILURES: list[BaseException] = [
    _asyncpg(asyncpg.CannotConnectNowError, "the database system is starting up"),
    _asyncpg(asyncpg.AdminShutdownError, "terminating connection due to administrator command"),
    _asyncpg(asyncpg.CrashShutdownError, "terminating connection because of crash"),
    asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle"),
    _asyncpg(asyncpg.TooManyConnectionsError, "sorry, too many clients already"),
    ConnectionRefusedError(errno.ECONNREFUSED, "Connect call failed"),
    ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"),
    OSError(errno.EHOSTUNREACH, "No route to host"),
    TimeoutError(),
    _wrapped(Exception("connection refused"), sqlalchemy.exc.OperationalError),
    _wrapped(
        _asyncpg(asyncpg.CannotConnectNowError, "the database system is shutting down"),
        sqlalchemy.exc.DBAPIError,
    ),
    _wrapped(
        asyncpg.exceptions.ConnectionDoesNotExistError("connection is closed"),
        sqlalchemy.exc.InterfaceError,
    ),
    sqlalchemy.exc.DBAPIError("SELECT 1", {}, Exception("gone"), connection_invalidated=True),
    sqlalchemy.exc.TimeoutError("QueuePool limit of size 5 overflow 5 reached"),
    _wrapped(sqlite3.OperationalError("database is locked"), sqlalchemy.exc.OperationalError),
    _sqlite(sqlite3.OperationalError("unable to open database file"), code=14),
    _asyncpg(asyncpg.QueryCanceledError, "canceling statement due to statement timeout"),
    asyncpg.InterfaceError("cannot perform operation: connection is closed"),
    socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
    StorageUnavailable("object store unreachable: MaxRetryError"),
]


def _id(error: BaseException) -> str:
    lines = str(error).splitlines()
    return f"{type(error).__name__}:{lines[0][:40] if lines else ''}"


def _raising(error: BaseException) -> Litestar:
    @get("/fault", sync_to_thread=False)
    def fault() -> None:
        raise error

    return Litestar(route_handlers=[fault], exception_handlers=exception_handlers, debug=False)


@pytest.mark.parametrize("error", CONNECTION_FAILURES, ids=_id)
async def test_every_connection_failure_is_one_503(error: BaseException) -> None:
    capture = _Capture()
    logger = logging.getLogger("inspection")
    logger.addHandler(capture)
    try:
        async with AsyncTestClient(_raising(error)) as client:
            response = await client.get("/fault")
    finally:
        logger.removeHandler(capture)
    body = problem(response, 503)
    assert body["type"] == "/problems/unavailable"
    assert int(response.headers["retry-after"]) > 0
    for secret in ("secret", "SELECT", "Traceback", "asyncpg", "sqlalchemy"):
        assert secret.lower() not in response.text.lower(), response.text
    assert capture.records, "the failure is logged"
    for record in capture.records:
        assert record.levelno == logging.WARNING
        assert record.exc_info is None
        assert "\n" not in record.getMessage()


@pytest.mark.parametrize(
    "error",
    [
        FileNotFoundError(errno.ENOENT, "No such file or directory"),
        _wrapped(Exception("syntax error"), sqlalchemy.exc.ProgrammingError),
        _wrapped(
            sqlite3.InterfaceError("Error binding parameter 1"), sqlalchemy.exc.InterfaceError
        ),
        RuntimeError("a bug"),
    ],
    ids=_id,
)
async def test_a_bug_is_still_a_500(error: BaseException) -> None:
    async with AsyncTestClient(_raising(error)) as client:
        response = await client.get("/fault")
    assert problem(response, 500)["type"] == "/problems/internal-error"
