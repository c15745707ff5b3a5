"""Shared set-up of the benchmarks: a migrated database, the real app in-process, a signed-in
inspector with a checked-in visit, a finding body, timing and statement counting.

Argon2 runs with 8 MiB of memory here (as in the test suite) so that creating users and signing in
is quick; it only affects set-up, never the timed requests (they carry a bearer token).
"""

from __future__ import annotations

import os

os.environ.setdefault("INSPECTION_ARGON2_MEMORY_KIB", "8192")

import asyncio
import platform
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from litestar import Litestar
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from inspection.app import create_app
from inspection.db.engine import create_database
from inspection.db.migrate import upgrade
from inspection.settings import Settings
from inspection.units.bootstrap import ensure_admin
from inspection.units.passwords import configure_hashing

ADMIN_PASSWORD = "admin-password-1"
PASSWORD = "correct horse battery"
POSITION = {"lat": 21.59, "lon": 105.84, "accuracy_m": 12}
ARGON2_MEMORY_KIB = 8192


@dataclass
class Backend:
    """Where one benchmark run keeps its data."""

    name: str
    database_url: str
    data_dir: Path
    version: str = ""


def backends() -> list[str]:
    """SQLite always; PostgreSQL when INSPECTION_TEST_DATABASE_URL is set."""
    names = ["sqlite"]
    if os.environ.get("INSPECTION_TEST_DATABASE_URL"):
        names.append("postgres")
    return names


def _admin_url() -> str:
    url = os.environ["INSPECTION_TEST_DATABASE_URL"]
    if url.startswith("postgresql://"):
        url = url.replace("postgresql://", "postgresql+asyncpg://", 1)
    return url


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _admin_sql(sql: str) -> str:
    connection = await asyncpg.connect(_asyncpg_dsn(_admin_url()))
    try:
        await connection.execute(sql)
        return str(await connection.fetchval("SHOW server_version"))
    finally:
        await connection.close()


