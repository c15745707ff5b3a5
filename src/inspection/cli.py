"""The `inspection` command: serve, db, demo, users, audit, evidence."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import click

from inspection.settings import ConfigurationError, Settings, load_settings

if TYPE_CHECKING:
    from inspection.db.engine import Database
    from inspection.storage import ObjectStore

T = TypeVar("T")


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigurationError as exc:
        click.echo(f"configuration error: {exc}", err=True)
        sys.exit(2)


def _run(awaitable: Awaitable[T]) -> T:
    async def main() -> T:
        return await awaitable

    return asyncio.run(main())


async def _with_database(settings: Settings, work: Callable[[Database], Awaitable[T]]) -> T:
    from inspection.db.engine import create_database

    database = create_database(settings)
    try:
        return await work(database)
    finally:
        await database.dispose()


def _prepare(settings: Settings, migrate: bool) -> None:
    """Apply migrations and create the first admin; print a generated password once."""
    from inspection.db.migrate import upgrade
    from inspection.units.bootstrap import ADMIN_USERNAME, ensure_admin
    from inspection.units.passwords import configure_hashing

    configure_hashing(settings.argon2_memory_kib)
    if migrate:
        upgrade(settings.database_url)
    generated = _run(_with_database(settings, lambda db: ensure_admin(db, settings.admin_password)))
    if generated:
        click.echo(
            f"Created the administrator '{ADMIN_USERNAME}' with password: {generated}\n"
            "It is shown only this once; change it with POST /api/v1/me/password."
        )


@click.group()
def main() -> None:
    """Backend of the public-service inspection field app."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
def serve(host: str, port: int, workers: int) -> None:
    """Run the HTTP service (migrating the database first unless INSPECTION_AUTO_MIGRATE=false)."""
    import uvicorn

    from inspection.web.http import SERVER_MAX_HEAD_BYTES

    settings = _settings()
    if settings.is_sqlite and workers > 1:
        # SQLite admits one writer at a time; the service queues its writers fairly inside one
        # process (db.engine.WriteQueue). Processes cannot share that queue, so several workers
        # would race for SQLite's lock again and answer 503 "database is locked" under load.
        click.echo(
            f"SQLite serves one process: run --workers 1, or use PostgreSQL "
            f"(INSPECTION_DATABASE_URL=postgresql://…) for more workers (got --workers {workers})",
            err=True,
        )
        sys.exit(2)
    _prepare(settings, migrate=settings.auto_migrate)
    click.echo(f"Serving on http://{host}:{port} (API docs at /schema)")
    uvicorn.run(
        "inspection.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=settings.log_level.lower(),
        proxy_headers=True,
        # h11, not httptools (uvicorn's "auto" choice when it is installed): uvicorn 0.54 sets
        # no limit on httptools' request head, which buffered a 64 MiB header whole. h11 stops
        # at this many bytes of request line and headers and closes the connection (400); the
        # app refuses more than 100 fields or 16 KiB with 431 (inspection.web.http.HeaderGuard).
        # h11's parsing costs nothing measurable beside a request's own work (docs/operations.md).
        http="h11",
        h11_max_incomplete_event_size=SERVER_MAX_HEAD_BYTES,
    )


@main.group()
def db() -> None:
    """Database migrations."""


@db.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (default: head) and create the first admin if needed."""
    settings = _settings()
    from inspection.db.migrate import upgrade

    upgrade(settings.database_url, revision)
    if revision == "head":
        _prepare(settings, migrate=False)
    click.echo(f"database at {revision}")


@db.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Revert migrations down to REVISION."""
    from inspection.db.migrate import downgrade

    downgrade(_settings().database_url, revision)


@db.command("current")
def db_current() -> None:
    """Show the applied revision."""
    from inspection.db.migrate import current

    current(_settings().database_url)


@main.command()
@click.option(
    "--history",
    is_flag=True,
    help="Also add a year of inspection history (plans, visits, findings, corrective actions), "
    "once: a second run detects it and adds nothing.",
)
@click.option("--seed", default=2026, show_default=True, help="Seed of the generated history.")
def demo(history: bool, seed: int) -> None:
    """Load a realistic demo (Thái Nguyên province); running it again adds nothing new."""
    from inspection.demo.history import generate_history
    from inspection.demo.organisation import load_demo

    settings = _settings()
    _prepare(settings, migrate=settings.auto_migrate)

    async def load(database: Database) -> str:
        summary = await load_demo(database)
        if history:
            report = await generate_history(
                database,
                seed=seed,
                zone=settings.zone,
                escalation_days=settings.escalation_days,
                due_soon_days=settings.due_soon_days,
            )
            summary += "\n" + report.summary()
        return summary

    click.echo(_run(_with_database(settings, load)))


@main.group()
def users() -> None:
    """People (operator tasks; everything else goes through the API)."""


