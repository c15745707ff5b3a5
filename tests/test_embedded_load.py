"""The embedded default under a field team's load: 20 tablets at once, no 5xx, nothing lost.

Twenty clients, really in parallel (`parallel_client`), each sign in (two writing transactions:
the attempt is counted, then the session is recorded) and PUT several new findings on one
checked-in visit. Every answer must be 2xx, and every acknowledged finding must be there
afterwards, exactly once.

Why SQLite's `busy_timeout` is cut to 200 ms here: at this size the whole run takes a few seconds,
well inside the service's 10 s, so an unfair wait would be slow but not fail. SQLite's busy
handler is not a queue but sleep-and-retry (1, 2, 5, ... then 100 ms between tries): a writer that
has waited long sleeps longest while newcomers retry after 1 ms, so it keeps losing. With 200 ms,
a writer that loses the race a handful of times answers 503 "database is locked", which is what
20 tablets saw with 10 s over a morning (bench/load.py). With the service's own write queue only
one connection ever asks SQLite for the lock, so the busy handler never has to decide and the
timeout does not matter. The cut is made by a second `connect` listener on every engine the app
creates, so the same test runs against code without the queue (where it fails).

The other tests: a sign-in storm runs at most max(2, cores) Argon2 computations at once (each
holds 64 MiB in service), a sign-in that waits too long for one answers 503 with Retry-After,
and the write queue itself (SQLite's busy handler off altogether) hands its turn on after
commits, failures and cancellations.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from inspection.db import engine as engine_module
from inspection.settings import Settings
from inspection.units import passwords
from tests.conftest import ADMIN_PASSWORD, Backend
from tests.helpers import (
    PASSWORD,
    POSITION,
    Api,
    build_world,
    create_checklist,
    finding_body,
    plan_body,
)

TABLETS = 20
PUTS = 5
BUSY_TIMEOUT_MS = 200


@pytest.fixture
def settings(backend: Backend, tmp_path: Path) -> Settings:
    """The service's default pool (10 + 10 overflow), as 20 tablets would meet it. The lockout
    is out of the way: parallel sign-ins of one user all count as attempts until one succeeds."""
    return backend.settings(tmp_path, database_pool_size=10, login_max_failures=100)


@pytest.fixture
def short_busy_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite's busy_timeout cut to BUSY_TIMEOUT_MS on every engine the app creates."""
    create_engine = engine_module.create_engine

    def with_short_timeout(url: str, **kw: Any) -> AsyncEngine:
        engine = create_engine(url, **kw)
        if url.startswith("sqlite"):

            def pragma(dbapi_connection: Any, _record: Any) -> None:
                cursor = dbapi_connection.cursor()
                cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
                cursor.close()

            event.listen(engine.sync_engine, "connect", pragma)
        return engine

    monkeypatch.setattr(engine_module, "create_engine", with_short_timeout)


async def _team_on_site(client: httpx.AsyncClient, tablets: int) -> tuple[list[str], str]:
    """The test organisation, `tablets` inspectors on one plan's team (the first leads), and
    the C1 visit checked in; returns their usernames and the visit id."""
    admin = Api(client)  # type: ignore[arg-type]  # it only needs httpx's interface
    await admin.sign_in("admin", ADMIN_PASSWORD)
    world = await build_world(admin)
    names = [f"tablet{n:02d}" for n in range(tablets)]
    for name in names:
        world.users[name] = await admin.create_user(
            name, [("inspector", world.snv["id"])], world.snv["id"]
        )
    checklist = await create_checklist(admin)
    team = [(name, "lead" if n == 0 else "member") for n, name in enumerate(names)]
    body = plan_body(world, checklist["id"], team=team)
    planner = await admin.as_user("planner")
    created = await planner.post("/api/v1/plans", json=body)
    assert created.status_code == 201, created.text
    approved = await planner.post(
        f"/api/v1/plans/{created.json()['id']}/approve",
        headers={"If-Match": created.headers["ETag"]},
    )
    assert approved.status_code == 200, approved.text
    visit = next(v for v in approved.json()["visits"] if v["unit_id"] == world.c1["id"])
    lead = await admin.as_user(names[0])
    url = f"/api/v1/visits/{visit['id']}"
    current = await lead.get(url)
    checked = await lead.post(
        f"{url}/check-in",
        json={"position": POSITION, "at": "2026-03-10T09:00:00+07:00"},
        headers={"If-Match": current.headers["ETag"]},
    )
    assert checked.status_code == 200, checked.text
    return names, visit["id"]