@asynccontextmanager
async def backend(name: str) -> AsyncIterator[Backend]:
    """A freshly migrated scratch database (SQLite file or PostgreSQL database), dropped after."""
    with tempfile.TemporaryDirectory(prefix="inspection-bench-") as tmp:
        data_dir = Path(tmp)
        if name == "sqlite":
            url = f"sqlite+aiosqlite:///{data_dir / 'bench.db'}"
            await asyncio.to_thread(upgrade, url)
            yield Backend(name, url, data_dir, f"SQLite {sqlite3.sqlite_version}")
            return
        db = f"inspection_bench_{uuid.uuid4().hex[:10]}"
        version = await _admin_sql(f'CREATE DATABASE "{db}"')
        url = make_url(_admin_url()).set(database=db).render_as_string(hide_password=False)
        try:
            await asyncio.to_thread(upgrade, url)
            yield Backend(name, url, data_dir, f"PostgreSQL {version}")
        finally:
            await _admin_sql(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


def settings_for(where: Backend) -> Settings:
    """Settings as the tests use them, objects in a folder (findings never touch the store)."""
    return Settings(
        data_dir=where.data_dir,
        database_url=where.database_url,
        objects_dir=where.data_dir / "objects",
        s3=None,
        secret_key="bench-secret-key-" + "x" * 32,
        admin_password=ADMIN_PASSWORD,
        database_pool_size=5,
        argon2_memory_kib=ARGON2_MEMORY_KIB,
        log_level="WARNING",
    )


async def make_app(settings: Settings) -> Litestar:
    """The application with its first admin, as `inspection serve` would start it."""
    configure_hashing(settings.argon2_memory_kib)
    database = create_database(settings)
    try:
        await ensure_admin(database, ADMIN_PASSWORD)
    finally:
        await database.dispose()
    return create_app(settings)


class Api:
    """One signed-in user over an httpx client."""

    def __init__(self, client: httpx.AsyncClient, token: str | None = None) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    @classmethod
    async def sign_in(cls, client: httpx.AsyncClient, username: str, password: str) -> Api:
        response = await client.post(
            "/api/v1/auth/token", json={"username": username, "password": password}
        )
        _ok(response, 200)
        return cls(client, response.json()["access_token"])

    async def call(self, method: str, url: str, **kw: Any) -> httpx.Response:
        headers = {**self.headers, **kw.pop("headers", {})}
        return await self.client.request(method, url, headers=headers, **kw)


def _ok(response: httpx.Response, status: int) -> dict[str, Any]:
    if response.status_code != status:
        raise RuntimeError(f"{response.request.method} {response.request.url}: {response.text}")
    result: dict[str, Any] = response.json()
    return result


async def _post(api: Api, url: str, body: dict[str, Any], status: int = 201) -> dict[str, Any]:
    return _ok(await api.call("POST", url, json=body), status)


async def on_site(client: httpx.AsyncClient) -> tuple[Api, dict[str, Any]]:
    """A province with one commune, a planner and two inspectors, an approved plan whose commune
    visit is checked in (as tests/test_findings.py `_on_site`); returns the member inspector
    (who records findings) and the visit."""
    admin = await Api.sign_in(client, "admin", ADMIN_PASSWORD)
    province = await _post(
        admin, "/api/v1/units", {"code": "P", "name": "Tỉnh Thái Nguyên", "kind": "province"}
    )
    snv = await _post(
        admin,
        "/api/v1/units",
        {"code": "P-SNV", "name": "Sở Nội vụ", "kind": "department", "parent_id": province["id"]},
    )
    d1 = await _post(
        admin,
        "/api/v1/units",
        {"code": "P-D1", "name": "Huyện Võ Nhai", "kind": "district", "parent_id": province["id"]},
    )
    c1 = await _post(
        admin,
        "/api/v1/units",
        {"code": "P-D1-C1", "name": "Xã La Hiên", "kind": "commune", "parent_id": d1["id"]},
    )
    users = {}
    for username, role, unit in (
        ("planner", "planner", province),
        ("inspector", "inspector", snv),
        ("inspector2", "inspector", snv),
    ):
        users[username] = await _post(
            admin,
            "/api/v1/users",
            {
                "username": username,
                "full_name": username.title(),
                "password": PASSWORD,
                "unit_id": snv["id"],
                "grants": [{"role": role, "unit_id": unit["id"]}],
            },
        )
    planner = await Api.sign_in(client, "planner", PASSWORD)
    criteria = [
        {"code": c, "text": f"Tiêu chí {c}", "category": "dossier_handling", "weight": float(n)}
        for n, c in enumerate(("C01", "C02", "C03"), start=1)
    ]
    checklist = await _post(admin, "/api/v1/checklists", {"title": "Một cửa", "criteria": criteria})
    plan_body = {
        "kind": "unannounced",
        "title": "Kiểm tra công vụ đột xuất quý I/2026",
        "legal_basis": "Quyết định số 123/QĐ-SNV",
        "focus": ["dossier_handling", "discipline"],
        "period_start": "2026-03-01",
        "period_end": "2026-03-31",
        "checklist_id": checklist["id"],
        "unit_id": province["id"],
        "team": [
            {"user_id": users["inspector"]["id"], "role": "lead"},
            {"user_id": users["inspector2"]["id"], "role": "member"},
        ],
        "targets": [
            {"unit_id": c1["id"], "window_start": "2026-03-10", "window_end": "2026-03-12"}
        ],
    }
    created = await planner.call("POST", "/api/v1/plans", json=plan_body)
    plan = _ok(created, 201)
    approved = await planner.call(
        "POST",
        f"/api/v1/plans/{plan['id']}/approve",
        headers={"If-Match": created.headers["ETag"]},
    )
    visit = next(v for v in _ok(approved, 200)["visits"] if v["unit_id"] == c1["id"])
    lead = await Api.sign_in(client, "inspector", PASSWORD)
    url = f"/api/v1/visits/{visit['id']}"
    current = await lead.call("GET", url)
    checked = await lead.call(
        "POST",
        f"{url}/check-in",
        json={"position": POSITION, "at": "2026-03-10T09:00:00+07:00"},
        headers={"If-Match": current.headers["ETag"]},
    )
    visit = _ok(checked, 200)
    return await Api.sign_in(client, "inspector2", PASSWORD), visit


def finding_body(visit: dict[str, Any], n: int = 0) -> dict[str, Any]:
    """A valid finding (as tests/test_findings.py `_body`)."""
    return {
        "visit_id": visit["id"],
        "criterion_code": "C02",
        "category": "extra_documents_requested",
        "severity": "major",
        "title": f"Yêu cầu nộp thêm bản sao hộ khẩu {n}",
        "description": "Công chức một cửa yêu cầu thêm giấy tờ không có trong thành phần hồ sơ.",
        "observed_at": "2026-03-10T09:41:00+07:00",
        "position": POSITION,
        "officials": [{"name": "Nguyễn Văn A", "position": "Công chức tư pháp - hộ tịch"}],
        "recommendation": "Chấm dứt ngay việc yêu cầu giấy tờ ngoài quy định.",
    }


@asynccontextmanager
async def running(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    """The app's lifespan and an in-process client (no sockets)."""
    async with app.lifespan():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            yield client


@dataclass
class StatementCounter:
    """Counts SQL statements and the time spent inside the driver's execute, on one engine."""

    engine: AsyncEngine
    statements: int = 0
    seconds: float = 0.0
    kinds: dict[str, int] = field(default_factory=dict)
    _started: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        sync = self.engine.sync_engine
        event.listen(sync, "before_cursor_execute", self._before)
        event.listen(sync, "after_cursor_execute", self._after)

    def _before(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        self._started.append(time.perf_counter())
        kind = statement.lstrip().split(None, 1)[0].upper()
        self.kinds[kind] = self.kinds.get(kind, 0) + 1

    def _after(self, *_args: Any) -> None:
        self.seconds += time.perf_counter() - self._started.pop()
        self.statements += 1

    def reset(self) -> None:
        self.statements, self.seconds, self.kinds = 0, 0.0, {}

    def close(self) -> None:
        sync = self.engine.sync_engine
        event.remove(sync, "before_cursor_execute", self._before)
        event.remove(sync, "after_cursor_execute", self._after)


async def timed(action: Callable[[], Any]) -> float:
    """Seconds one awaited call takes."""
    started = time.perf_counter()
    await action()
    return time.perf_counter() - started


def median(values: list[float]) -> float:
    return statistics.median(values)


def header(title: str) -> None:
    print(f"# {title}")
    print(
        f"python {platform.python_version()}, {os.cpu_count()} cpus, "
        f"argon2 {ARGON2_MEMORY_KIB} KiB (set-up only)"
    )
