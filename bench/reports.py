"""Reports at the scale of a year of a province: the app's path against the bare SQL it needs.

The data: `load_scale_world` (200 units, 10 districts with a head each) and `generate_history`
(seed 2026, `--visits`, `--findings`, `--actions`), generated once into a scratch database that is
kept between runs: `bench_reports_<findings>` on INSPECTION_TEST_DATABASE_URL's server, or
`<--data-dir>/reports_<findings>.db` on SQLite. A later run finds it (history present, findings
counted) and only migrates it to head, so re-running never regenerates (`--regenerate` forces
it). A leader of the province (`lanh.dao`) is added once. Discipline proposals: `--proposals`
(default 0.5% of the findings: 5,000 at 1,000,000).

Timed, interleaved round by round (`--rounds`, after `--warmups`), medians and ranges printed,
and per-round ratios (each call against the bare call of its own round); sections may be left out
with `--skip summary|discipline|pdf|register`:

- summary, province-wide (as the leader) and for district P-D01 (as the leader with `under`, and
  as the district's head): `ReportService.summary` in-process and `GET /api/v1/reports/summary`
  through httpx.ASGITransport, against `bare` — hand-written minimal GROUP BYs answering the same
  numbers (no access predicates; the district by a path prefix), run in one read-only
  transaction on the reports' own engine, the same number of statements' worth of answers;
- the discipline report, for the same three readers: `ReportService.discipline` and
  `GET /api/v1/reports/discipline`, against `BareDiscipline` — proposals by status and measure
  (one GROUP BY), units by findings per visit (visits and findings by unit), overdue actions by
  child, escalation level and ageing (1-7, 8-30, >30 days), undecided proposals whose processing
  time or limitation period ends within 30 days (the dates computed in SQL), and the flagged
  officials: the window's proposals and the findings that name someone fetched by minimal
  SELECTs, the names folded and the incidents counted in Python, as the app does too (its time
  is in the twin's). No access predicates: the leader sees everything, and the head is the head
  concerned by every unit of the district (checked: no unit below it has a head of its own);
- the findings register as CSV (`GET /api/v1/reports/findings?format=csv`, leader, whole
  province) from a real `inspection serve` (one worker, a subprocess on a free port, against the
  same database; always stopped), streamed by httpx into a null sink, bytes and rows counted.
  Its RSS is the server process's: VmRSS before the download, then VmRSS sampled every 50 ms and
  VmHWM after /proc/<pid>/clear_refs "5" (the higher taken as the peak). Against PostgreSQL's own
  `COPY (the register's SELECT, compiled from the app's query) TO STDOUT WITH CSV` into a null
  sink (asyncpg `copy_from_query`); SQLite has no COPY: its floor is the same SELECT fetched raw
  through sqlite3;
- the PDF summary (`format=pdf`, leader, province-wide), end to end.

Each report's answer is checked against its bare twin once before timing (the same numbers; the
discipline report's HTTP answer too). `--explain` prints `EXPLAIN (ANALYZE, BUFFERS)`
(PostgreSQL) / `EXPLAIN QUERY PLAN` (SQLite) of every statement of one province-wide summary, of
one discipline report and of the register.

Run: `.venv/bin/python bench/reports.py --backend postgres --findings 1000000 --actions 300000`
and `.venv/bin/python bench/reports.py --backend sqlite --findings 100000 --actions 30000`
(PostgreSQL needs INSPECTION_TEST_DATABASE_URL; the first run of 1,000,000 findings generates for
about 6 minutes).
"""

from __future__ import annotations

import os

os.environ.setdefault("INSPECTION_ARGON2_MEMORY_KIB", "8192")

import argparse
import asyncio
import contextlib
import csv
import ctypes
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as dt_time
from functools import partial
from pathlib import Path
from typing import Any
from uuid import UUID

sys.path.insert(0, str(Path(__file__).resolve().parent))

import asyncpg
import httpx
import msgspec
from sqlalchemy import bindparam, event, func, select, text
from sqlalchemy.engine import make_url

from _common import (
    ADMIN_PASSWORD,
    ARGON2_MEMORY_KIB,
    Backend,
    _admin_sql,
    _admin_url,
    _asyncpg_dsn,
    header,
    make_app,
    settings_for,
)
from inspection.access.principal import GrantScope, Principal
from inspection.actions.models import CorrectiveAction
from inspection.audit.models import AuditEntry
from inspection.db.engine import create_database, create_reports_database
from inspection.db.migrate import upgrade
from inspection.db.session import transaction
from inspection.demo.history import HISTORY_ENTITY, generate_history, load_scale_world
from inspection.demo.organisation import DEMO_PASSWORD
from inspection.discipline.models import DisciplineProposal
from inspection.findings.models import Finding
from inspection.kit.search import fold_for_column
from inspection.plans.models import Visit
from inspection.reports import schemas
from inspection.reports.periods import Period
from inspection.reports.repository import ReportRepository
from inspection.reports.service import ReportService
from inspection.settings import Settings
from inspection.units import schemas as unit_schemas
from inspection.units.bootstrap import ensure_admin
from inspection.units.models import Grant, Unit, User
from inspection.units.passwords import configure_hashing
from inspection.units.roles import Role
from inspection.units.service import UserService

LEADER = "lanh.dao"
HEAD = "chu.tich.d01"
DISTRICT = "P-D01"

# --- the kept scratch database -----------------------------------------------------------------


@dataclass
class Data:
    """A generated database and what the bench needs from it."""

    where: Backend
    settings: Settings
    until: datetime  # the generator's "now": the history is the year before it
    findings: int


async def _pg_exists(name: str) -> bool:
    connection = await asyncpg.connect(_asyncpg_dsn(_admin_url()))
    try:
        return bool(await connection.fetchval("SELECT 1 FROM pg_database WHERE datname=$1", name))
    finally:
        await connection.close()


async def _generated(settings: Settings) -> tuple[int, datetime] | None:
    """(findings, the generator's now) if a history is present."""
    database = create_database(settings)
    try:
        async with database.read_session() as session:
            entry = await session.scalar(
                select(AuditEntry).where(AuditEntry.entity == HISTORY_ENTITY).limit(1)
            )
            if entry is None:
                return None
            count = await session.scalar(select(func.count()).select_from(Finding))
            until = datetime.fromisoformat(entry.changes["until"]["after"])
            return int(count or 0), until
    finally:
        await database.dispose()


async def _ensure_leader(settings: Settings) -> None:
    database = create_database(settings)
    try:
        async with transaction(database) as session:
            if await session.scalar(select(User.id).where(User.username == LEADER)):
                return
            admin = await session.scalar(select(User).where(User.username == "admin"))
            assert admin is not None
            province = await session.scalar(select(Unit.id).where(Unit.code == "P"))
            system = Principal(
                admin.id,
                admin.username,
                admin.full_name,
                None,
                (GrantScope(Role.ADMIN, None, None),),
            )
            await UserService(session, system).create(
                unit_schemas.UserCreate(
                    username=LEADER,
                    full_name="Lãnh đạo Sở Nội vụ",
                    password=DEMO_PASSWORD,
                    unit_id=province,
                    grants=[unit_schemas.GrantCreate(role=Role.LEADER, unit_id=province)],
                )
            )
    finally:
        await database.dispose()