async def test_twenty_tablets_sign_in_and_write_without_5xx_or_loss(
    short_busy_timeout: None, parallel_client: httpx.AsyncClient
) -> None:
    names, visit_id = await _team_on_site(parallel_client, TABLETS)
    visit = {"id": visit_id}
    answers: list[tuple[str, int, str]] = []
    acknowledged: list[str] = []

    async def tablet(name: str) -> None:
        signed = await parallel_client.post(
            "/api/v1/auth/token", json={"username": name, "password": PASSWORD}
        )
        answers.append(("sign-in", signed.status_code, signed.text[:200]))
        if signed.status_code != 200:
            return
        headers = {"Authorization": f"Bearer {signed.json()['access_token']}"}
        for n in range(PUTS):
            finding_id = str(uuid.uuid4())
            body = finding_body(visit, title=f"{name}: phát hiện {n}")
            put = await parallel_client.put(
                f"/api/v1/findings/{finding_id}", json=body, headers=headers
            )
            answers.append(("PUT", put.status_code, put.text[:200]))
            if put.status_code == 201:
                acknowledged.append(finding_id)

    async with anyio.create_task_group() as group:
        for name in names:
            group.start_soon(tablet, name)

    failures = [a for a in answers if a[1] >= 500]
    assert failures == [], f"{len(failures)} of {len(answers)} answers were 5xx: {failures[:3]}"
    assert [a for a in answers if a[1] not in (200, 201)] == []
    assert len(acknowledged) == TABLETS * PUTS

    lead = Api(parallel_client)  # type: ignore[arg-type]
    await lead.sign_in(names[0])
    stored = (await lead.get("/api/v1/findings", params={"visit": visit_id, "limit": 500})).json()[
        "items"
    ]
    assert sorted(f["id"] for f in stored) == sorted(acknowledged)  # none lost, none twice
    for finding_id in acknowledged[:: TABLETS // 2]:
        assert (await lead.get(f"/api/v1/findings/{finding_id}")).status_code == 200


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


class _CountingHasher:
    """Wraps the process's Argon2 hasher: counts how many computations run at once."""

    def __init__(self, inner: Any, seconds: float) -> None:
        self.inner, self.seconds = inner, seconds
        self.running = self.peak = 0
        self._guard = threading.Lock()

    def _timed(self, work: Any, *args: Any) -> Any:
        with self._guard:
            self.running += 1
            self.peak = max(self.peak, self.running)
        try:
            time.sleep(self.seconds)  # what a 64 MiB hash costs, without the memory
            return work(*args)
        finally:
            with self._guard:
                self.running -= 1

    def hash(self, password: str) -> str:
        return str(self._timed(self.inner.hash, password))

    def verify(self, password_hash: str, password: str) -> bool:
        return bool(self._timed(self.inner.verify, password_hash, password))

    def check_needs_rehash(self, password_hash: str) -> bool:
        return bool(self.inner.check_needs_rehash(password_hash))

    @property
    def memory_cost(self) -> int:
        return int(self.inner.memory_cost)


async def _inspectors(client: httpx.AsyncClient, count: int) -> list[str]:
    """`count` inspectors of a department (distinct users: as many tablets)."""
    admin = Api(client)  # type: ignore[arg-type]
    await admin.sign_in("admin", ADMIN_PASSWORD)
    department = await admin.create_unit("SNV", "Sở Nội vụ", "department")
    names = [f"tablet{n:02d}" for n in range(count)]
    for name in names:
        await admin.create_user(name, [("inspector", department["id"])], department["id"])
    return names


async def _sign_in_all(client: httpx.AsyncClient, names: list[str]) -> list[httpx.Response]:
    answers: list[httpx.Response] = []

    async def one(name: str) -> None:
        answers.append(
            await client.post("/api/v1/auth/token", json={"username": name, "password": PASSWORD})
        )

    async with anyio.create_task_group() as group:
        for name in names:
            group.start_soon(one, name)
    return answers


def _count_hashes(monkeypatch: pytest.MonkeyPatch, seconds: float) -> _CountingHasher:
    hasher = _CountingHasher(passwords._hasher, seconds)
    monkeypatch.setattr(passwords, "_hasher", hasher)
    return hasher


async def test_a_sign_in_storm_hashes_a_bounded_number_at_once(
    parallel_client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Argon2 holds its whole memory cost (64 MiB by default) while it runs: 20 sign-ins at once
    must not mean 20 hashes at once, but at most one per core (at least 2)."""
    names = await _inspectors(parallel_client, TABLETS)
    hasher = _count_hashes(monkeypatch, seconds=0.05)
    answers = await _sign_in_all(parallel_client, names)
    assert [a.status_code for a in answers] == [200] * TABLETS
    assert 1 <= hasher.peak <= max(2, _cores())


async def test_sign_ins_that_wait_too_long_for_argon2_get_503_with_retry_after(
    parallel_client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Beyond a bounded wait for a hashing slot, a sign-in is told to come back (503 +
    Retry-After) instead of piling up; the others go through."""
    names = await _inspectors(parallel_client, max(2, _cores()) + 3)
    _count_hashes(monkeypatch, seconds=0.5)
    # (raising=False: the same test, run against code without the bound, fails on its answers.)
    monkeypatch.setattr(passwords, "HASH_WAIT_SECONDS", 0.1, raising=False)
    answers = await _sign_in_all(parallel_client, names)
    statuses = [(a.status_code, a.headers.get("retry-after")) for a in answers]
    assert {status for status, _ in statuses} == {200, 503}, statuses
    assert all((retry is not None) == (status == 503) for status, retry in statuses), statuses
    assert all(int(retry) > 0 for _, retry in statuses if retry is not None)


async def test_writers_take_turns_even_when_sqlite_would_not_wait(tmp_path: Path) -> None:
    """With SQLite's busy handler switched off (busy_timeout=0: any contention fails at once),
    30 concurrent writing transactions all succeed, one at a time; a cancelled waiter, a
    cancelled holder and a failed transaction each give their turn back."""
    from sqlalchemy import text

    from inspection.db.engine import create_database
    from inspection.db.session import transaction

    settings = Settings(
        data_dir=tmp_path,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'turns.db'}",
        objects_dir=tmp_path,
        s3=None,
        secret_key="s" * 40,
        admin_password=None,
        database_pool_size=5,
    )
    database = create_database(settings)

    def no_waiting(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.cursor().execute("PRAGMA busy_timeout=0")

    event.listen(database.engine.sync_engine, "connect", no_waiting)
    inside = peak = 0

    async def write(n: int, hold: float = 0.002, fail: bool = False) -> None:
        nonlocal inside, peak
        async with transaction(database) as session:
            await session.execute(text("INSERT INTO t VALUES (:n)"), {"n": n})
            inside += 1
            peak = max(peak, inside)
            try:
                await anyio.sleep(hold)
                if fail:
                    raise RuntimeError("the transaction fails after writing")
            finally:
                inside -= 1

    try:
        async with database.engine.begin() as connection:
            await connection.execute(text("CREATE TABLE t (n INTEGER)"))
        async with anyio.create_task_group() as group:
            for n in range(30):
                group.start_soon(write, n)
        assert peak == 1

        async with anyio.create_task_group() as group:
            for n in range(100, 106):
                group.start_soon(write, n, 0.05)
            await anyio.sleep(0.02)
            group.cancel_scope.cancel()  # one holds the turn, the others wait: all cancelled
        with pytest.raises(RuntimeError):
            await write(200, fail=True)

        with anyio.fail_after(5):  # the turn is free again: nothing waits forever
            async with anyio.create_task_group() as group:
                for n in range(300, 310):
                    group.start_soon(write, n)
        async with database.read_session() as session:
            rows = set((await session.scalars(text("SELECT n FROM t"))).all())
        assert set(range(30)) | set(range(300, 310)) <= rows
        assert 200 not in rows
    finally:
        await database.dispose()
