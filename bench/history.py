"""Generating a year of a province's history at scale: `inspection.demo.history` timed.

The world (`load_scale_world`: a province of UNITS units, 20 inspectors, a planner, a head per
district, the demo checklist) goes through the services; the history (`generate_history`: plans,
teams, visits, checklist answers, findings, corrective actions and their timelines, discipline
proposals) through bulk Core INSERTs in one transaction, plus ANALYZE on PostgreSQL. Prints the
time of each part, the rate in findings per second and the counts by state, then checks the audit
chain.

Run: `.venv/bin/python bench/history.py [--units 200] [--visits 1000] [--findings 100000]
[--actions 30000] [--proposals 500] [--backend sqlite|postgres]` (PostgreSQL needs
INSPECTION_TEST_DATABASE_URL).
The reports bench's year: `--findings 1000000 --actions 300000 --proposals 5000` on PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sqlalchemy import func, select

from _common import ADMIN_PASSWORD, backend, backends, header, settings_for
from inspection.audit.recorder import verify
from inspection.db.engine import create_database
from inspection.demo.history import generate_history, load_scale_world
from inspection.findings.models import Finding
from inspection.units.bootstrap import ensure_admin
from inspection.units.passwords import configure_hashing


async def run(name: str, args: argparse.Namespace) -> None:
    async with backend(name) as where:
        settings = settings_for(where)
        configure_hashing(settings.argon2_memory_kib)
        database = create_database(settings)
        try:
            await ensure_admin(database, ADMIN_PASSWORD)
            started = time.perf_counter()
            await load_scale_world(database, args.units)
            world = time.perf_counter() - started
            report = await generate_history(
                database,
                visits=args.visits,
                findings=args.findings,
                actions=args.actions,
                proposals=args.proposals,
                seed=args.seed,
            )
            async with database.read_session() as session:
                stored = await session.scalar(select(func.count()).select_from(Finding))
                chain = await verify(session)
            print(
                f"{where.name} ({where.version}): world of {args.units} units {world:.1f} s; "
                f"history {report.seconds:.1f} s ({(stored or 0) / report.seconds:,.0f} "
                f"findings/s); audit chain {'intact' if chain.ok else 'BROKEN'} "
                f"({chain.checked} entries)"
            )
            for line in report.summary().splitlines()[1:]:
                print(f"  {line.strip()}")
        finally:
            await database.dispose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--units", type=int, default=200)
    parser.add_argument("--visits", type=int, default=1_000)
    parser.add_argument("--findings", type=int, default=100_000)
    parser.add_argument("--actions", type=int, default=30_000)
    parser.add_argument(
        "--proposals", type=int, default=None, help="default: one per 200 findings (5,000 at 1M)"
    )
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], action="append")
    args = parser.parse_args()
    if args.proposals is None:
        args.proposals = args.findings // 200
    header(
        f"history generation: {args.units} units, {args.visits:,} visits, "
        f"{args.findings:,} findings, ~{args.actions:,} actions"
    )
    for name in args.backend or backends():
        await run(name, args)


if __name__ == "__main__":
    asyncio.run(main())
