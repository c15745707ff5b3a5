"""`PUT /api/v1/findings/{id}` throughput against a raw one-row insert per transaction.

Each PUT creates a new finding (fresh id) through the real app in-process: bearer token, the
request's transaction, the visit/plan/role checks, the SAVEPOINT, the insert and its audit entry
(which locks the audit chain head). The raw baseline inserts a comparable row into a scratch table
on the same database, each in its own `engine.begin()` (SQLite: `BEGIN IMMEDIATE`, as the app's
writing sessions). Both are measured in alternating rounds of the same run; the figures are
medians over rounds, and the ratio PUT/raw is the median of the per-round ratios.

Run: `.venv/bin/python bench/findings_put.py` (SQLite; PostgreSQL too with INSPECTION_TEST_*).
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    Uuid,
    insert,
)

from _common import (
    Api,
    Backend,
    StatementCounter,
    backend,
    backends,
    finding_body,
    header,
    make_app,
    median,
    on_site,
    running,
    settings_for,
)
from inspection.db.engine import WRITE_OPTION, create_engine

ROUNDS = 5
PUTS_PER_ROUND = 120
RAWS_PER_ROUND = 300
CONCURRENT_CLIENTS = 4
CONCURRENT_PUTS = 200
TARGET_RATIO = 0.4

metadata = MetaData()
scratch = Table(
    "bench_raw_findings",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("visit_id", Uuid, nullable=False),
    Column("plan_id", Uuid, nullable=False),
    Column("unit_id", Uuid, nullable=False),
    Column("criterion_code", String(32)),
    Column("category", String(32), nullable=False, index=True),
    Column("severity", String(16), nullable=False),
    Column("title", String(500), nullable=False),
    Column("description", Text),
    Column("search_text", Text, nullable=False),
    Column("observed_at", DateTime(timezone=True), nullable=False),
    Column("lat", Float),
    Column("lon", Float),
    Column("accuracy_m", Float),
    Column("officials", JSON, nullable=False),
    Column("recommendation", Text),
    Column("status", String(16), nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)


def raw_row(n: int) -> dict[str, object]:
    now = datetime.now(UTC)
    return {
        "id": uuid.uuid4(),
        "visit_id": uuid.uuid4(),
        "plan_id": uuid.uuid4(),
        "unit_id": uuid.uuid4(),
        "criterion_code": "C02",
        "category": "extra_documents_requested",
        "severity": "major",
        "title": f"Yêu cầu nộp thêm bản sao hộ khẩu {n}",
        "description": "Công chức một cửa yêu cầu thêm giấy tờ không có trong thành phần hồ sơ.",
        "search_text": "yeu cau nop them ban sao ho khau cong chuc mot cua",
        "observed_at": now,
        "lat": 21.59,
        "lon": 105.84,
        "accuracy_m": 12.0,
        "officials": [{"name": "Nguyễn Văn A", "position": "Công chức tư pháp - hộ tịch"}],
        "recommendation": "Chấm dứt ngay việc yêu cầu giấy tờ ngoài quy định.",
        "status": "draft",
        "version": 1,
        "created_at": now,
        "updated_at": now,
    }


async def put_one(member: Api, visit: dict[str, object], n: int) -> None:
    response = await member.call(
        "PUT", f"/api/v1/findings/{uuid.uuid4()}", json=finding_body(visit, n)
    )
    if response.status_code != 201:
        raise RuntimeError(response.text)


async def run(name: str) -> dict[str, float]:
    async with backend(name) as where:
        return await measure(where)


async def measure(where: Backend) -> dict[str, float]:
    app = await make_app(settings_for(where))
    raw_engine = create_engine(where.database_url, pool_size=5)
    writer = raw_engine.execution_options(**{WRITE_OPTION: True})
    async with writer.begin() as connection:
        await connection.run_sync(metadata.create_all)

    async def raw_batch(count: int, start: int) -> float:
        started = time.perf_counter()
        for n in range(start, start + count):
            async with writer.begin() as connection:
                await connection.execute(insert(scratch), raw_row(n))
        return count / (time.perf_counter() - started)

    try:
        async with running(app) as client:
            member, visit = await on_site(client)

            async def put_batch(count: int, start: int) -> float:
                started = time.perf_counter()
                for n in range(start, start + count):
                    await put_one(member, visit, n)
                return count / (time.perf_counter() - started)

            await raw_batch(30, 0)  # warm-up: pools, prepared statements, caches
            await put_batch(30, 0)
            raw_rates, put_rates, ratios = [], [], []
            for r in range(ROUNDS):
                raw = await raw_batch(RAWS_PER_ROUND, 1000 * (r + 1))
                put = await put_batch(PUTS_PER_ROUND, 1000 * (r + 1))
                raw_rates.append(raw)
                put_rates.append(put)
                ratios.append(put / raw)
                print(f"  {where.name} round {r + 1}: raw {raw:7.0f}/s  PUT {put:6.0f}/s")

            # Concurrent clients: PUT writers queue on the write lock (SQLite) or the audit head.
            started = time.perf_counter()
            per_client = CONCURRENT_PUTS // CONCURRENT_CLIENTS

            async def client_loop(c: int) -> None:
                for n in range(per_client):
                    await put_one(member, visit, 100_000 + c * 1000 + n)

            await asyncio.gather(*(client_loop(c) for c in range(CONCURRENT_CLIENTS)))
            concurrent = CONCURRENT_PUTS / (time.perf_counter() - started)

            # What one PUT sends to the database (a short pass, not timed above).
            counter = StatementCounter(app.state.database.engine)
            probe = 50
            started = time.perf_counter()
            for n in range(probe):
                await put_one(member, visit, 200_000 + n)
            wall = time.perf_counter() - started
            counter.close()
    finally:
        await raw_engine.dispose()
    kinds = ", ".join(f"{k} {v / probe:g}" for k, v in sorted(counter.kinds.items()))
    return {
        "raw": median(raw_rates),
        "put": median(put_rates),
        "ratio": median(ratios),
        "concurrent": concurrent,
        "statements": counter.statements / probe,
        "db_share": counter.seconds / wall,
        "db_ms": 1000 * counter.seconds / probe,
        "wall_ms": 1000 * wall / probe,
        "version": where.version,  # type: ignore[dict-item]
        "kinds": kinds,  # type: ignore[dict-item]
    }


async def main() -> None:
    header("findings PUT vs raw insert (one transaction each)")
    print(
        f"{ROUNDS} rounds x ({RAWS_PER_ROUND} raw inserts, {PUTS_PER_ROUND} PUTs), sequential; "
        f"then {CONCURRENT_PUTS} PUTs from {CONCURRENT_CLIENTS} concurrent clients"
    )
    for name in backends():
        started = time.perf_counter()
        r = await run(name)
        print(f"{name} ({r['version']}), {time.perf_counter() - started:.0f} s")
        print(f"  raw insert/txn   median {r['raw']:8.0f} /s")
        print(f"  PUT finding      median {r['put']:8.0f} /s   ({1000 / r['put']:.2f} ms each)")
        verdict = "meets" if r["ratio"] >= TARGET_RATIO else "misses"
        print(
            f"  ratio PUT/raw    median {r['ratio']:8.3f}     target >= {TARGET_RATIO}: {verdict}"
        )
        print(f"  PUT, {CONCURRENT_CLIENTS} clients          {r['concurrent']:8.0f} /s")
        print(
            f"  per PUT: {r['statements']:.1f} SQL statements ({r['kinds']}); "
            f"{r['db_ms']:.2f} ms of {r['wall_ms']:.2f} ms inside the driver "
            f"({100 * r['db_share']:.0f}%)"
        )


if __name__ == "__main__":
    asyncio.run(main())