async def ensure_data(name: str, args: argparse.Namespace) -> Data:
    """The kept database of this size, generated if missing (or `--regenerate`), migrated to
    head."""
    data_dir = Path(args.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - a bench's set-up, once
    if name == "sqlite":
        file = data_dir / f"reports_{args.findings}.db"
        if args.regenerate:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{file}{suffix}").unlink(missing_ok=True)  # noqa: ASYNC240 - set-up
        url = f"sqlite+aiosqlite:///{file}"
        where = Backend(name, url, data_dir, f"SQLite {sqlite3.sqlite_version}")
    else:
        db = f"bench_reports_{args.findings}"
        if args.regenerate:
            await _admin_sql(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        if not await _pg_exists(db):
            await _admin_sql(f'CREATE DATABASE "{db}"')
        version = await _admin_sql("SELECT 1")
        url = make_url(_admin_url()).set(database=db).render_as_string(hide_password=False)
        where = Backend(name, url, data_dir, f"PostgreSQL {version}")
    await asyncio.to_thread(upgrade, url)
    settings = settings_for(where)
    configure_hashing(settings.argon2_memory_kib)
    found = await _generated(settings)
    if found is None:
        database = create_database(settings)
        try:
            await ensure_admin(database, ADMIN_PASSWORD)
            started = time.perf_counter()
            await load_scale_world(database, args.units)
            report = await generate_history(
                database,
                visits=args.visits,
                findings=args.findings,
                actions=args.actions,
                proposals=args.proposals,
                seed=args.seed,
            )
            print(f"  generated in {time.perf_counter() - started:.0f} s: {dict(report.counts)}")
        finally:
            await database.dispose()
        found = await _generated(settings)
        assert found is not None
    else:
        print(f"  reusing {where.database_url.rsplit('/', 1)[-1]}: {found[0]:,} findings")
    await _ensure_leader(settings)
    return Data(where, settings, found[1], found[0])


async def setup_only(args: argparse.Namespace) -> None:
    for name in args.backend or ["sqlite"]:
        await ensure_data(name, args)


# --- readers -----------------------------------------------------------------------------------


async def principal_of(settings: Settings, username: str) -> Principal:
    """The user's principal, loaded as `units.auth` loads it for a request."""
    database = create_database(settings)
    try:
        async with database.read_session() as session:
            rows = (
                await session.execute(
                    select(
                        User.id, User.full_name, User.unit_id, Grant.role, Grant.unit_id, Unit.path
                    )
                    .join(Grant, Grant.user_id == User.id)
                    .outerjoin(Unit, Unit.id == Grant.unit_id)
                    .where(User.username == username)
                )
            ).all()
    finally:
        await database.dispose()
    first = rows[0]
    grants = tuple(GrantScope(Role(r.role), r[4], r.path) for r in rows)
    return Principal(first.id, username, first.full_name, first.unit_id, grants)


# --- the bare SQL: the same numbers, minimal GROUP BYs, no access predicates -------------------


@dataclass(frozen=True)
class BareScope:
    """What the bare queries need: a path prefix (None: everything), the children's path length,
    and whether sealed unannounced visits are left out (a unit head's view)."""

    prefix: str | None
    child_length: int
    head: bool = False


def _bare_sql(dialect: str, scope: BareScope, zone: str, offset_minutes: int) -> dict[str, Any]:
    """The bare statements, as `text()` with typed binds."""
    in_prefix = "AND substr(u.path, 1, :plen) = :prefix" if scope.prefix else ""
    sealed = "AND (p.kind = 'scheduled' OR v.checked_in_at IS NOT NULL)" if scope.head else ""
    visits_from = f"""
        FROM visits v JOIN plans p ON p.id = v.plan_id JOIN units u ON u.id = v.unit_id
        WHERE p.approved_at IS NOT NULL AND p.status <> 'cancelled' AND v.status <> 'cancelled'
          AND ((v.checked_in_at >= :start AND v.checked_in_at < :end)
               OR (v.checked_in_at IS NULL AND v.window_start BETWEEN :first AND :last))
          {in_prefix} {sealed}"""
    findings_where = """f.status IN ('submitted', 'closed')
          AND f.observed_at >= :start AND f.observed_at < :end"""
    if dialect == "postgresql":
        local_closed = f"(a.closed_at AT TIME ZONE '{zone}')::date"
        days = "extract(epoch FROM a.closed_at - a.created_at) / 86400.0"
    else:
        local_closed = f"date(a.closed_at, '{offset_minutes:+d} minutes')"
        days = "julianday(a.closed_at) - julianday(a.created_at)"
    actions_from = f"""
        FROM corrective_actions a JOIN findings f ON f.id = a.finding_id
        JOIN units u ON u.id = a.unit_id
        WHERE a.status <> 'cancelled' AND {findings_where} {in_prefix}"""
    if dialect == "postgresql":
        median = f"""SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY {days})
            {actions_from} AND a.status = 'closed' AND a.closed_at IS NOT NULL"""
    else:
        median = f"""SELECT avg(days) FROM (SELECT {days} AS days,
                row_number() OVER (ORDER BY {days}) AS rn, count(*) OVER () AS n
            {actions_from} AND a.status = 'closed' AND a.closed_at IS NOT NULL)
            WHERE rn * 2 >= n AND rn * 2 <= n + 2"""
    statements = {
        "visits": f"""SELECT substr(u.path, 1, :clen), p.kind, count(*),
                sum(CASE WHEN v.status = 'concluded' THEN 1 ELSE 0 END),
                sum(CASE WHEN v.status = 'concluded' THEN v.score END),
                count(CASE WHEN v.status = 'concluded' THEN v.score END)
            {visits_from} GROUP BY 1, 2""",
        "plans": f"SELECT p.kind, count(DISTINCT v.plan_id) {visits_from} GROUP BY 1",
        "inspected": f"""SELECT count(DISTINCT v.unit_id) {visits_from}
            AND v.checked_in_at IS NOT NULL""",
        "findings": f"""SELECT substr(u.path, 1, :clen), f.category, f.severity, count(*)
            FROM findings f JOIN units u ON u.id = f.unit_id
            WHERE {findings_where} {in_prefix} GROUP BY 1, 2, 3""",
        "actions": f"""SELECT substr(u.path, 1, :clen), count(*),
                sum(CASE WHEN a.status IN ('open', 'in_progress', 'submitted') THEN 1 ELSE 0 END),
                sum(CASE WHEN a.status IN ('open', 'in_progress') AND a.due_date < :today
                    THEN 1 ELSE 0 END),
                sum(CASE WHEN a.status = 'closed' THEN 1 ELSE 0 END),
                sum(CASE WHEN a.status = 'closed' AND a.closed_at IS NOT NULL
                    AND {local_closed} <= a.due_date THEN 1 ELSE 0 END)
            {actions_from} GROUP BY 1""",
        "median": median,
    }
    return statements


def _typed(sql: str) -> Any:
    names = {
        "start": Finding.observed_at.type,
        "end": Finding.observed_at.type,
        "first": Visit.window_start.type,
        "last": Visit.window_start.type,
        "today": CorrectiveAction.due_date.type,
        "horizon": DisciplineProposal.detected_date.type,
        "wfirst": DisciplineProposal.violation_date.type,
        "wlast": DisciplineProposal.violation_date.type,
        "wbegin": Finding.observed_at.type,
        "wend": Finding.observed_at.type,
    }
    statement = text(sql)
    used = [bindparam(n, type_=t) for n, t in names.items() if f":{n}" in sql]
    return statement.bindparams(*used) if used else statement


class Bare:
    """The bare statements of one scope, compiled once, run in one read-only transaction."""

    def __init__(self, dialect: str, scope: BareScope, settings: Settings, now: datetime) -> None:
        offset = now.astimezone(settings.zone).utcoffset()
        minutes = int(offset.total_seconds() // 60) if offset else 0
        self.scope = scope
        self.today = now.astimezone(settings.zone).date()
        self.statements = {
            k: _typed(v) for k, v in _bare_sql(dialect, scope, settings.timezone, minutes).items()
        }

    async def run(self, session: Any, period: Period) -> dict[str, Any]:
        params: dict[str, Any] = {
            "start": period.start,
            "end": period.end,
            "first": period.first,
            "last": period.last,
            "today": self.today,
            "clen": self.scope.child_length,
        }
        if self.scope.prefix:
            params |= {"prefix": self.scope.prefix, "plen": len(self.scope.prefix)}
        out = {}
        for name, statement in self.statements.items():
            used = {k: v for k, v in params.items() if f":{k}" in statement.text}
            out[name] = (await session.execute(statement, used)).all()
        return out


def bare_numbers(raw: dict[str, Any], children: list[str]) -> dict[str, Any]:
    """The summary's numbers from the bare rows, in the shape `app_numbers` gives."""
    kinds: dict[str, list[int]] = {"scheduled": [0, 0, 0], "unannounced": [0, 0, 0]}
    units: dict[str, list[Any]] = {c: [0, 0.0, 0, 0, 0, 0] for c in children}
    for bucket, kind, n, concluded, score, scores in raw["visits"]:
        kinds[kind][1] += n
        kinds[kind][2] += concluded or 0
        if bucket in units:
            units[bucket][0] += n
            units[bucket][1] += float(score or 0)
            units[bucket][2] += scores
    for kind, plans in raw["plans"]:
        kinds[kind][0] = plans
    categories: dict[str, int] = {}
    severities: dict[str, int] = {}
    total = 0
    for bucket, category, severity, n in raw["findings"]:
        total += n
        categories[category] = categories.get(category, 0) + n
        severities[severity] = severities.get(severity, 0) + n
        if bucket in units:
            units[bucket][3] += n
    sums = [0, 0, 0, 0, 0]
    for bucket, *counts in raw["actions"]:
        sums = [a + int(b or 0) for a, b in zip(sums, counts, strict=True)]
        if bucket in units:
            units[bucket][4], units[bucket][5] = int(counts[1] or 0), int(counts[2] or 0)
    median = raw["median"][0][0]
    return {
        "inspections": {k: tuple(v) for k, v in kinds.items()},
        "inspected": raw["inspected"][0][0],
        "findings": (total, {k: v for k, v in categories.items() if v}, severities),
        "actions": (*sums, None if median is None else round(float(median), 1)),
        "by_unit": {
            path: (v[0], v[3], v[4], v[5], round(v[1] / v[2], 2) if v[2] else None)
            for path, v in units.items()
        },
    }


def app_numbers(summary: Any, paths: dict[UUID, str]) -> dict[str, Any]:
    """The same numbers from the app's `Summary`."""
    i, f, a = summary.inspections, summary.findings, summary.actions
    return {
        "inspections": {
            "scheduled": (i.scheduled.plans, i.scheduled.visits, i.scheduled.concluded),
            "unannounced": (i.unannounced.plans, i.unannounced.visits, i.unannounced.concluded),
        },
        "inspected": summary.units_inspected,
        "findings": (
            f.total,
            {k: v for k, v in f.by_category.items() if v},
            {k: v for k, v in f.by_severity.items() if v or k in f.by_severity},
        ),
        "actions": (a.total, a.open, a.overdue, a.closed, a.closed_on_time, a.median_days_to_close),
        "by_unit": {
            paths[r.unit_id]: (
                r.visits,
                r.findings,
                r.open_actions,
                r.overdue_actions,
                r.average_score,
            )
            for r in summary.by_unit
        },
    }


def _same(bare: dict[str, Any], app: dict[str, Any]) -> list[str]:
    bare["findings"] = (
        bare["findings"][0],
        bare["findings"][1],
        {k: bare["findings"][2].get(k, 0) for k in app["findings"][2]},
    )
    return [k for k in app if app[k] != bare[k]]


# --- the discipline report's bare twin --------------------------------------------------------
#
# The same numbers as `ReportRepository.discipline`, by minimal SQL written by hand: no access
# predicates (the readers here are a province leader, who sees everything, and a district head,
# who is the head concerned by every unit of the district: `head_twin_holds` checks that no unit
# below has a head of its own), the district by a path prefix. Where the app folds officials'
# names in Python (`discipline/repository.py`), so does the twin: it fetches the rows that name
# someone and the window's proposals, and counts by (unit, folded name) itself; its timing
# includes that Python.


def _add_years(day: date, years: int) -> date:
    """The same calendar day `years` later, 29 February giving 28 February (Civil Code Art. 148,
    as the app reads it): written here again so the twin does not lean on `discipline.rules`."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def _bare_discipline_sql(dialect: str, scope: BareScope, settings: Settings) -> dict[str, str]:
    """The twin's statements (text with named binds)."""
    pg = dialect == "postgresql"

    def scoped(column: str) -> str:
        # `unit_id IN (the district's units)`: both databases then use their (unit_id, …)
        # indexes, which a join filtered on `substr(path)` hides from SQLite.
        if not scope.prefix:
            return ""
        return (
            f"AND {column} IN (SELECT u.id FROM units u WHERE substr(u.path, 1, :plen) = :prefix)"
        )

    counted = """f.status IN ('submitted', 'closed')
        AND f.observed_at >= :start AND f.observed_at < :end"""
    if pg:
        days = "(:today - a.due_date)"
        officials = "f.officials::text"
        processing = "(p.detected_date + CASE WHEN p.extended THEN 150 ELSE 90 END)"
        years = settings.discipline_limitation_years
        limitation = f"""CAST(p.violation_date + make_interval(years => CASE
            WHEN p.proposed_measure = 'reprimand' THEN {years.reprimand} ELSE {years.other} END)
            AS date)"""
    else:
        days = "CAST(julianday(:today) - julianday(a.due_date) AS INTEGER)"
        officials = "f.officials"
        processing = """date(p.detected_date,
            '+' || CASE WHEN p.extended THEN 150 ELSE 90 END || ' days')"""
        years = settings.discipline_limitation_years
        # SQLite rolls 29 February over to 1 March: step back a day first, as the law reads it.
        limitation = f"""date(p.violation_date,
            CASE WHEN strftime('%m-%d', p.violation_date) = '02-29' THEN '-1 day'
                ELSE '+0 days' END,
            '+' || CASE WHEN p.proposed_measure = 'reprimand' THEN {years.reprimand}
                ELSE {years.other} END || ' years')"""
    level = " + ".join(
        f"CASE WHEN {days} >= {n} THEN 1 ELSE 0 END" for n in settings.escalation_days
    )
    age = f"CASE WHEN {days} <= 7 THEN 0 WHEN {days} <= 30 THEN 1 ELSE 2 END"
    in_prefix = "AND substr(u.path, 1, :plen) = :prefix" if scope.prefix else ""
    return {
        "proposals": f"""SELECT p.status, p.proposed_measure, p.decided_measure, count(*)
            FROM discipline_proposals p JOIN findings f ON f.id = p.finding_id
            WHERE {counted} {scoped("p.unit_id")} GROUP BY 1, 2, 3""",
        "repeat_proposals": f"""SELECT p.id, p.unit_id, p.official_name_folded, p.finding_id,
                p.violation_date, p.status, p.decided_measure, p.decision_number,
                p.decision_date, p.created_at
            FROM discipline_proposals p
            WHERE p.status <> 'withdrawn'
              AND ((p.violation_date >= :wfirst AND p.violation_date <= :wlast)
                   OR (p.status = 'decided' AND p.decision_date > :wfirst
                       AND p.decision_date <= :wlast))
              {scoped("p.unit_id")}""",
        "repeat_findings": f"""SELECT f.id, f.unit_id, f.officials FROM findings f
            WHERE f.status IN ('submitted', 'closed') AND {officials} <> '[]'
              AND f.observed_at >= :wbegin AND f.observed_at < :wend {scoped("f.unit_id")}""",
        "unit_visits": f"""SELECT v.unit_id, count(*)
            FROM visits v JOIN plans p ON p.id = v.plan_id
            WHERE p.approved_at IS NOT NULL AND p.status <> 'cancelled'
              AND v.status <> 'cancelled'
              AND v.checked_in_at >= :start AND v.checked_in_at < :end {scoped("v.unit_id")}
            GROUP BY 1""",
        "unit_findings": f"""SELECT f.unit_id, count(*) FROM findings f
            WHERE {counted} {scoped("f.unit_id")} GROUP BY 1""",
        "overdue": f"""SELECT substr(u.path, 1, :clen), {level}, {age}, count(*)
            FROM corrective_actions a JOIN findings f ON f.id = a.finding_id
            JOIN units u ON u.id = a.unit_id
            WHERE a.status IN ('open', 'in_progress') AND a.due_date < :today AND {counted}
              {in_prefix}
            GROUP BY 1, 2, 3""",
        "deadlines": f"""SELECT p.id, {processing}, {limitation}
            FROM discipline_proposals p JOIN findings f ON f.id = p.finding_id
            WHERE p.status = 'proposed' AND {counted} {scoped("p.unit_id")}
              AND ({processing} <= :horizon OR {limitation} <= :horizon)""",
    }


def _uuid(value: Any) -> UUID:
    """An id as a text() query returns it: a UUID (asyncpg) or 16 bytes (SQLite's GUID)."""
    if isinstance(value, UUID):
        return value
    if isinstance(value, bytes):
        return UUID(bytes=value)
    return UUID(str(value))


def _day(value: Any) -> date:
    """A date as a text() query returns it: a date (asyncpg) or ISO text (SQLite)."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


class BareDiscipline:
    """The discipline report's twin for one scope: statements compiled once, run in one read-only
    transaction, then the few Python steps the numbers need (`numbers`)."""

    def __init__(
        self,
        dialect: str,
        scope: BareScope,
        settings: Settings,
        now: datetime,
        children: list[str],
        codes: dict[UUID, str],
    ) -> None:
        self.scope = scope
        self.settings = settings
        self.zone = settings.zone
        self.today = now.astimezone(settings.zone).date()
        self.children = children
        self.codes = codes
        self.statements = {
            k: _typed(v) for k, v in _bare_discipline_sql(dialect, scope, settings).items()
        }

    async def run(self, session: Any, period: Period) -> dict[str, Any]:
        """Every statement's rows."""
        as_of = min(self.today, period.last)  # repeats are counted up to the period's end
        wfirst = _add_years(as_of, -1)
        params: dict[str, Any] = {
            "start": period.start,
            "end": period.end,
            "today": self.today,
            "horizon": self.today + timedelta(days=30),
            "wfirst": wfirst,
            "wlast": as_of,
            "wbegin": datetime.combine(wfirst, dt_time.min, tzinfo=self.zone),
            "wend": datetime.combine(as_of + timedelta(days=1), dt_time.min, tzinfo=self.zone),
            "clen": self.scope.child_length,
        }
        if self.scope.prefix:
            params |= {"prefix": self.scope.prefix, "plen": len(self.scope.prefix)}
        out: dict[str, Any] = {"window": (wfirst, as_of)}
        for name, statement in self.statements.items():
            used = {k: v for k, v in params.items() if f":{k}" in statement.text}
            out[name] = (await session.execute(statement, used)).all()
        return out

    def numbers(self, raw: dict[str, Any]) -> dict[str, Any]:
        """The report's numbers from the rows, in the shape `app_discipline_numbers` gives."""
        by_status: dict[str, int] = {}
        proposed: dict[str, int] = {}
        decided: dict[str, int] = {}
        total = 0
        for status, proposed_measure, decided_measure, n in raw["proposals"]:
            total += n
            by_status[status] = by_status.get(status, 0) + n
            proposed[proposed_measure] = proposed.get(proposed_measure, 0) + n
            if status == "decided" and decided_measure is not None:
                decided[decided_measure] = decided.get(decided_measure, 0) + n
        return {
            "proposals": (total, by_status, proposed, decided),
            "flagged": self._flagged(raw),
            "units": self._units(raw),
            "overdue": self._overdue(raw),
            "deadlines": self._deadlines(raw),
        }

    def _flagged(self, raw: dict[str, Any]) -> list[tuple[Any, ...]]:
        wfirst, as_of = raw["window"]
        incidents: dict[tuple[UUID, str], set[Any]] = {}
        last: dict[tuple[UUID, str], tuple[Any, ...]] = {}
        for pid, unit, folded, finding, violated, status, measure, number, decided_on, made in raw[
            "repeat_proposals"
        ]:
            key = (_uuid(unit), folded)
            found = incidents.setdefault(key, set())
            if wfirst <= _day(violated) <= as_of:
                found.add(_uuid(finding))
            if status == "decided" and decided_on is not None and measure is not None:
                day = _day(decided_on)
                # The latest decision; among the same day's, the latest made (then by id).
                rank = (day, str(made), _uuid(pid))
                if day <= as_of and (key not in last or rank >= last[key][0]):
                    last[key] = (rank, measure, number, day)
        folds: dict[str, str] = {}  # each spelling folded once, as the app does
        for finding, unit, officials in raw["repeat_findings"]:
            value = msgspec.json.decode(officials) if isinstance(officials, str) else officials
            for official in value if isinstance(value, list) else ():
                name = official.get("name") if isinstance(official, dict) else None
                if not isinstance(name, str) or not name.strip():
                    continue
                folded = folds.get(name)
                if folded is None:
                    folded = folds[name] = fold_for_column(name)
                incidents.setdefault((_uuid(unit), folded), set()).add(_uuid(finding))
        threshold = self.settings.repeat_threshold
        return sorted(
            (
                unit,
                folded,
                len(ids),
                *(last[(unit, folded)][1:] if (unit, folded) in last else (None,) * 3),
            )
            for (unit, folded), ids in incidents.items()
            if len(ids) >= threshold
        )

    def _units(self, raw: dict[str, Any]) -> list[tuple[Any, ...]]:
        findings = {_uuid(u): n for u, n in raw["unit_findings"]}
        rows = [
            (_uuid(u), n, findings.get(_uuid(u), 0), round(findings.get(_uuid(u), 0) / n, 2))
            for u, n in raw["unit_visits"]
        ]
        rows.sort(key=lambda r: (-r[3], -r[2], self.codes[r[0]]))
        return rows

    def _overdue(self, raw: dict[str, Any]) -> tuple[Any, ...]:
        levels: dict[int, list[int]] = {}
        per_child = dict.fromkeys(self.children, 0)
        total = 0
        for bucket, level, age, n in raw["overdue"]:
            total += n
            levels.setdefault(int(level), [0, 0, 0])[int(age)] += n
            if bucket in per_child:
                per_child[bucket] += n
        return total, {k: tuple(v) for k, v in sorted(levels.items())}, per_child

    def _deadlines(self, raw: dict[str, Any]) -> list[tuple[Any, ...]]:
        rows = []
        for pid, processing, limitation in raw["deadlines"]:
            for kind, value in (("processing", processing), ("limitation", limitation)):
                day = _day(value)
                left = (day - self.today).days
                if left <= 30:
                    rows.append((_uuid(pid), kind, day, left))
        return sorted(rows, key=lambda r: (r[2], str(r[0]), r[1]))


def app_discipline_numbers(report: Any, paths: dict[UUID, str]) -> dict[str, Any]:
    """The same numbers from the app's `DisciplineReport`."""
    p = report.proposals
    o = report.overdue_actions
    nonzero = {k: v for k, v in p.by_status.items() if v}
    flagged = sorted(
        (
            f.unit_id,
            fold_for_column(f.name),
            f.count,
            f.last_measure,
            f.last_decision_number,
            f.last_decision_date,
        )
        for f in report.flagged_officials
    )
    levels = {
        lvl.level: (lvl.days_1_7, lvl.days_8_30, lvl.days_over_30)
        for lvl in o.by_level
        if lvl.total
    }
    return {
        "proposals": (
            p.total,
            nonzero,
            {m.measure: m.proposed for m in p.by_measure if m.proposed},
            {m.measure: m.decided for m in p.by_measure if m.decided},
        ),
        "flagged": flagged,
        "units": [
            (u.unit_id, u.visits, u.findings, u.findings_per_visit)
            for u in report.units_by_findings_per_visit
        ],
        "overdue": (o.total, levels, {paths[u.unit_id]: u.overdue for u in o.by_unit}),
        "deadlines": sorted(
            ((d.proposal_id, d.deadline.value, d.date, d.days_left) for d in report.deadlines),
            key=lambda r: (r[2], str(r[0]), r[1]),
        ),
    }


def _explain_difference(bare: Any, app: Any, limit: int = 5) -> str:
    """A short account of how two answers differ: for lists the first items only one side has,
    for dicts the keys whose values differ, for tuples each differing part."""
    if isinstance(bare, list) and isinstance(app, list):
        only_bare = [x for x in bare if x not in app][:limit]
        only_app = [x for x in app if x not in bare][:limit]
        order = "" if only_bare or only_app else " (same items, another order)"
        text = (
            f"bare {len(bare)} items, app {len(app)}{order}; only in bare: {only_bare}; "
            f"only in app: {only_app}"
        )
    elif isinstance(bare, dict) and isinstance(app, dict):
        keys = [k for k in {**bare, **app} if bare.get(k) != app.get(k)][:limit]
        text = "; ".join(f"[{k!r}] bare {bare.get(k)!r}, app {app.get(k)!r}" for k in keys)
    elif isinstance(bare, tuple) and isinstance(app, tuple) and len(bare) == len(app):
        text = "; ".join(
            f"part {i}: {_explain_difference(b, a, limit)}"
            for i, (b, a) in enumerate(zip(bare, app, strict=True))
            if b != a
        )
    else:
        text = f"bare {bare!r}; app {app!r}"
    return text if len(text) <= 1200 else text[:1200] + " …"


# --- timing helpers ------------------------------------------------------------------------------


def _ms(values: list[float]) -> str:
    return (
        f"p50 {statistics.median(values) * 1000:8.1f} ms "
        f"(min {min(values) * 1000:.1f}, max {max(values) * 1000:.1f})"
    )


async def _time(action: Callable[[], Awaitable[Any]]) -> float:
    started = time.perf_counter()
    await action()
    return time.perf_counter() - started


def _load() -> str:
    return Path("/proc/loadavg").read_text().split(" ", 3)[:3].__str__()


class Capture:
    """The statements one call sends (text and driver parameters), optionally with their times."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine.sync_engine
        self.items: list[list[Any]] = []
        self._t = 0.0

    def _before(self, _c: Any, _cur: Any, statement: str, parameters: Any, *_a: Any) -> None:
        self._t = time.perf_counter()
        self.items.append([statement, parameters, 0.0])

    def _after(self, *_a: Any) -> None:
        self.items[-1][2] = time.perf_counter() - self._t

    def __enter__(self) -> Capture:
        event.listen(self.engine, "before_cursor_execute", self._before)
        event.listen(self.engine, "after_cursor_execute", self._after)
        return self

    def __exit__(self, *_exc: Any) -> None:
        event.remove(self.engine, "before_cursor_execute", self._before)
        event.remove(self.engine, "after_cursor_execute", self._after)


async def explain(data: Data, engine: Any, captured: list[list[Any]], title: str) -> None:
    """The plans of captured statements (ANALYZE, BUFFERS on PostgreSQL)."""
    print(f"\n## EXPLAIN: {title}")
    for statement, parameters, seconds in captured:
        if not statement.lstrip().upper().startswith("SELECT"):
            continue
        first_line = " ".join(statement.split())[:110]
        print(f"\n-- {seconds * 1000:.1f} ms in the app: {first_line}…")
        async with engine.connect() as connection:
            prefix = (
                "EXPLAIN (ANALYZE, BUFFERS) "
                if data.where.name == "postgres"
                else "EXPLAIN QUERY PLAN "
            )
            rows = await connection.exec_driver_sql(prefix + statement, parameters)
            for row in rows:
                print("   ", " | ".join(str(c) for c in row))


# --- the register's floor -------------------------------------------------------------------------


class _Abort(Exception):
    pass


async def register_statement(
    data: Data, reports: Any, leader: Principal, period: Period, now: datetime
) -> tuple[str, Any]:
    """The register's SELECT as the app sends it (text, driver parameters), captured and not run."""
    got: list[tuple[str, Any]] = []

    def grab(_c: Any, _cur: Any, statement: str, parameters: Any, *_a: Any) -> None:
        if "open_actions" in statement or "corrective_actions" in statement:
            got.append((statement, parameters))
            raise _Abort

    async with reports.session() as session, session.begin():
        queries = ReportRepository(session, leader, data.settings.zone, now, reports.dialect)
        scope = await queries.scope(None)
        statement = queries._register(scope, period).order_by(Finding.observed_at, Finding.id)
        event.listen(reports.engine.sync_engine, "before_cursor_execute", grab)
        try:
            await session.execute(statement)
        except Exception:  # noqa: S110 - only the statement's text is wanted, not its result
            pass
        finally:
            event.remove(reports.engine.sync_engine, "before_cursor_execute", grab)
    return got[0]


async def copy_floor(data: Data, sql: str, parameters: Any) -> tuple[float, int]:
    """PostgreSQL's own COPY (SELECT …) TO STDOUT WITH CSV into a null sink: (seconds, bytes)."""
    size = 0

    async def sink(chunk: bytes) -> None:
        nonlocal size
        size += len(chunk)

    connection = await asyncpg.connect(_asyncpg_dsn(data.where.database_url))
    try:
        await connection.execute("SET plan_cache_mode = force_custom_plan")
        started = time.perf_counter()
        async with connection.transaction(isolation="repeatable_read", readonly=True):
            await connection.copy_from_query(sql, *parameters, output=sink, format="csv")
        return time.perf_counter() - started, size
    finally:
        await connection.close()


def sqlite_floor(data: Data, sql: str, parameters: Any) -> tuple[float, int]:
    """SQLite has no COPY: the same SELECT through sqlite3, rows written by `csv` to a null sink."""

    class Null:
        size = 0

        def write(self, s: str) -> None:
            self.size += len(s)

    file = data.where.database_url.split("///", 1)[1]
    connection = sqlite3.connect(file)
    try:
        sink = Null()
        writer = csv.writer(sink)
        started = time.perf_counter()
        cursor = connection.execute(sql, parameters)
        while rows := cursor.fetchmany(2000):
            writer.writerows(rows)
        return time.perf_counter() - started, sink.size
    finally:
        connection.close()


# --- the register over a real server -----------------------------------------------------------
#
# httpx.ASGITransport gathers a whole response before it answers, so an in-process download
# measures the body, not the app's streaming path. The register's memory is measured on
# `inspection serve` itself, in a subprocess: one worker (uvicorn runs it in the process it was
# started as, so its pid is the server's), read through /proc/<pid>.


def _free_port() -> int:
    """A port nobody listens on now (the server binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _proc_kib(pid: int, key: str) -> int:
    """A /proc/<pid>/status value in KiB (VmRSS, VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


class RssSampler:
    """A process's resident memory during a block: VmRSS read every `interval` seconds in a
    thread (the event loop is busy receiving), and VmHWM, the kernel's own peak, reset to the
    current RSS on entry (/proc/<pid>/clear_refs "5") so it is the block's peak. `baseline` is
    VmRSS on entry; `growth` the peak over it (KiB)."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.pid = pid
        self.interval = interval
        self.baseline = self.hwm = self.sampled = self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            with contextlib.suppress(OSError, KeyError):  # the process may end meanwhile
                self.sampled = max(self.sampled, _proc_kib(self.pid, "VmRSS"))
                self.samples += 1

    def __enter__(self) -> RssSampler:
        Path(f"/proc/{self.pid}/clear_refs").write_text("5")
        self.baseline = self.sampled = _proc_kib(self.pid, "VmRSS")
        self._thread.start()
        return self

    def __exit__(self, *_exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.hwm = _proc_kib(self.pid, "VmHWM")

    @property
    def peak(self) -> int:
        """The higher of the kernel's peak and the sampled one (KiB)."""
        return max(self.hwm, self.sampled)

    @property
    def growth(self) -> int:
        """Peak RSS over the baseline (KiB)."""
        return self.peak - self.baseline


@dataclass
class Server:
    """A running `inspection serve`."""

    pid: int
    base_url: str
    log: Path


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the bench's process goes (even SIGKILLed, when
    `finally` never runs), so no server outlives its bench. prctl(PR_SET_PDEATHSIG = 1)."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)


def _tail(path: Path, lines: int = 20) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@contextlib.asynccontextmanager
async def served(data: Data, work: Path) -> AsyncIterator[Server]:
    """`inspection serve --workers 1` on a free port against the bench's database, configured
    only by its INSPECTION_* variables (the bench's own are not passed on); stopped on exit,
    whatever happens (SIGTERM, then SIGKILL after 15 s)."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("INSPECTION_")}
    env |= {
        "INSPECTION_DATABASE_URL": data.where.database_url,
        "INSPECTION_DATA_DIR": str(work),
        "INSPECTION_SECRET_KEY": data.settings.secret_key,
        "INSPECTION_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "INSPECTION_ARGON2_MEMORY_KIB": str(ARGON2_MEMORY_KIB),
        "INSPECTION_AUTO_MIGRATE": "false",  # migrated by `ensure_data` already
        "INSPECTION_DATABASE_POOL_SIZE": str(data.settings.database_pool_size),
        "INSPECTION_LOG_LEVEL": "WARNING",
    }
    script = Path(sys.executable).with_name("inspection")
    command = (
        [str(script)]
        if script.exists()
        else [sys.executable, "-c", "from inspection.cli import main; main()"]
    )
    command += ["serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    log = work / "serve.log"
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            *command,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,  # prctl only, before exec (safe with threads)
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base_url, timeout=5) as client:
            deadline = time.monotonic() + 120
            while True:
                if process.returncode is not None:
                    raise RuntimeError(
                        f"inspection serve exited ({process.returncode}):\n{_tail(log)}"
                    )
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get("/health/live")).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"inspection serve did not answer in 120 s:\n{_tail(log)}")
                await asyncio.sleep(0.2)
        yield Server(process.pid, base_url, log)
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 15)
            except TimeoutError:
                process.kill()
                await process.wait()


async def sign_in(client: httpx.AsyncClient, username: str) -> dict[str, str]:
    """The bearer header of `username` (the demo password), signed in over `client`."""
    r = await client.post(
        "/api/v1/auth/token", json={"username": username, "password": DEMO_PASSWORD}
    )
    r.raise_for_status()
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


@dataclass
class Download:
    """One register download from the server: wall time, what came, the server's memory."""

    seconds: float
    size: int
    lines: int
    rss: RssSampler


async def server_download(
    client: httpx.AsyncClient, headers: dict[str, str], params: dict[str, str], pid: int
) -> Download:
    """`GET /api/v1/reports/findings?format=csv` streamed into a null sink (bytes and line ends
    counted, nothing kept), the server's RSS sampled meanwhile."""
    size = lines = 0
    with RssSampler(pid) as rss:
        started = time.perf_counter()
        async with client.stream(
            "GET", "/api/v1/reports/findings", params=params | {"format": "csv"}, headers=headers
        ) as r:
            r.raise_for_status()
            async for chunk in r.aiter_raw():
                size += len(chunk)
                lines += chunk.count(b"\n")
        seconds = time.perf_counter() - started
    return Download(seconds, size, lines, rss)


# --- the run ------------------------------------------------------------------------------------


@dataclass
class Context:
    """What every section of one run needs: the data, the app's client and the readers."""

    data: Data
    reports: Any  # the reports' own engine (db.engine.ReportsDatabase)
    client: httpx.AsyncClient  # the app in-process (httpx.ASGITransport)
    tokens: dict[str, dict[str, str]]
    # label -> (principal, `under`, bare scope, the paths of the scope's children)
    cases: dict[str, tuple[Principal, UUID | None, BareScope, list[str]]]
    period: Period
    now: datetime
    paths: dict[UUID, str]
    codes: dict[UUID, str]
    district: Unit

    @property
    def settings(self) -> Settings:
        """The bench's settings."""
        return self.data.settings

    @property
    def period_q(self) -> dict[str, str]:
        """The period as query parameters."""
        return {"from": self.period.first.isoformat(), "to": self.period.last.isoformat()}


async def _rounds(
    args: argparse.Namespace,
    labels: list[str],
    calls: Callable[[str], list[tuple[str, Callable[[], Awaitable[Any]]]]],
) -> tuple[dict[str, dict[str, list[float]]], dict[str, dict[str, list[float]]]]:
    """Times of each label's calls, round by round (`--warmups` left out), the order of the calls
    reversed every other round; and each call's ratio to the first call ("bare") of its round."""
    times: dict[str, dict[str, list[float]]] = {label: {} for label in labels}
    ratios: dict[str, dict[str, list[float]]] = {label: {} for label in labels}
    for rnd in range(args.warmups + args.rounds):
        for label in labels:
            order = calls(label)
            if rnd % 2:
                order.reverse()
            got = {k: await _time(f) for k, f in order}
            if rnd < args.warmups:
                continue
            for k, v in got.items():
                times[label].setdefault(k, []).append(v)
                if k != "bare":
                    ratios[label].setdefault(k, []).append(v / got["bare"])
    return times, ratios


def _print_rounds(
    times: dict[str, dict[str, list[float]]], ratios: dict[str, dict[str, list[float]]]
) -> None:
    for label, t in times.items():
        print(f"  {label}:")
        print(f"    bare SQL     {_ms(t['bare'])}")
        for k in ("service", "http"):
            ratio = statistics.median(t[k]) / statistics.median(t["bare"])
            per_round = statistics.median(ratios[label][k])
            print(
                f"    {k:<12} {_ms(t[k])}  ratio of p50s {ratio:.2f} "
                f"(median per round {per_round:.2f}; target ≤ 2)"
            )


def _breakdown(label: str, app: list[list[Any]], bare: list[list[Any]]) -> None:
    """Per-statement driver times of one app call and one bare call."""
    for tag, items in (("app", app), ("bare", bare)):
        parts = [f"{t * 1000:.0f}" for st, _p, t in items if "SELECT" in st[:20]]
        total = sum(t for _s, _p, t in items) * 1000
        print(f"    {label} {tag}: {total:.0f} ms = {' + '.join(parts)}")


async def _against_bare(
    ctx: Context,
    args: argparse.Namespace,
    report: str,
    title: str,
    bare_call: Callable[[str], Awaitable[Any]],
) -> None:
    """One report (`ReportService.<report>`, `GET /api/v1/reports/<report>`) against its bare
    twin (`bare_call(label)`): the statements of one call of each, then the interleaved rounds."""
    first, last = ctx.period.first.isoformat(), ctx.period.last.isoformat()

    def service(who: Principal, now: datetime) -> Callable[..., Awaitable[Any]]:
        method: Callable[..., Awaitable[Any]] = getattr(
            ReportService(ctx.reports, who, ctx.settings, now), report
        )
        return method

    print(f"\n  statements of one {title} (ms in the driver; first words):")
    for label, (who, under, _b, _c) in ctx.cases.items():
        with Capture(ctx.reports.engine) as cap:
            await service(who, ctx.now)(under, first, last)
        with Capture(ctx.reports.engine) as bcap:
            await bare_call(label)
        _breakdown(label, cap.items, bcap.items)

    def calls(label: str) -> list[tuple[str, Callable[[], Awaitable[Any]]]]:
        who, under, _b, _c = ctx.cases[label]
        params = ctx.period_q | ({"under": str(under)} if under else {})

        async def service_call() -> None:
            await service(who, datetime.now(UTC))(under, first, last)

        async def http_call() -> None:
            r = await ctx.client.get(
                f"/api/v1/reports/{report}", params=params, headers=ctx.tokens[who.username]
            )
            r.raise_for_status()

        return [("bare", partial(bare_call, label)), ("service", service_call), ("http", http_call)]

    times, ratios = await _rounds(args, list(ctx.cases), calls)
    print(f"\n### {title}, {args.rounds} rounds (+{args.warmups} warm-up); load {_load()}")
    _print_rounds(times, ratios)


async def summary_section(ctx: Context, args: argparse.Namespace) -> None:
    """The summary: the app's numbers checked against the bare SQL's, then timed against it."""
    reports, settings, period = ctx.reports, ctx.settings, ctx.period
    first, last = period.first.isoformat(), period.last.isoformat()
    bares = {}
    print("\n  summary:")
    for label, (who, under, bscope, children) in ctx.cases.items():
        summary = await ReportService(reports, who, settings, ctx.now).summary(under, first, last)
        bare = bares[label] = Bare(reports.dialect, bscope, settings, ctx.now)
        async with reports.session() as session, session.begin():
            raw = await bare.run(session, period)
        wrong = _same(bare_numbers(raw, children), app_numbers(summary, ctx.paths))
        print(
            f"  {label}: {summary.findings.total:,} findings, {summary.actions.total:,} "
            f"actions, {len(summary.by_unit)} units; bare SQL gives the same numbers: "
            f"{'yes' if not wrong else 'NO, differs in ' + ', '.join(wrong)}"
        )

    if args.explain:
        for label in ("province (leader)", "district (head)"):
            who, under, _b, _c = ctx.cases[label]
            with Capture(reports.engine) as cap:
                await ReportService(reports, who, settings, ctx.now).summary(under, first, last)
            await explain(ctx.data, reports.engine, cap.items, f"summary, {label}")
        with Capture(reports.engine) as cap:
            async with reports.session() as session, session.begin():
                await bares["province (leader)"].run(session, period)
        await explain(ctx.data, reports.engine, cap.items, "bare, province")

    async def bare_call(label: str) -> None:
        async with reports.session() as session, session.begin():
            await bares[label].run(session, period)

    await _against_bare(ctx, args, "summary", "summary", bare_call)


async def head_twin_holds(ctx: Context) -> bool:
    """Whether the bare twin may read the district head's scope as the district's path: only if
    no unit below the district has a head of its own, since the head then is the head concerned
    (`access.scopes.unit_concerned`) by every unit of it, so sees every proposal and every
    official."""
    district = ctx.district
    async with ctx.reports.session() as session:
        below = await session.scalar(
            select(func.count())
            .select_from(Grant)
            .join(Unit, Unit.id == Grant.unit_id)
            .where(
                Grant.role == Role.UNIT_HEAD.value,
                Unit.path.startswith(district.path),
                Unit.path != district.path,
            )
        )
    return not below


async def discipline_section(ctx: Context, args: argparse.Namespace) -> None:
    """The discipline report: the app's numbers checked against the twin's, then timed."""
    reports, settings, period = ctx.reports, ctx.settings, ctx.period
    first, last = period.first.isoformat(), period.last.isoformat()
    if not await head_twin_holds(ctx):
        print(f"  NOTE: a unit below {DISTRICT} has its own head: the head's twin overcounts")
    bares: dict[str, BareDiscipline] = {}
    print("\n  discipline report:")
    for label, (who, under, bscope, children) in ctx.cases.items():
        report = await ReportService(reports, who, settings, ctx.now).discipline(under, first, last)
        bare = bares[label] = BareDiscipline(
            reports.dialect, bscope, settings, ctx.now, children, ctx.codes
        )
        async with reports.session() as session, session.begin():
            raw = await bare.run(session, period)
        got, want = bare.numbers(raw), app_discipline_numbers(report, ctx.paths)
        wrong = [k for k in want if want[k] != got[k]]
        # The HTTP answer too, decoded as the schema: the same numbers as the service's.
        r = await ctx.client.get(
            "/api/v1/reports/discipline",
            params=ctx.period_q | ({"under": str(under)} if under else {}),
            headers=ctx.tokens[who.username],
        )
        r.raise_for_status()
        http = app_discipline_numbers(
            msgspec.json.decode(r.content, type=schemas.DisciplineReport), ctx.paths
        )
        wrong += [f"{k} (HTTP)" for k in want if http[k] != got[k] and k not in wrong]
        print(
            f"  {label}: {report.proposals.total:,} proposals, "
            f"{len(report.flagged_officials):,} flagged officials, "
            f"{len(report.units_by_findings_per_visit)} units ranked, "
            f"{report.overdue_actions.total:,} overdue actions, {len(report.deadlines)} deadlines;"
            f" bare SQL gives the same numbers: "
            f"{'yes' if not wrong else 'NO, differs in ' + ', '.join(wrong)}"
        )
        for k in wrong:
            key, app_side = (k[:-7], http) if k.endswith(" (HTTP)") else (k, want)
            print(f"    {k}: {_explain_difference(got[key], app_side[key])}")

    if args.explain:
        who, under, _b, _c = ctx.cases["province (leader)"]
        with Capture(reports.engine) as cap:
            await ReportService(reports, who, settings, ctx.now).discipline(under, first, last)
        await explain(ctx.data, reports.engine, cap.items, "discipline, province, leader")

    async def bare_call(label: str) -> None:
        # The twin's time includes its Python: folding names and counting incidents.
        async with reports.session() as session, session.begin():
            raw = await bares[label].run(session, period)
        bares[label].numbers(raw)

    await _against_bare(ctx, args, "discipline", "discipline report", bare_call)


async def pdf_section(ctx: Context, args: argparse.Namespace) -> None:
    """The PDF summary end to end, in-process."""
    pdf: list[float] = []
    size = 0
    for rnd in range(1 + args.rounds):
        started = time.perf_counter()
        r = await ctx.client.get(
            "/api/v1/reports/summary",
            params=ctx.period_q | {"format": "pdf"},
            headers=ctx.tokens[LEADER],
        )
        r.raise_for_status()
        size = len(r.content)
        if rnd:
            pdf.append(time.perf_counter() - started)
    print(
        f"\n### PDF summary (province, leader), {args.rounds} rounds after one; "
        f"{size:,} bytes; load {_load()}"
    )
    print(f"  GET format=pdf {_ms(pdf)}  (target p50 ≤ 1000 ms)")


def _copy_literals(sql: str, parameters: Any) -> str:
    """The register's SELECT with its parameters written in: COPY takes none (asyncpg's own
    quoting is not exposed; these are UUIDs, strings and instants)."""
    args = tuple(parameters)
    for n in range(len(args), 0, -1):
        value = args[n - 1]
        literal = (
            f"'{value.isoformat()}'::timestamptz" if isinstance(value, datetime) else f"'{value}'"
        )
        sql = sql.replace(f"${n}::", f"{literal}::").replace(f"${n}", literal)
    return sql


async def register_section(ctx: Context, args: argparse.Namespace, leader: Principal) -> None:
    """The register as CSV from `inspection serve` (time and the server's RSS) against the
    database's own floor, alternating which goes first."""
    data, reports = ctx.data, ctx.reports
    sql, parameters = await register_statement(data, reports, leader, ctx.period, ctx.now)
    if args.explain:
        await explain(data, reports.engine, [[sql, parameters, 0.0]], "register")
    postgres = data.where.name == "postgres"
    copy_sql = _copy_literals(sql, parameters) if postgres else ""

    async def floor() -> tuple[float, int]:
        if postgres:
            return await copy_floor(data, copy_sql, ())
        return await asyncio.to_thread(sqlite_floor, data, sql, parameters)

    app_t, floor_t, growth, peaks, baselines = [], [], [], [], []
    rows_n = 0
    with tempfile.TemporaryDirectory(prefix="inspection-bench-serve-") as work:
        async with (
            served(data, Path(work)) as server,
            httpx.AsyncClient(base_url=server.base_url, timeout=600) as client,
        ):
            headers = await sign_in(client, LEADER)
            idle = _proc_kib(server.pid, "VmRSS")
            print(
                f"\n  inspection serve (1 worker, pid {server.pid}, {server.base_url}): "
                f"RSS {idle / 1024:.1f} MiB after start and sign-in"
            )
            for rnd in range(1 + args.csv_rounds):
                if rnd % 2:
                    f = await floor()
                    d = await server_download(client, headers, ctx.period_q, server.pid)
                else:
                    d = await server_download(client, headers, ctx.period_q, server.pid)
                    f = await floor()
                rows_n = d.lines - 1  # the header row; the rows' text holds no line breaks
                rss = d.rss
                print(
                    f"    round {rnd}: server {d.seconds:.2f} s ({d.size:,} bytes, "
                    f"{rows_n:,} rows); server RSS {rss.baseline / 1024:.1f} MiB before, peak "
                    f"{rss.peak / 1024:.1f} MiB (VmHWM {rss.hwm / 1024:.1f}, sampled max "
                    f"{rss.sampled / 1024:.1f} in {rss.samples} samples), growth "
                    f"+{rss.growth / 1024:.1f} MiB; floor {f[0]:.2f} s ({f[1]:,} bytes)"
                )
                if rnd:
                    app_t.append(d.seconds)
                    floor_t.append(f[0])
                    growth.append(rss.growth / 1024)
                    peaks.append(rss.peak / 1024)
                    baselines.append(rss.baseline / 1024)
    floor_name = "COPY … TO STDOUT WITH CSV" if postgres else "sqlite3 + csv"
    print(
        f"\n### register CSV (province, leader, {rows_n:,} rows) from inspection serve, "
        f"{args.csv_rounds} rounds after one; load {_load()}"
    )
    print(f"  server GET format=csv  {_ms(app_t)}")
    print(
        f"  server RSS: before {min(baselines):.1f}-{max(baselines):.1f} MiB, peak max "
        f"{max(peaks):.1f} MiB, growth max +{max(growth):.1f} MiB (target < 64)"
    )
    print(f"  floor ({floor_name}) {_ms(floor_t)}")
    print(
        f"  ratio of p50s {statistics.median(app_t) / statistics.median(floor_t):.2f} (target ≤ 4)"
    )


async def run(name: str, args: argparse.Namespace) -> None:
    """One back-end: the data, then each section not skipped."""
    data = await ensure_data(name, args)
    settings = data.settings
    zone = settings.zone
    last = data.until.astimezone(zone).date()
    first = last - timedelta(days=364)
    leader = await principal_of(settings, LEADER)
    head = await principal_of(settings, HEAD)
    reports = create_reports_database(settings)
    app = await make_app(settings)
    async with reports.session() as session:
        units = {r.code: r for r in (await session.execute(select(Unit))).scalars()}
        counts = {
            t: await session.scalar(text(f"SELECT count(*) FROM {t}"))
            for t in ("units", "visits", "findings", "corrective_actions", "discipline_proposals")
        }
    province, district = units["P"], units[DISTRICT]

    def children(of: Unit) -> list[str]:
        return sorted(u.path for u in units.values() if u.parent_id == of.id)

    print(f"\n## {data.where.version}: {counts}; period {first} to {last}; load {_load()}")
    now = datetime.now(UTC)
    p_children, d_children = children(province), children(district)
    cases = {
        "province (leader)": (
            leader,
            None,
            BareScope(None, len(p_children[0])),
            p_children,
        ),
        "district (leader)": (
            leader,
            district.id,
            BareScope(district.path, len(d_children[0])),
            d_children,
        ),
        "district (head)": (
            head,
            None,
            BareScope(district.path, len(d_children[0]), head=True),
            d_children,
        ),
    }
    try:
        async with app.lifespan():
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://bench", timeout=600
            ) as client:
                tokens = {user: await sign_in(client, user) for user in (LEADER, HEAD)}
                ctx = Context(
                    data,
                    reports,
                    client,
                    tokens,
                    cases,
                    Period.of(first, last, zone, now),
                    now,
                    {u.id: u.path for u in units.values()},
                    {u.id: u.code for u in units.values()},
                    district,
                )
                if "summary" not in args.skip:
                    await summary_section(ctx, args)
                if "discipline" not in args.skip:
                    await discipline_section(ctx, args)
                if "pdf" not in args.skip:
                    await pdf_section(ctx, args)
                if "register" not in args.skip:
                    await register_section(ctx, args, leader)
    finally:
        await reports.dispose()


async def main(args: argparse.Namespace) -> None:
    header(f"reports at {args.findings:,} findings")
    print(f"argon2 {ARGON2_MEMORY_KIB} KiB (set-up only); uptime load {_load()}")
    for name in args.backend or ["sqlite"]:
        await run(name, args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres"], action="append")
    parser.add_argument("--units", type=int, default=200)
    parser.add_argument("--visits", type=int, default=1_000)
    parser.add_argument("--findings", type=int, default=100_000)
    parser.add_argument("--actions", type=int, default=None, help="default: 30%% of findings")
    parser.add_argument(
        "--proposals", type=int, default=None, help="default: 0.5%% of findings (5,000 at 1M)"
    )
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument(
        "--data-dir",
        default=str(Path(tempfile.gettempdir()) / "inspection-bench-reports"),
        help="where the generated SQLite databases are kept between runs",
    )
    parser.add_argument("--regenerate", action="store_true")
    parser.add_argument("--setup-only", action="store_true")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--warmups", type=int, default=2)
    parser.add_argument("--csv-rounds", type=int, default=3)
    parser.add_argument("--explain", action="store_true")
    parser.add_argument(
        "--skip", action="append", default=[], choices=["summary", "discipline", "pdf", "register"]
    )
    return parser


if __name__ == "__main__":
    _args = _parser().parse_args()
    if _args.actions is None:
        _args.actions = _args.findings * 3 // 10
    if _args.proposals is None:
        _args.proposals = _args.findings // 200
    if _args.setup_only:
        asyncio.run(setup_only(_args))
    else:
        asyncio.run(main(_args))
