"""Fixtures for both back-ends.

Every API test runs twice: on SQLite + a folder (always) and on PostgreSQL + MinIO (when
`INSPECTION_TEST_DATABASE_URL` and `INSPECTION_TEST_S3_ENDPOINT` are set; skipped with a reason
otherwise, and failing instead when `INSPECTION_TEST_REQUIRE_SERVICES=1`).

Each test gets its own database, migrated by the real migrations: a copy of a migrated SQLite
file, or a PostgreSQL database cloned from a migrated template. Each gets its own folder or bucket.
"""

from __future__ import annotations

import os

# Cheaper Argon2 for the suite (hundreds of users are created); set before the app is imported.
os.environ.setdefault("INSPECTION_ARGON2_MEMORY_KIB", "8192")

import asyncio
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.engine import make_url

from inspection.app import create_app
from inspection.db.migrate import upgrade
from inspection.settings import S3Settings, Settings, Timeouts
from inspection.storage import ObjectStore
from inspection.storage.filesystem import FilesystemObjectStore
from inspection.storage.s3 import S3ObjectStore

ADMIN_PASSWORD = "admin-password-1"
PASSWORD = "correct horse battery"
BACKENDS = ["sqlite", "postgres"]
# Database waits of the tests that are not about faults. CI shares a 2-core machine with whatever
# else runs on it, and a stall of a few seconds there (one slow connect, a statement held up
# behind a checkpoint) is not an outage: with the production values (3 s to connect, 5 s for a
# statement or a pooled connection) such a stall answered 503 and failed a test about something
# else. The fault tests pass their own small timeouts (tests/test_faults.py), and the tests of
# the production values read `Timeouts()` itself.
PATIENT = Timeouts(database_connect=30.0, database_statement=60.0, database_pool=60.0)


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@dataclass(frozen=True)
class Services:
    """Where the PostgreSQL and MinIO for the second variant live."""

    database_url: str
    s3: S3Settings


def _services() -> Services | None:
    url = os.environ.get("INSPECTION_TEST_DATABASE_URL")
    endpoint = os.environ.get("INSPECTION_TEST_S3_ENDPOINT")
    if not url or not endpoint:
        return None
    return Services(
        database_url=url.replace("postgresql://", "postgresql+asyncpg://", 1)
        if url.startswith("postgresql://")
        else url,
        s3=S3Settings(
            endpoint=endpoint.split("://", 1)[-1],
            access_key=os.environ.get("INSPECTION_TEST_S3_ACCESS_KEY", "minioadmin"),
            secret_key=os.environ.get("INSPECTION_TEST_S3_SECRET_KEY", "minioadmin"),
            bucket="unused",
            secure=endpoint.startswith("https://"),
            region=None,
        ),
    )


def require_services() -> Services:
    """The services, or skip (fail when they are required)."""
    services = _services()
    if services is None:
        reason = (
            "PostgreSQL + MinIO variant: set INSPECTION_TEST_DATABASE_URL and "
            "INSPECTION_TEST_S3_ENDPOINT (+ keys) to run it"
        )
        if os.environ.get("INSPECTION_TEST_REQUIRE_SERVICES") == "1":
            pytest.fail(f"services required but not configured: {reason}")
        pytest.skip(reason)
    return services


def _asyncpg_dsn(url: str, database: str | None = None) -> str:
    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite database, copied for each test."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    """A migrated PostgreSQL database used as the template of each test's database."""
    services = require_services()
    name = f"inspection_tmpl_{uuid.uuid4().hex[:8]}"
    asyncio.run(_admin_sql(services, f'CREATE DATABASE "{name}"'))
    upgrade(
        make_url(services.database_url).set(database=name).render_as_string(hide_password=False)
    )
    yield name
    asyncio.run(_admin_sql(services, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@dataclass
class Backend:
    """One test's database URL and object store settings."""

    name: str
    database_url: str
    objects_dir: Path
    s3: S3Settings | None
    cleanup: list[Any] = field(default_factory=list)

    def settings(self, tmp_path: Path, **overrides: Any) -> Settings:
        """Settings pointing at this backend."""
        values: dict[str, Any] = {
            "data_dir": tmp_path,
            "database_url": self.database_url,
            "objects_dir": self.objects_dir,
            "s3": self.s3,
            "secret_key": "test-secret-key-" + "x" * 32,
            "admin_password": ADMIN_PASSWORD,
            "login_max_failures": 3,
            "login_lockout_seconds": 60,
            "database_pool_size": 5,
            "argon2_memory_kib": 8192,
            "timeouts": PATIENT,
        }
        values.update(overrides)
        return Settings(**values)

    def object_store(self) -> ObjectStore:
        """A store on this backend's folder or bucket."""
        if self.s3 is not None:
            return S3ObjectStore(self.s3)
        return FilesystemObjectStore(self.objects_dir)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """A fresh database and object store on SQLite + folder or PostgreSQL + MinIO."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        db_file = tmp_path / "test.db"
        shutil.copyfile(template, db_file)
        yield Backend("sqlite", f"sqlite+aiosqlite:///{db_file}", tmp_path / "objects", None)
        return
    services = require_services()
    template_name: str = request.getfixturevalue("postgres_template")
    name = f"inspection_t_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin_sql(services, f'CREATE DATABASE "{name}" TEMPLATE "{template_name}"'))
    bucket = f"test-{uuid.uuid4().hex[:16]}"
    s3 = S3Settings(
        services.s3.endpoint,
        services.s3.access_key,
        services.s3.secret_key,
        bucket,
        services.s3.secure,
        None,
    )
    url = make_url(services.database_url).set(database=name).render_as_string(hide_password=False)
    yield Backend("postgres", url, tmp_path / "objects", s3)
    asyncio.run(_empty_bucket(s3))
    asyncio.run(_admin_sql(services, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _admin_sql(services: Services, sql: str) -> None:
    connection = await asyncpg.connect(_asyncpg_dsn(services.database_url))
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


async def _empty_bucket(s3: S3Settings) -> None:
    store = S3ObjectStore(s3)
    try:
        await store.remove_bucket()
    finally:
        await store.close()


@pytest.fixture
def settings(backend: Backend, tmp_path: Path) -> Settings:
    """Settings for the test's backend."""
    return backend.settings(tmp_path)


async def make_app(settings: Settings) -> Litestar:
    """The application with its first admin created, as `inspection serve` would."""
    from inspection.db.engine import create_database
    from inspection.units.bootstrap import ensure_admin
    from inspection.units.passwords import configure_hashing

    configure_hashing(settings.argon2_memory_kib)
    database = create_database(settings)
    try:
        await ensure_admin(database, ADMIN_PASSWORD)
    finally:
        await database.dispose()
    return create_app(settings)


@pytest.fixture
async def app(settings: Settings) -> Litestar:
    """The application on the test's backend."""
    return await make_app(settings)


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """An HTTP client against the running app (lifespan included)."""
    async with AsyncTestClient(app) as test_client:
        yield test_client


@pytest.fixture
async def parallel_client(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    """A client whose requests really run concurrently (Litestar's test client serialises them):
    for races. It runs the app's lifespan itself."""
    async with app.lifespan():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


@pytest.fixture
async def api(client: AsyncTestClient[Litestar]) -> Any:
    """A signed-in admin API helper."""
    from tests.helpers import Api

    helper = Api(client)
    await helper.sign_in("admin", ADMIN_PASSWORD)
    return helper
