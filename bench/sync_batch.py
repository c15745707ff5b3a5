"""`POST /api/v1/sync` with a 500-finding batch against 500 single `PUT /api/v1/findings/{id}`.

Each round creates the same 500 findings (fresh ids every round) both ways through the real app
in-process, one after the other in alternating order; the figures are medians (p50) over rounds
and the speed-up is the median of the per-round ratios single/batch.

Run: `.venv/bin/python bench/sync_batch.py` (SQLite; PostgreSQL too with INSPECTION_TEST_*).
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
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

BATCH = 500
ROUNDS = 3
TARGET_SPEEDUP = 10.0


async def run(name: str) -> dict[str, Any]:
    async with backend(name) as where:
        app = await make_app(settings_for(where))
        async with running(app) as client:
            member, visit = await on_site(client)

            def items(round_no: int) -> list[dict[str, Any]]:
                return [
                    {**finding_body(visit, round_no * BATCH + n), "id": str(uuid.uuid4())}
                    for n in range(BATCH)
                ]

            async def singles(batch: list[dict[str, Any]]) -> float:
                started = time.perf_counter()
                for item in batch:
                    body = {k: v for k, v in item.items() if k != "id"}
                    response = await member.call("PUT", f"/api/v1/findings/{item['id']}", json=body)
                    if response.status_code != 201:
                        raise RuntimeError(response.text)
                return time.perf_counter() - started

            async def synced(batch: list[dict[str, Any]]) -> float:
                started = time.perf_counter()
                response = await member.call("POST", "/api/v1/sync", json={"findings": batch})
                elapsed = time.perf_counter() - started
                outcomes = response.json()["findings"]
                if response.status_code != 200 or any(o["outcome"] != "created" for o in outcomes):
                    raise RuntimeError(response.text[:500])
                return elapsed

            # Warm-up (not counted): a small batch and a few singles.
            await synced(items(100)[:20])
            await singles(items(101)[:20])
            single_s, batch_s, speedups = [], [], []
            for r in range(ROUNDS):
                if r % 2 == 0:
                    s, b = await singles(items(2 * r)), await synced(items(2 * r + 1))
                else:
                    b, s = await synced(items(2 * r + 1)), await singles(items(2 * r))
                single_s.append(s)
                batch_s.append(b)
                speedups.append(s / b)
                print(
                    f"  {name} round {r + 1}: {BATCH} PUTs {s:6.2f} s   "
                    f"sync {b:6.2f} s   x{s / b:.2f}"
                )

            # What one batch sends to the database (an extra pass, not in the figures above).
            counter = StatementCounter(app.state.database.engine)
            probe = await synced(items(200))
            counter.close()
    return {
        "version": where.version,
        "single": median(single_s),
        "batch": median(batch_s),
        "speedup": median(speedups),
        "statements": counter.statements / BATCH,
        "kinds": ", ".join(f"{k} {v / BATCH:g}" for k, v in sorted(counter.kinds.items())),
        "db_share": counter.seconds / probe,
    }


async def main() -> None:
    header(f"sync batch of {BATCH} findings vs {BATCH} single PUTs")
    print(f"{ROUNDS} rounds, fresh ids each round, sequential, in-process ASGI")
    for name in backends():
        started = time.perf_counter()
        r = await run(name)
        print(f"{name} ({r['version']}), {time.perf_counter() - started:.0f} s")
        single, batch = r["single"], r["batch"]
        print(f"  {BATCH} single PUTs p50 {single:6.2f} s  ({BATCH / single:6.0f} findings/s)")
        print(f"  one sync batch  p50 {batch:6.2f} s  ({BATCH / batch:6.0f} findings/s)")
        verdict = "meets" if r["speedup"] >= TARGET_SPEEDUP else "misses"
        print(
            f"  speed-up p50         x{r['speedup']:.2f}   target >= x{TARGET_SPEEDUP:g}: {verdict}"
        )
        print(
            f"  per item in a batch: {r['statements']:.1f} SQL statements ({r['kinds']}); "
            f"{100 * r['db_share']:.0f}% of the batch's time inside the driver"
        )


if __name__ == "__main__":
    asyncio.run(main())
