"""Sign-in throttling: a guesser is locked out at their own address, a username is only slowed
down, and a correct password never counts (units/throttle.py).

The test settings allow 3 failures per address (so 6 per username) in a 60 s window."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from litestar import Litestar
from sqlalchemy import func, select, update

from inspection.audit.models import AuditEntry
from inspection.db.session import transaction
from inspection.units import auth as auth_module
from inspection.units import throttle
from inspection.units.bootstrap import reset_password
from inspection.units.models import LoginThrottle
from inspection.units.passwords import HashingBusy
from tests.conftest import ADMIN_PASSWORD
from tests.helpers import problem
from tests.served import serving

TOKEN = "/api/v1/auth/token"
FromAddress = Callable[[str], httpx.AsyncClient]


@pytest.fixture
async def from_address(app: Litestar) -> AsyncIterator[FromAddress]:
    """Clients of the running app, each seen by it as coming from the address it is made for;
    their requests run concurrently."""
    clients: list[httpx.AsyncClient] = []

    def make(address: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(address, 40000))
        client = httpx.AsyncClient(transport=transport, base_url="http://testserver")
        clients.append(client)
        return client

    async with app.lifespan():
        try:
            yield make
        finally:
            for client in clients:
                await client.aclose()


async def sign_in(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await client.post(TOKEN, json={"username": username, "password": password})


async def pass_time(app: Litestar) -> None:
    """Every delay and lock ends now, as if its time had passed (the counts stay)."""
    async with app.state.database.engine.begin() as connection:
        await connection.execute(
            update(LoginThrottle).values(blocked_until=datetime.now(UTC) - timedelta(seconds=1))
        )


async def counters(app: Litestar) -> dict[str, int]:
    """The failures of the live counters, by kind (`u` or `p`) and username (the pairs of one
    username summed)."""
    async with app.state.database.engine.connect() as connection:
        rows = await connection.execute(
            select(LoginThrottle.key, LoginThrottle.username, LoginThrottle.failures)
        )
        found: dict[str, int] = {}
        for key, username, failures in rows:
            found[f"{key[0]}:{username}"] = found.get(f"{key[0]}:{username}", 0) + failures
        return found


async def test_a_strangers_failures_lock_their_address_not_the_user(
    app: Litestar, from_address: FromAddress
) -> None:
    """Observed: six unauthenticated requests locked `admin` for 15 minutes, right password
    or not. Now they lock the stranger's address only."""
    stranger, tablet = from_address("203.0.113.66"), from_address("10.20.0.15")
    for _ in range(3):
        problem(await sign_in(stranger, "admin", "guess"), 401)
    locked = await sign_in(stranger, "admin", ADMIN_PASSWORD)
    assert "too many failed sign-ins" in problem(locked, 429)["detail"]
    assert 0 < int(locked.headers["Retry-After"]) <= 60
    # Refused without being checked or counted: the lock does not grow with more attempts.
    for _ in range(3):
        problem(await sign_in(stranger, "admin", "guess"), 429)
    assert await counters(app) == {"u:admin": 3, "p:admin": 3}
    # The admin's own tablet signs in at once.
    assert (await sign_in(tablet, "admin", ADMIN_PASSWORD)).status_code == 200
    # …and the stranger is still locked out.
    problem(await sign_in(stranger, "admin", ADMIN_PASSWORD), 429)


async def test_guesses_from_many_addresses_slow_the_username_down(
    app: Litestar, from_address: FromAddress
) -> None:
    tablet = from_address("10.20.0.15")
    for number in range(6):
        problem(await sign_in(from_address(f"198.51.100.{number}"), "admin", "guess"), 401)
    # Six failures of the username: its next attempt waits 1 s, from every address, unchecked.
    slowed = await sign_in(tablet, "admin", ADMIN_PASSWORD)
    assert problem(slowed, 429) and slowed.headers["Retry-After"] == "1"
    problem(await sign_in(from_address("198.51.100.77"), "admin", "guess"), 429)
    assert (await counters(app))["u:admin"] == 6
    # Each further failure doubles the wait.
    for number, wait in ((7, "2"), (8, "4"), (9, "8")):
        await pass_time(app)
        problem(await sign_in(from_address(f"198.51.100.{number}"), "admin", "guess"), 401)
        assert (await sign_in(tablet, "admin", ADMIN_PASSWORD)).headers["Retry-After"] == wait
    # Once the wait is over, the right password signs in and both its counters start afresh.
    await pass_time(app)
    assert (await sign_in(tablet, "admin", ADMIN_PASSWORD)).status_code == 200
    assert "u:admin" not in await counters(app)


def test_the_delay_doubles_up_to_its_cap() -> None:
    policy = throttle.ThrottlePolicy(
        free_failures=5, window=timedelta(minutes=15), max_delay=timedelta(seconds=60)
    )
    delays = [policy.username_delay(n).total_seconds() for n in range(8, 20)]
    assert delays == [0, 0, 1, 2, 4, 8, 16, 32, 60, 60, 60, 60]
    assert policy.username_delay(10**9) == timedelta(seconds=60)


async def test_parallel_correct_sign_ins_are_never_counted(
    app: Litestar, from_address: FromAddress
) -> None:
    """Observed: 20 parallel successful sign-ins of one inspector (two tablets, a retrying app)
    got a 429, because every attempt was counted before its password was checked."""
    tablets = [from_address("10.20.0.15"), from_address("10.20.0.16")]
    statuses: list[int] = []

    async def one(number: int) -> None:
        response = await sign_in(tablets[number % 2], "admin", ADMIN_PASSWORD)
        statuses.append(response.status_code)

    async with anyio.create_task_group() as group:
        for number in range(20):
            group.start_soon(one, number)
    assert statuses == [200] * 20
    assert await counters(app) == {}


