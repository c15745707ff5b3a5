"""Liveness and readiness probes for load balancers and orchestrators.

Readiness answers within its deadline (`Timeouts.readiness`, 3 s) whatever the back-ends do: both
probes run at once under that deadline, and a probe still waiting when it passes is cancelled.
The store's probe then abandons its worker thread (blocked in a socket read the store will never
answer), which its socket timeouts end later; the database probe's connection is dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import anyio
import msgspec
from litestar import Controller, Request, Response, get
from sqlalchemy import text

from inspection.db.engine import Database
from inspection.settings import Timeouts
from inspection.storage import ObjectStore
from inspection.web.problems import one_line, problem_response

log = logging.getLogger("inspection.web.health")


class Checks(msgspec.Struct):
    """Each back-end's state: "ok" or "unavailable"."""

    database: str
    object_store: str


class Readiness(msgspec.Struct):
    """All back-ends answer."""

    checks: Checks
    status: str = "ok"


class HealthController(Controller):
    """`/health/live` (the process answers) and `/health/ready` (its back-ends answer)."""

    path = "/health"
    tags = ["operations"]

    @get("/live", summary="Liveness", exclude_from_auth=True, security=[{}])
    async def live(self) -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @get("/ready", summary="Readiness", exclude_from_auth=True, security=[{}])
    async def ready(self, request: Request[Any, Any, Any]) -> Response[Any]:
        """200 when the database and the object store answer; otherwise a 503 problem document
        whose `checks` say which back-end is down."""
        state = request.app.state
        settings = state.get("settings")
        deadline = (settings.timeouts if settings is not None else Timeouts()).readiness
        answered: dict[str, bool] = {}
        async with anyio.create_task_group() as probes:
            database = partial(_database_probe, state.database)
            probes.start_soon(_probe, "database", database, deadline, answered)
            store = partial(_store_probe, state)
            probes.start_soon(_probe, "object store", store, deadline, answered)
        database_ok, store_ok = answered["database"], answered["object store"]
        checks = Checks(
            database="ok" if database_ok else "unavailable",
            object_store="ok" if store_ok else "unavailable",
        )
        if database_ok and store_ok:
            return Response(Readiness(checks))
        down = [
            name for name, ok in (("database", database_ok), ("object store", store_ok)) if not ok
        ]
        return problem_response(
            request,
            503,
            f"not ready: {' and '.join(down)} unavailable",
            slug="unavailable",
            headers={"Retry-After": "5"},
            checks=msgspec.to_builtins(checks),
        )


async def _database_probe(database: Database) -> None:
    async with database.engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


async def _store_probe(state: Any) -> None:
    store: ObjectStore = state.object_store
    if not state.get("store_ready", False):
        # The store was down (at start or since): recreate the bucket as soon as it is back.
        await store.ensure_ready()
        state.store_ready = True
    try:
        await store.check()
    except Exception:
        state.store_ready = False
        raise


async def _probe(
    name: str, probe: Callable[[], Awaitable[None]], deadline: float, ok: dict[str, bool]
) -> None:
    """Run `probe` under `deadline`; record in `ok[name]` whether it answered in time."""
    ok[name] = False
    with anyio.move_on_after(deadline) as scope:
        try:
            await probe()
        except Exception as exc:  # a probe reports any failure as "unavailable"
            log.warning("readiness: %s unavailable: %s", name, one_line(exc))
            return
        ok[name] = True
    if scope.cancelled_caught:
        log.warning("readiness: %s unavailable: no answer within %g s", name, deadline)
