"""Listing findings at 100,000 findings: `GET /api/v1/findings` with two filters, two viewers.

The world: a province with a department, 10 districts of 15 communes each (one JSON unit import),
a planner on the province, the head of district D01, 8 inspectors and a checklist, all through the
API. Then SQLAlchemy Core inserts, in batches: 240 approved plans whose periods are spread over
the year to 2026-11-22 (two in three scheduled, the rest unannounced), each with a two-inspector
team and 12 commune visits (most checked in and concluded, some never checked in or cancelled),
and 100,000 findings at the checked-in visits: categories, severities and statuses (20% draft,
45% submitted, 25% closed, 10% dismissed) at random, observed during the visit, with folded
`search_text`. PostgreSQL gets `ANALYZE` after the load; SQLite gets nothing (as in production).

Timed, interleaved, one sequential client, default page size (50):

- `?category=late_dossiers&status=submitted`
- `?under=<D01>&observed_from=<120 days before 2026-11-22>`

each as the planner (sees every finding) and as the head of D01 (visits to D01's communes of
approved plans, scheduled or checked in; submitted findings only). WARMUPS, then REQUESTS requests
per query and viewer; p50/p95 in ms (target: p95 < 50 ms on PostgreSQL). A probe counts the SQL
statements of one request and the time inside the driver. When a query misses the target on
PostgreSQL (or with `--explain`), its page query is captured and its plan printed (`EXPLAIN
(ANALYZE, BUFFERS)` on PostgreSQL, `EXPLAIN QUERY PLAN` on SQLite). `--index "CREATE INDEX ..."`
(repeatable) re-times every query after creating that index in the scratch database, to check a
candidate fix without touching the migrations.

Run: `.venv/bin/python bench/findings_list.py [--explain] [--index SQL]...` (SQLite; PostgreSQL
too with INSPECTION_TEST_*); about 30 s per database (world 5 s, load 8-12 s, timing 10-15 s), plus
about 10 s per database for each `--index`.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sqlalchemy import event, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from _common import (
    ADMIN_PASSWORD,
    PASSWORD,
    Api,
    Backend,
    StatementCounter,
    _ok,
    _post,
    backend,
    backends,
    header,
    make_app,
    running,
    settings_for,
)
from inspection.db.engine import WRITE_OPTION
from inspection.findings.models import Category, Finding, FindingStatus, Severity
from inspection.kit.ids import new_id
from inspection.kit.search import fold
from inspection.plans.models import Plan, PlanKind, PlanStatus, TeamMember, TeamRole, Visit

FINDINGS = 100_000
BATCH = 5_000
DISTRICTS = 10
COMMUNES = 15  # per district
PLANS = 240
VISITS_PER_PLAN = 12
INSPECTORS = 8
TODAY = date(2026, 11, 22)
OBSERVED_FROM = TODAY - timedelta(days=120)
WARMUPS = 5
REQUESTS = 60
TARGET_P95_MS = 50.0
ZONE = ZoneInfo("Asia/Ho_Chi_Minh")

TITLES = (
    "Hồ sơ đăng ký khai sinh trả kết quả trễ hạn",
    "Yêu cầu nộp thêm bản sao hộ khẩu",
    "Không niêm yết thủ tục chứng thực",
    "Công chức một cửa vắng mặt giờ hành chính",
    "Thái độ thiếu tôn trọng với người dân",
    "Máy lấy số thứ tự không hoạt động",
    "Cổng dịch vụ công không tiếp nhận hồ sơ",
    "Sổ theo dõi hồ sơ ghi chép không đầy đủ",
)
DESCRIPTIONS = (
    "Đoàn kiểm tra ghi nhận tại Bộ phận tiếp nhận và trả kết quả.",
    "Người dân phản ánh trực tiếp với đoàn, có xác nhận của công chức.",
    "Đối chiếu sổ theo dõi với phần mềm một cửa điện tử.",
    "Kiểm tra ngẫu nhiên hồ sơ trong tháng trước.",
)
STATUSES = (
    (FindingStatus.DRAFT, 20),
    (FindingStatus.SUBMITTED, 45),
    (FindingStatus.CLOSED, 25),
    (FindingStatus.DISMISSED, 10),
)


# --- the world, through the API ---------------------------------------------------------------


async def world(client: Any) -> dict[str, Any]:
    """Units, users and a checklist through the API; returns ids and the two viewers' tokens."""
    admin = await Api.sign_in(client, "admin", ADMIN_PASSWORD)
    rows = [
        {"code": "P", "name": "Tỉnh Thái Nguyên", "kind": "province"},
        {"code": "P-SNV", "name": "Sở Nội vụ", "kind": "department", "parent_code": "P"},
    ]
    for d in range(1, DISTRICTS + 1):
        district = f"P-D{d:02}"
        rows.append(
            {"code": district, "name": f"Huyện số {d}", "kind": "district", "parent_code": "P"}
        )
        rows.extend(
            {
                "code": f"{district}-C{c:02}",
                "name": f"Xã số {c} huyện {d}",
                "kind": "commune",
                "parent_code": district,
            }
            for c in range(1, COMMUNES + 1)
        )
    imported = await _post(admin, "/api/v1/units/import", {"units": rows}, status=201)
    units = {u["code"]: uuid.UUID(u["id"]) for u in imported["units"]}
    snv = str(units["P-SNV"])
    people = [("planner", "planner", "P"), ("head", "unit_head", "P-D01")]
    people += [(f"inspector{i}", "inspector", "P-SNV") for i in range(1, INSPECTORS + 1)]
    users = {}
    for username, role, unit in people:
        created = await _post(
            admin,
            "/api/v1/users",
            {
                "username": username,
                "full_name": username.title(),
                "password": PASSWORD,
                "unit_id": snv,
                "grants": [{"role": role, "unit_id": str(units[unit])}],
            },
        )
        users[username] = uuid.UUID(created["id"])
    criteria = [
        {"code": c, "text": f"Tiêu chí {c}", "category": "dossier_handling", "weight": 1.0}
        for c in ("C01", "C02", "C03")
    ]
    checklist = await _post(admin, "/api/v1/checklists", {"title": "Một cửa", "criteria": criteria})
    return {
        "units": units,
        "users": users,
        "checklist": uuid.UUID(checklist["id"]),
        "planner": await Api.sign_in(client, "planner", PASSWORD),
        "head": await Api.sign_in(client, "head", PASSWORD),
    }