@users.command("reset-password")
@click.argument("username")
@click.option("--password", help="The new password (at least 10 characters); generated if omitted.")
def users_reset_password(username: str, password: str | None) -> None:
    """Set a new password for USERNAME, end all their sessions and lift a sign-in lock."""
    from inspection.units.bootstrap import reset_password
    from inspection.units.passwords import configure_hashing

    if password is not None and len(password) < 10:
        raise click.BadParameter("must be at least 10 characters", param_hint="--password")
    settings = _settings()
    configure_hashing(settings.argon2_memory_kib)
    try:
        chosen = _run(_with_database(settings, lambda db: reset_password(db, username, password)))
    except LookupError:
        click.echo(f"no user {username!r}", err=True)
        sys.exit(1)
    if password is None:
        click.echo(f"New password for {username}: {chosen}")
    else:
        click.echo(f"Password of {username} changed; their sessions have ended.")


@main.group()
def audit() -> None:
    """The audit log."""


@audit.command("verify")
def audit_verify() -> None:
    """Check the hash chain; exit 1 and name the first broken entry if it does not hold."""
    from inspection.audit.recorder import ChainReport, verify

    async def check(database: Database) -> ChainReport:
        async with database.read_session() as session:
            return await verify(session)

    report = _run(_with_database(_settings(), check))
    if report.ok:
        click.echo(f"audit chain intact: {report.checked} entries")
        return
    click.echo(
        f"audit chain BROKEN at entry {report.broken_at}: {report.problem} "
        f"({report.checked} entries verified before it)",
        err=True,
    )
    sys.exit(1)


@main.group()
def evidence() -> None:
    """Evidence bytes in the object store."""


async def _with_store(
    settings: Settings, work: Callable[[Database, ObjectStore], Awaitable[T]]
) -> T:
    from inspection.storage.factory import create_object_store

    store = create_object_store(settings)
    try:
        return await _with_database(settings, lambda database: work(database, store))
    finally:
        await store.close()


@evidence.command("sweep")
@click.option(
    "--grace-hours",
    default=24.0,
    show_default=True,
    type=click.FloatRange(0),
    help="Keep unreferenced objects younger than this (uploads in flight).",
)
def evidence_sweep(grace_hours: float) -> None:
    """Remove objects no evidence row points to, and tus uploads older than a day."""
    from datetime import timedelta

    from inspection.evidence.maintenance import sweep

    report = _run(
        _with_store(
            _settings(),
            lambda database, store: sweep(database, store, timedelta(hours=grace_hours)),
        )
    )
    for key in report.removed_objects:
        click.echo(f"removed {key}")
    for key in report.kept:
        click.echo(f"kept {key} (the store refused to delete it, e.g. under retention)", err=True)
    click.echo(
        f"sweep: {len(report.removed_objects)} objects and {report.removed_uploads} expired "
        f"uploads removed, {len(report.kept)} kept"
    )


@evidence.command("verify")
def evidence_verify() -> None:
    """Re-hash every stored original; exit 1 and list any that are missing or changed."""
    from inspection.evidence.maintenance import verify

    report = _run(_with_store(_settings(), verify))
    for key in report.missing:
        click.echo(f"MISSING {key}", err=True)
    for key in report.changed:
        click.echo(f"CHANGED {key}", err=True)
    click.echo(
        f"evidence verify: {report.checked} originals checked, {len(report.missing)} objects "
        f"missing, {len(report.changed)} changed"
    )
    if not report.ok:
        sys.exit(1)


@main.group()
def jobs() -> None:
    """Scheduled work (run from cron or a scheduler)."""


@jobs.command("run")
def jobs_run() -> None:
    """Raise escalations and due-soon reminders (each exactly once) and deliver webhooks."""
    from datetime import UTC, datetime

    from inspection.jobs import run_jobs

    settings = _settings()
    report = _run(
        _with_database(settings, lambda database: run_jobs(database, settings, datetime.now(UTC)))
    )
    click.echo(
        f"jobs: {report.escalations} escalations, {report.reminders} reminders, "
        f"{report.delivered} webhooks delivered, {report.failed_attempts} to retry, "
        f"{report.given_up} given up"
    )


@jobs.command("deliveries")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
@click.option(
    "--status",
    type=click.Choice(["pending", "delivered", "failed"]),
    help="Only deliveries in this state.",
)
def jobs_deliveries(limit: int, status: str | None) -> None:
    """The webhook delivery log, newest first: state, attempts, last answer or error."""
    from sqlalchemy import select

    from inspection.notifications.models import WebhookDelivery

    async def read(database: Database) -> list[WebhookDelivery]:
        async with database.read_session() as session:
            statement = select(WebhookDelivery).order_by(WebhookDelivery.created_at.desc())
            if status is not None:
                statement = statement.where(WebhookDelivery.status == status)
            return list(await session.scalars(statement.limit(limit)))

    for d in _run(_with_database(_settings(), read)):
        answer = d.last_error or (f"HTTP {d.last_status}" if d.last_status else "-")
        click.echo(
            f"{d.created_at:%Y-%m-%d %H:%M:%S} {d.status:9} {d.attempts:2} attempts  "
            f"{d.kind:20} {d.id}  {answer}"
        )
