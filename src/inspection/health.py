"""Liveness and readiness probes for load balancers and orchestrators."""

from __future__ import annotations

import logging
from typing import Any

import anyio
import msgspec
from litestar import Controller, Request, Response, get
from sqlalchemy import text

from inspection.db.engine import Database
from inspection.problems import problem_response
from inspection.storage import ObjectStore

log = logging.getLogger("inspection.health")
_PROBE_TIMEOUT = 3.0


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
        database_ok = await _probe("database", _database_probe(request.app.state.database))
        store_ok = await _probe("object store", _store_probe(request.app.state))
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


async def _probe(name: str, probe: Any) -> bool:
    try:
        with anyio.fail_after(_PROBE_TIMEOUT):
            await probe
    except Exception as exc:  # a probe reports any failure as "unavailable"
        log.warning("readiness: %s unavailable: %s", name, exc)
        return False
    return True