# --- plans, visits and findings, through Core -------------------------------------------------


def _local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZONE).astimezone(UTC)


def rows_for(w: dict[str, Any], rng: random.Random) -> dict[str, list[dict[str, Any]]]:
    """Plans, teams, visits and findings as Core rows."""
    now = datetime.now(UTC)
    units: dict[str, uuid.UUID] = w["units"]
    communes = [(code, uid) for code, uid in units.items() if "-C" in code]
    inspectors = [w["users"][f"inspector{i}"] for i in range(1, INSPECTORS + 1)]
    start = TODAY - timedelta(days=365)
    plans, team, visits = [], [], []
    checked_in: list[dict[str, Any]] = []
    for p in range(PLANS):
        period_start = start + timedelta(days=p * 365 // PLANS)
        period_end = period_start + timedelta(days=20)
        plan_id = new_id()
        scheduled = p % 3 != 2
        plans.append(
            {
                "id": plan_id,
                "kind": (PlanKind.SCHEDULED if scheduled else PlanKind.UNANNOUNCED).value,
                "status": (
                    PlanStatus.COMPLETED
                    if period_end < TODAY - timedelta(days=14)
                    else PlanStatus.IN_PROGRESS
                ).value,
                "title": f"Kiểm tra công vụ số {p + 1}",
                "legal_basis": f"Quyết định số {100 + p}/QĐ-SNV",
                "focus": ["dossier_handling", "discipline"],
                "period_start": period_start,
                "period_end": period_end,
                "checklist_id": w["checklist"],
                "unit_id": units["P"],
                "created_by": w["users"]["planner"],
                "approved_at": _local(period_start - timedelta(days=7), 10),
                "approved_by": w["users"]["planner"],
                "version": 1,
                "created_at": now,
                "updated_at": now,
            }
        )
        for role, user in zip(
            (TeamRole.LEAD, TeamRole.MEMBER), rng.sample(inspectors, 2), strict=True
        ):
            team.append(
                {
                    "id": new_id(),
                    "plan_id": plan_id,
                    "user_id": user,
                    "role": role.value,
                    "version": 1,
                    "created_at": now,
                    "updated_at": now,
                }
            )
        for _code, unit_id in rng.sample(communes, VISITS_PER_PLAN):
            window_start = period_start + timedelta(days=rng.randrange(0, 18))
            window_end = window_start + timedelta(days=2)
            fate = rng.random()
            visit = {
                "id": new_id(),
                "plan_id": plan_id,
                "unit_id": unit_id,
                "window_start": window_start,
                "window_end": window_end,
                "status": "planned",
                "checked_in_at": None,
                "checked_in_by": None,
                "version": 1,
                "created_at": now,
                "updated_at": now,
            }
            if fate < 0.03:
                visit["status"] = "cancelled"
                visit["cancelled_at"] = _local(window_start - timedelta(days=1), 9)
                visit["cancel_reason"] = "Đơn vị sáp nhập"
            elif fate >= 0.08:  # 5% never checked in; the rest were
                visit["checked_in_at"] = _local(window_start, 8, rng.randrange(0, 60))
                visit["checked_in_by"] = team[-2]["user_id"]
                visit["check_in_lat"], visit["check_in_lon"] = 21.59, 105.84
                visit["check_in_accuracy_m"] = 12.0
                ended = window_end < TODAY
                visit["status"] = "concluded" if ended else "checked_in"
                if ended:
                    visit["checked_out_at"] = _local(window_end, 16)
                    visit["concluded_at"] = _local(window_end, 17)
                    visit["conclusion"] = "Đơn vị cơ bản thực hiện đúng quy định."
                checked_in.append({**visit, "lead": team[-2]["user_id"]})
            visits.append(visit)
    findings = [_finding(rng, checked_in, n, now) for n in range(FINDINGS)]
    return {"plans": plans, "team": team, "visits": visits, "findings": findings}


def _finding(
    rng: random.Random, checked_in: list[dict[str, Any]], n: int, now: datetime
) -> dict[str, Any]:
    visit = rng.choice(checked_in)
    observed = visit["checked_in_at"] + timedelta(minutes=rng.randrange(10, 2 * 24 * 60))
    status = rng.choices([s for s, _ in STATUSES], weights=[w for _, w in STATUSES])[0]
    title = f"{rng.choice(TITLES)} ({n})"
    description = rng.choice(DESCRIPTIONS)
    submitted = status in (FindingStatus.SUBMITTED, FindingStatus.CLOSED) or (
        status == FindingStatus.DISMISSED and rng.random() < 0.5
    )
    return {
        "id": new_id(),
        "visit_id": visit["id"],
        "plan_id": visit["plan_id"],
        "unit_id": visit["unit_id"],
        "criterion_code": rng.choice(("C01", "C02", "C03", None)),
        "category": rng.choice(list(Category)).value,
        "severity": rng.choice(list(Severity)).value,
        "title": title,
        "description": description,
        "search_text": fold(f"{title} {description}"),
        "observed_at": observed,
        "lat": 21.5 + rng.random() / 5,
        "lon": 105.7 + rng.random() / 5,
        "accuracy_m": float(rng.randrange(5, 40)),
        "officials": [{"name": "Nguyễn Văn A", "position": "Công chức tư pháp - hộ tịch"}],
        "recommendation": "Chấm dứt ngay việc yêu cầu giấy tờ ngoài quy định.",
        "status": status.value,
        "created_by": visit["checked_in_by"],
        "submitted_at": observed + timedelta(hours=3) if submitted else None,
        "submitted_by": visit["lead"] if submitted else None,
        "dismissed_at": observed + timedelta(days=1) if status == FindingStatus.DISMISSED else None,
        "dismiss_reason": "Trùng lặp" if status == FindingStatus.DISMISSED else None,
        "version": 1,
        "created_at": now,
        "updated_at": now,
    }


async def load(engine: AsyncEngine, rows: dict[str, list[dict[str, Any]]]) -> None:
    """Core executemany in batches, one transaction each; ANALYZE on PostgreSQL."""
    writer = engine.execution_options(**{WRITE_OPTION: True})
    for model, key in ((Plan, "plans"), (TeamMember, "team"), (Visit, "visits")):
        async with writer.begin() as connection:
            # Rows differ in which optional columns they set: one executemany per column set.
            by_shape: dict[tuple[str, ...], list[dict[str, Any]]] = {}
            for row in rows[key]:
                by_shape.setdefault(tuple(sorted(row)), []).append(row)
            for shaped in by_shape.values():
                await connection.execute(insert(model), shaped)
    findings = rows["findings"]
    for start in range(0, len(findings), BATCH):
        async with writer.begin() as connection:
            await connection.execute(insert(Finding), findings[start : start + BATCH])
    if engine.dialect.name == "postgresql":
        async with engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.exec_driver_sql("ANALYZE")


# --- timing -----------------------------------------------------------------------------------


def queries(w: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {
        "category+status": {"category": "late_dossiers", "status": "submitted"},
        "under+observed_from": {
            "under": str(w["units"]["P-D01"]),
            "observed_from": OBSERVED_FROM.isoformat(),
        },
    }


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[18]


class Capture:
    """The page query (SELECT ... FROM findings ... LIMIT) of the next request."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.statement: str | None = None
        self.parameters: Any = None
        event.listen(engine.sync_engine, "before_cursor_execute", self._seen)

    def _seen(self, _conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "FROM findings" in statement and "LIMIT" in statement:
            self.statement, self.parameters = statement, parameters

    def close(self) -> None:
        event.remove(self.engine.sync_engine, "before_cursor_execute", self._seen)


async def explain(engine: AsyncEngine, statement: str, parameters: Any) -> str:
    async with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            raw = await connection.get_raw_connection()
            driver: Any = raw.driver_connection
            plan = await driver.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {statement}", *parameters)
            return "\n".join(row[0] for row in plan)
        result = await connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
        return "\n".join(f"{row[0]:>3} {row[1]:>3} {row[3]}" for row in result)


async def time_queries(
    w: dict[str, Any], engine: AsyncEngine, label: str
) -> dict[tuple[str, str], dict[str, Any]]:
    """Every query as every viewer, round-robin; then a probe of each with the SQL captured."""
    combos = [(q, viewer) for q in queries(w) for viewer in ("planner", "head")]
    spent: dict[tuple[str, str], list[float]] = {c: [] for c in combos}
    items: dict[tuple[str, str], int] = {}
    for n in range(WARMUPS + REQUESTS):
        for combo in combos:
            query, viewer = combo
            api: Api = w[viewer]
            started = time.perf_counter()
            response = await api.call("GET", "/api/v1/findings", params=queries(w)[query])
            elapsed = time.perf_counter() - started
            items[combo] = len(_ok(response, 200)["items"])
            if n >= WARMUPS:
                spent[combo].append(elapsed)
    results: dict[tuple[str, str], dict[str, Any]] = {}
    for combo in combos:
        query, viewer = combo
        counter = StatementCounter(engine)
        capture = Capture(engine)
        probe = 10
        for _ in range(probe):
            await w[viewer].call("GET", "/api/v1/findings", params=queries(w)[query])
        counter.close()
        capture.close()
        results[combo] = {
            "p50": 1000 * statistics.median(spent[combo]),
            "p95": 1000 * p95(spent[combo]),
            "items": items[combo],
            "statements": counter.statements / probe,
            "driver_ms": 1000 * counter.seconds / probe,
            "sql": (capture.statement, capture.parameters),
        }
        r = results[combo]
        print(
            f"  {label:<10} {query:<20} as {viewer:<7} p50 {r['p50']:6.1f} ms  "
            f"p95 {r['p95']:6.1f} ms  ({r['items']} items; {r['statements']:g} statements, "
            f"{r['driver_ms']:.1f} ms inside the driver)"
        )
    return results


async def count_matches(w: dict[str, Any], engine: AsyncEngine) -> str:
    async with engine.connect() as connection:
        total = await connection.scalar(select(func.count()).select_from(Finding))
        late = await connection.scalar(
            select(func.count()).where(
                Finding.category == "late_dossiers", Finding.status == "submitted"
            )
        )
        d01 = await connection.scalar(
            select(func.count()).where(
                Finding.unit_id.in_(
                    [u for code, u in w["units"].items() if code.startswith("P-D01-")]
                ),
                Finding.observed_at >= _local(OBSERVED_FROM, 0),
            )
        )
    return (
        f"{total:,} findings; category+status matches {late:,} (before visibility); "
        f"under D01 since {OBSERVED_FROM} matches {d01:,} (before visibility)"
    )


async def run(name: str, args: argparse.Namespace) -> None:
    async with backend(name) as where:
        await measure(where, args)


async def measure(where: Backend, args: argparse.Namespace) -> None:
    app = await make_app(settings_for(where))
    async with running(app) as client:
        engine: AsyncEngine = app.state.database.engine
        started = time.perf_counter()
        w = await world(client)
        rows = rows_for(w, random.Random(20261122))
        built = time.perf_counter()
        await load(engine, rows)
        loaded = time.perf_counter()
        print(
            f"{where.name} ({where.version}): world {built - started:.1f} s, Core load of "
            f"{len(rows['plans'])} plans, {len(rows['visits'])} visits, "
            f"{len(rows['findings']):,} findings {loaded - built:.1f} s"
            + (" + ANALYZE" if where.name == "postgres" else "")
        )
        print(f"  {await count_matches(w, engine)}")
        await show_plans(where, engine, await time_queries(w, engine, "baseline"), args)
        for ddl in args.index:
            async with engine.execution_options(**{WRITE_OPTION: True}).begin() as connection:
                await connection.execute(text(ddl))
            if where.name == "postgres":
                async with engine.connect() as connection:
                    await connection.execution_options(isolation_level="AUTOCOMMIT")
                    await connection.exec_driver_sql("ANALYZE findings")
            print(f"  with {ddl}:")
            await show_plans(where, engine, await time_queries(w, engine, "+index"), args)


async def show_plans(
    where: Backend,
    engine: AsyncEngine,
    results: dict[tuple[str, str], dict[str, Any]],
    args: argparse.Namespace,
) -> None:
    """The plan of each page query that misses the target on PostgreSQL (all with --explain)."""
    for (query, viewer), r in results.items():
        misses = where.name == "postgres" and r["p95"] >= TARGET_P95_MS
        if args.explain or misses:
            statement, parameters = r["sql"]
            why = "misses the target" if misses else "--explain"
            print(f"  plan of {query} as {viewer} ({why}):")
            print(f"    SQL: {' '.join(statement.split())}")
            shown = [v.hex() if isinstance(v, bytes | memoryview) else v for v in parameters]
            print(f"    parameters: {shown}")
            for line in (await explain(engine, statement, parameters)).splitlines():
                print(f"    {line}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--explain", action="store_true", help="print every page query's plan")
    parser.add_argument(
        "--index", action="append", default=[], help="CREATE INDEX to try after the baseline"
    )
    args = parser.parse_args()
    header(f"findings list at {FINDINGS:,} findings: two filters, planner vs unit head")
    print(
        f"{WARMUPS} warm-ups then {REQUESTS} requests per query and viewer, round-robin, "
        f"sequential; page size default; target p95 < {TARGET_P95_MS:g} ms on PostgreSQL"
    )
    for name in backends():
        started = time.perf_counter()
        await run(name, args)
        print(f"  ({name}: {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    asyncio.run(main())