async def test_parallel_guesses_cannot_outrun_the_lock(
    app: Litestar, from_address: FromAddress
) -> None:
    """30 wrong passwords at once from one address: 3 are checked, the rest refused unchecked."""
    guesser = from_address("203.0.113.66")
    statuses: list[int] = []

    async def guess(number: int) -> None:
        statuses.append((await sign_in(guesser, "admin", f"guess-{number}")).status_code)

    async with anyio.create_task_group() as group:
        for number in range(30):
            group.start_soon(guess, number)
    assert sorted(statuses) == [401] * 3 + [429] * 27
    problem(await sign_in(guesser, "admin", ADMIN_PASSWORD), 429)
    assert (await sign_in(from_address("10.20.0.15"), "admin", ADMIN_PASSWORD)).status_code == 200


async def test_unknown_usernames_are_throttled_alike(from_address: FromAddress) -> None:
    """A refusal reveals nothing about who exists."""
    guesser = from_address("203.0.113.66")
    for username in ("admin", "ghost"):
        for _ in range(3):
            problem(await sign_in(guesser, username, "guess"), 401)
        problem(await sign_in(guesser, username, "guess"), 429)


async def test_a_busy_hasher_counts_nothing(
    from_address: FromAddress, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sign-in that got 503 because every hashing slot was busy had its password unchecked:
    it must not use up an attempt."""

    async def busy(password_hash: str | None, password: str) -> bool:
        raise HashingBusy("busy", 5)

    tablet = from_address("10.20.0.15")
    monkeypatch.setattr(auth_module, "verify_password", busy)
    for _ in range(5):
        problem(await sign_in(tablet, "admin", "guess"), 503)
    monkeypatch.undo()
    for _ in range(3):
        problem(await sign_in(tablet, "admin", "guess"), 401)
    problem(await sign_in(tablet, "admin", ADMIN_PASSWORD), 429)


async def test_a_lock_is_audited_with_its_address(app: Litestar, from_address: FromAddress) -> None:
    for _ in range(3):
        problem(await sign_in(from_address("203.0.113.66"), "admin", "guess"), 401)
    async with app.state.database.engine.connect() as connection:
        rows = (
            await connection.execute(
                select(AuditEntry.entity_id, AuditEntry.action, AuditEntry.changes).where(
                    AuditEntry.entity == "login"
                )
            )
        ).all()
    assert len(rows) == 1
    entity_id, action, changes = rows[0]
    assert (entity_id, action) == ("admin", "lock")
    assert changes["address"] == {"after": "203.0.113.66"}
    assert datetime.fromisoformat(changes["locked_until"]["after"]) > datetime.now(UTC)


async def test_a_password_reset_lifts_every_counter_of_the_username(
    app: Litestar, from_address: FromAddress
) -> None:
    for number in range(6):
        problem(await sign_in(from_address(f"198.51.100.{number % 2}"), "admin", "guess"), 401)
    problem(await sign_in(from_address("198.51.100.0"), "ghost", "guess"), 401)
    assert await counters(app) == {"u:admin": 6, "p:admin": 6, "u:ghost": 1, "p:ghost": 1}
    await reset_password(app.state.database, "admin", ADMIN_PASSWORD)
    assert await counters(app) == {"u:ghost": 1, "p:ghost": 1}
    assert (await sign_in(from_address("198.51.100.0"), "admin", ADMIN_PASSWORD)).status_code == 200


async def test_failures_counted_at_once_are_all_counted(app: Litestar) -> None:
    """Several workers count failures of one username at the same moment: one upsert per
    counter, so none collides on the key (a 500) and none is lost."""
    policy = throttle.ThrottlePolicy(3, timedelta(minutes=1), timedelta(seconds=60))
    now = datetime.now(UTC)

    async def fail(number: int) -> None:
        async with transaction(database) as session:
            attempt = throttle.Attempt.of("admin", f"198.51.100.{number}")
            await throttle.record_failure(session, attempt, policy, now)

    async with app.lifespan():
        database: Any = app.state.database
        async with anyio.create_task_group() as group:
            for number in range(12):
                group.start_soon(fail, number)
        async with database.engine.connect() as connection:
            total = await connection.scalar(
                select(func.sum(LoginThrottle.failures)).where(LoginThrottle.key == "u:admin")
            )
    assert total == 12


def test_behind_a_local_proxy_the_forwarded_address_is_the_clients(tmp_path: Path) -> None:
    """`inspection serve` trusts `X-Forwarded-For` from a proxy on the same machine, so clients
    behind it are told apart; from anywhere else the header would be ignored (uvicorn's
    FORWARDED_ALLOW_IPS, docs/operations.md)."""
    with serving(tmp_path / "var") as (port, _):
        url = f"http://127.0.0.1:{port}{TOKEN}"

        def attempt(password: str, forwarded_for: str) -> int:
            body = {"username": "admin", "password": password}
            headers = {"X-Forwarded-For": forwarded_for}
            return httpx.post(url, json=body, headers=headers, timeout=30).status_code

        assert [attempt("guess", "203.0.113.66") for _ in range(5)] == [401] * 5
        assert attempt(ADMIN_PASSWORD, "203.0.113.66") == 429
        assert attempt(ADMIN_PASSWORD, "10.20.0.15") == 200
