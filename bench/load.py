"""N tablets against a real `inspection serve` on loopback: 5xx, latency, memory, lost writes.

What a field team does on a busy morning, all tablets at once:

1. the world is built through the API (as the tests do): a province, its Department of Home
   Affairs, a district and a commune; a planner; N inspectors (the tablets) on the team of one
   approved unannounced plan (the first is the lead); the commune's visit checked in by the lead;
2. then every tablet concurrently signs in (Argon2 at the service's real cost, 64 MiB unless
   `--argon2-kib` says otherwise), PUTs `--puts` new findings one after the other, uploads a
   real-size photo (a generated 12 MP JPEG, ~4.4 MB) to one of them if it is one of the
   `--photos` photographers (halfway through its PUTs), and sends one `--sync`-item batch;
3. afterwards every acknowledged (2xx) finding id is read back with GET, and the findings of the
   visit are counted: "lost" are acknowledged ids that are not there, "extra" are findings
   stored that no 2xx acknowledged (a write reported as failed that committed anyway).

Printed: requests and 5xx per operation, p50/p95/max per operation, other failures (4xx,
transport errors), peak memory of the server (VmHWM of each of its processes from
/proc/<pid>/status, and the peak of their summed VmRSS sampled every 0.1 s: psutil is not a
dependency), and the lost/extra counts. `--json` adds one machine-readable line per run.

The server is `python -m`-free: `python -c "from inspection.cli import main; main()" serve`,
so `PYTHONPATH=/a/copy/of/src` measures a snapshot of the code (see bench/README.md). Only
loopback: it listens on 127.0.0.1 on a free port, in a temporary data directory.

    .venv/bin/python bench/load.py                       # SQLite + folder, 1 worker, 20 tablets
    . /tmp/devenv.sh && .venv/bin/python bench/load.py --postgres --workers 2
                                                         # PostgreSQL + MinIO, scratch db/bucket

With `--postgres`, INSPECTION_TEST_DATABASE_URL (a role that may create databases) and
INSPECTION_TEST_S3_* are used: a scratch database `inspection_bench_*` and a scratch bucket
`bench-<random>` are created for the run and removed after it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import socket
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx

from _common import ADMIN_PASSWORD, PASSWORD, POSITION, backend, finding_body
from evidence_ingest import photo
from inspection.settings import S3Settings
from inspection.storage.s3 import S3ObjectStore

# Time the client gives one request: long enough that a request stuck behind SQLite's
# busy_timeout (10 s) and the pool's wait comes back as the server's answer, not a client timeout.
REQUEST_TIMEOUT = 120.0
READY_TIMEOUT = 60.0
OPERATIONS = ("sign_in", "put", "photo", "sync")


@dataclass
class Results:
    """Every timed answer of a run, by operation."""

    seconds: dict[str, list[float]] = field(default_factory=lambda: {op: [] for op in OPERATIONS})
    statuses: dict[str, dict[int, int]] = field(
        default_factory=lambda: {op: {} for op in OPERATIONS}
    )
    errors: dict[str, list[str]] = field(default_factory=lambda: {op: [] for op in OPERATIONS})
    # Bodies of the first few 5xx answers, to say what failed.
    samples: list[str] = field(default_factory=list)
    acknowledged: set[str] = field(default_factory=set)
    wall: float = 0.0

    def record(self, op: str, started: float, response: httpx.Response) -> None:
        self.seconds[op].append(time.perf_counter() - started)
        counts = self.statuses[op]
        counts[response.status_code] = counts.get(response.status_code, 0) + 1
        if response.status_code >= 500 and len(self.samples) < 5:
            elapsed = time.perf_counter() - started
            self.samples.append(
                f"{op} {response.status_code} after {elapsed:.1f} s: {response.text}"
            )

    def fail(self, op: str, started: float, exc: Exception) -> None:
        self.seconds[op].append(time.perf_counter() - started)
        self.errors[op].append(f"{type(exc).__name__}: {exc}")


# --- the server -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def server_env(
    data_dir: Path, database_url: str, argon2_kib: int, s3: dict[str, str]
) -> dict[str, str]:
    """The server's environment: ours without any INSPECTION_* (the benchmarks' own Argon2
    default must not leak in), plus the run's configuration."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INSPECTION_")}
    env.update(
        {
            "INSPECTION_DATA_DIR": str(data_dir),
            "INSPECTION_DATABASE_URL": database_url,
            "INSPECTION_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "INSPECTION_SECRET_KEY": "load-bench-secret-" + "x" * 32,
            "INSPECTION_ARGON2_MEMORY_KIB": str(argon2_kib),
            "INSPECTION_LOG_LEVEL": "WARNING",
            # Retries are the client's business here: lockouts must not mask a 5xx.
            "INSPECTION_LOGIN_MAX_FAILURES": "1000",
            **s3,
        }
    )
    return env


def process_tree(root: int) -> list[int]:
    """The server and its descendants (uvicorn workers, multiprocessing helpers)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak resident set) of one process, KiB; empty if it is gone."""
    values: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in {"VmRSS", "VmHWM"}:
                values[key] = int(rest.split()[0])
    except OSError:
        pass
    return values


@dataclass
class Memory:
    """Peak memory of the server's processes while the run lasts."""

    root: int
    peak_sum_rss_kib: int = 0
    hwm_kib: dict[int, int] = field(default_factory=dict)

    def sample(self) -> None:
        total = 0
        for pid in process_tree(self.root):
            values = memory_kib(pid)
            total += values.get("VmRSS", 0)
            if "VmHWM" in values:
                self.hwm_kib[pid] = max(self.hwm_kib.get(pid, 0), values["VmHWM"])
        self.peak_sum_rss_kib = max(self.peak_sum_rss_kib, total)

    async def watch(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.sample()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.1)
        self.sample()


@contextlib.asynccontextmanager
async def serve(
    data_dir: Path, database_url: str, workers: int, argon2_kib: int, s3: dict[str, str]
) -> AsyncIterator[tuple[str, asyncio.subprocess.Process]]:
    """`inspection serve` on a free loopback port until the block ends."""
    port = free_port()
    log_path = data_dir / "server.log"
    with log_path.open("wb") as log:
        server = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            "import sys; from inspection.cli import main; sys.argv[0] = 'inspection'; main()",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            env=server_env(data_dir, database_url, argon2_kib, s3),
            cwd=data_dir,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        async with httpx.AsyncClient(base_url=base, timeout=2.0) as probe:
            while True:
                if server.returncode is not None:
                    raise RuntimeError(
                        f"the server exited with {server.returncode}:\n"
                        + log_path.read_text()[-3000:]
                    )
                with contextlib.suppress(httpx.TransportError):
                    if (await probe.get("/health/ready")).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError("the server did not become ready")
                await asyncio.sleep(0.2)
        yield base, server
    finally:
        if server.returncode is None:
            server.terminate()
            try:
                await asyncio.wait_for(server.wait(), 20)
            except TimeoutError:
                server.kill()
                await server.wait()
        # What the server said about its failures (`back-end unavailable on …: <cause>`).
        causes: dict[str, int] = {}
        for line in log_path.read_text(errors="replace").splitlines():
            if "unavailable on" in line or "Traceback" in line or "ERROR" in line:
                cause = line.split(": ", 1)[-1][:160]
                causes[cause] = causes.get(cause, 0) + 1
        for cause, count in sorted(causes.items(), key=lambda item: -item[1])[:5]:
            print(f"server log: {count} x {cause}")


# --- the world ----------------------------------------------------------------------------------


def _check(response: httpx.Response, status: int = 201) -> dict[str, Any]:
    if response.status_code != status:
        raise RuntimeError(f"{response.request.method} {response.request.url}: {response.text}")
    body: dict[str, Any] = response.json()
    return body


async def token_of(client: httpx.AsyncClient, username: str, password: str) -> dict[str, str]:
    response = await client.post(
        "/api/v1/auth/token", json={"username": username, "password": password}
    )
    return {"Authorization": f"Bearer {_check(response, 200)['access_token']}"}


async def world(client: httpx.AsyncClient, tablets: int) -> tuple[list[str], dict[str, Any]]:
    """Units, a planner, the tablets' inspectors on one plan's team, the visit checked in.
    Returns the tablets' usernames and the visit."""
    admin = await token_of(client, "admin", ADMIN_PASSWORD)

    async def post(url: str, body: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
        return _check(await client.post(url, json=body, headers=headers))

    province = await post(
        "/api/v1/units", {"code": "P", "name": "Tỉnh Thái Nguyên", "kind": "province"}, admin
    )
    snv = await post(
        "/api/v1/units",
        {"code": "P-SNV", "name": "Sở Nội vụ", "kind": "department", "parent_id": province["id"]},
        admin,
    )
    district = await post(
        "/api/v1/units",
        {"code": "P-D1", "name": "Huyện Võ Nhai", "kind": "district", "parent_id": province["id"]},
        admin,
    )
    commune = await post(
        "/api/v1/units",
        {"code": "P-D1-C1", "name": "Xã La Hiên", "kind": "commune", "parent_id": district["id"]},
        admin,
    )

    async def user(username: str, role: str, unit: dict[str, Any]) -> dict[str, Any]:
        body = {
            "username": username,
            "full_name": username.title(),
            "password": PASSWORD,
            "unit_id": snv["id"],
            "grants": [{"role": role, "unit_id": unit["id"]}],
        }
        return await post("/api/v1/users", body, admin)

    await user("planner", "planner", province)
    names = [f"tablet{n:02d}" for n in range(1, tablets + 1)]
    inspectors = [await user(name, "inspector", snv) for name in names]
    planner = await token_of(client, "planner", PASSWORD)
    criteria = [
        {"code": c, "text": f"Tiêu chí {c}", "category": "dossier_handling", "weight": float(n)}
        for n, c in enumerate(("C01", "C02", "C03"), start=1)
    ]
    checklist = await post("/api/v1/checklists", {"title": "Một cửa", "criteria": criteria}, admin)
    plan_body = {
        "kind": "unannounced",
        "title": "Kiểm tra công vụ đột xuất quý I/2026",
        "legal_basis": "Quyết định số 123/QĐ-SNV",
        "focus": ["dossier_handling", "discipline"],
        "period_start": "2026-03-01",
        "period_end": "2026-03-31",
        "checklist_id": checklist["id"],
        "unit_id": province["id"],
        "team": [
            {"user_id": u["id"], "role": "lead" if n == 0 else "member"}
            for n, u in enumerate(inspectors)
        ],
        "targets": [
            {"unit_id": commune["id"], "window_start": "2026-03-10", "window_end": "2026-03-12"}
        ],
    }
    created = await client.post("/api/v1/plans", json=plan_body, headers=planner)
    plan = _check(created)
    approved = await client.post(
        f"/api/v1/plans/{plan['id']}/approve",
        headers={**planner, "If-Match": created.headers["ETag"]},
    )
    visit = next(v for v in _check(approved, 200)["visits"] if v["unit_id"] == commune["id"])
    lead = await token_of(client, names[0], PASSWORD)
    url = f"/api/v1/visits/{visit['id']}"
    current = await client.get(url, headers=lead)
    checked = await client.post(
        f"{url}/check-in",
        json={"position": POSITION, "at": "2026-03-10T09:00:00+07:00"},
        headers={**lead, "If-Match": current.headers["ETag"]},
    )
    return names, _check(checked, 200)


# --- the tablets ---------------------------------------------------------------------------------


@dataclass
class Plan:
    """What each tablet does."""

    puts: int
    sync: int
    photographers: set[int]
    picture: bytes
    picture_meta: str


async def tablet(
    base: str,
    number: int,
    username: str,
    visit: dict[str, Any],
    plan: Plan,
    start: asyncio.Event,
    results: Results,
) -> None:
    """One tablet's morning; every request is timed, none is retried."""
    limits = httpx.Limits(max_connections=2, max_keepalive_connections=2)
    async with httpx.AsyncClient(base_url=base, timeout=REQUEST_TIMEOUT, limits=limits) as client:
        await start.wait()
        started = time.perf_counter()
        try:
            response = await client.post(
                "/api/v1/auth/token", json={"username": username, "password": PASSWORD}
            )
        except httpx.TransportError as exc:
            results.fail("sign_in", started, exc)
            return
        results.record("sign_in", started, response)
        if response.status_code != 200:
            return  # a tablet that cannot sign in does nothing else (it would retry later)
        headers = {"Authorization": f"Bearer {response.json()['access_token']}"}
        photo_target: str | None = None
        for n in range(plan.puts):
            if n == plan.puts // 2 and number in plan.photographers and photo_target:
                await upload(client, headers, photo_target, plan, results)
            finding_id = str(uuid.uuid4())
            body = finding_body(visit, number * 10_000 + n)
            started = time.perf_counter()
            try:
                response = await client.put(
                    f"/api/v1/findings/{finding_id}", json=body, headers=headers
                )
            except httpx.TransportError as exc:
                results.fail("put", started, exc)
                continue
            results.record("put", started, response)
            if response.status_code in (200, 201):
                results.acknowledged.add(finding_id)
                photo_target = photo_target or finding_id
        items = [
            {**finding_body(visit, number * 10_000 + 5_000 + n), "id": str(uuid.uuid4())}
            for n in range(plan.sync)
        ]
        started = time.perf_counter()
        try:
            response = await client.post("/api/v1/sync", json={"findings": items}, headers=headers)
        except httpx.TransportError as exc:
            results.fail("sync", started, exc)
            return
        results.record("sync", started, response)
        if response.status_code == 200:
            for outcome in response.json()["findings"]:
                if outcome["outcome"] in ("created", "updated", "unchanged"):
                    results.acknowledged.add(outcome["id"])


async def upload(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    finding_id: str,
    plan: Plan,
    results: Results,
) -> None:
    files: dict[str, Any] = {
        "file": ("IMG_20260310_094200.jpg", plan.picture, "image/jpeg"),
        "meta": (None, plan.picture_meta, "application/json"),
    }
    started = time.perf_counter()
    try:
        response = await client.put(
            f"/api/v1/findings/{finding_id}/evidence/{uuid.uuid4()}", files=files, headers=headers
        )
    except httpx.TransportError as exc:
        results.fail("photo", started, exc)
        return
    results.record("photo", started, response)


async def audit_writes(
    base: str, username: str, visit: dict[str, Any], acknowledged: set[str]
) -> dict[str, int]:
    """Read back every acknowledged id, and count what the visit holds."""
    async with httpx.AsyncClient(base_url=base, timeout=REQUEST_TIMEOUT) as client:
        headers = await token_of(client, username, PASSWORD)
        stored: set[str] = set()
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"visit": visit["id"], "limit": 500}
            if cursor:
                params["cursor"] = cursor
            page = _check(await client.get("/api/v1/findings", params=params, headers=headers), 200)
            stored.update(item["id"] for item in page["items"])
            cursor = page.get("next_cursor")
            if not cursor:
                break
        missing = 0
        gate = asyncio.Semaphore(8)

        async def read(finding_id: str) -> None:
            nonlocal missing
            async with gate:
                response = await client.get(f"/api/v1/findings/{finding_id}", headers=headers)
                if response.status_code != 200:
                    missing += 1

        await asyncio.gather(*(read(i) for i in acknowledged))
    return {
        "acknowledged": len(acknowledged),
        "stored": len(stored),
        "lost": missing,
        "extra": len(stored - acknowledged),
        "ids_seen_twice": 0 if len(stored) == len(set(stored)) else 1,
    }


# --- a run -------------------------------------------------------------------------------------


def p(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


async def run(args: argparse.Namespace, picture: bytes) -> dict[str, Any]:
    name = "postgres" if args.postgres else "sqlite"
    async with backend(name) as where:
        s3: dict[str, str] = {}
        bucket = None
        if args.postgres:
            bucket = f"bench-{uuid.uuid4().hex[:12]}"
            s3 = {
                "INSPECTION_S3_ENDPOINT": os.environ["INSPECTION_TEST_S3_ENDPOINT"],
                "INSPECTION_S3_ACCESS_KEY": os.environ.get("INSPECTION_TEST_S3_ACCESS_KEY", ""),
                "INSPECTION_S3_SECRET_KEY": os.environ.get("INSPECTION_TEST_S3_SECRET_KEY", ""),
                "INSPECTION_S3_BUCKET": bucket,
            }
        url = where.database_url.replace("+aiosqlite", "").replace("+asyncpg", "")
        try:
            async with serve(where.data_dir, url, args.workers, args.argon2_kib, s3) as (
                base,
                server,
            ):
                async with httpx.AsyncClient(base_url=base, timeout=REQUEST_TIMEOUT) as client:
                    names, visit = await world(client, args.tablets)
                meta = json.dumps(
                    {
                        "captured_at": "2026-03-10T09:42:00+07:00",
                        "position": {"lat": 21.59, "lon": 105.84, "accuracy_m": 8},
                        "caption": "Bảng niêm yết thủ tục bị che khuất",
                        "sha256": hashlib.sha256(picture).hexdigest(),
                    }
                )
                step = max(1, args.tablets // max(1, args.photos)) if args.photos else 0
                photographers = set(range(0, args.tablets, step)[: args.photos]) if step else set()
                plan = Plan(args.puts, args.sync, photographers, picture, meta)
                memory = Memory(server.pid)
                memory.sample()
                before_kib = memory.peak_sum_rss_kib
                results = Results()
                start, stop = asyncio.Event(), asyncio.Event()
                watcher = asyncio.create_task(memory.watch(stop))
                tasks = [
                    asyncio.create_task(tablet(base, n, names[n], visit, plan, start, results))
                    for n in range(args.tablets)
                ]
                await asyncio.sleep(0.2)  # every client ready, then all at once
                began = time.perf_counter()
                start.set()
                await asyncio.gather(*tasks)
                results.wall = time.perf_counter() - began
                stop.set()
                await watcher
                writes = await audit_writes(base, names[0], visit, results.acknowledged)
        finally:
            if bucket is not None:
                await remove_bucket(bucket)
    return summary(name, args, results, memory, before_kib, writes)


async def remove_bucket(bucket: str) -> None:
    endpoint = os.environ["INSPECTION_TEST_S3_ENDPOINT"]
    store = S3ObjectStore(
        S3Settings(
            endpoint=endpoint.split("://", 1)[-1],
            access_key=os.environ.get("INSPECTION_TEST_S3_ACCESS_KEY", ""),
            secret_key=os.environ.get("INSPECTION_TEST_S3_SECRET_KEY", ""),
            bucket=bucket,
            secure=endpoint.startswith("https://"),
            region=None,
        )
    )
    try:
        await store.remove_bucket()
    finally:
        await store.close()


def summary(
    name: str,
    args: argparse.Namespace,
    results: Results,
    memory: Memory,
    before_kib: int,
    writes: dict[str, int],
) -> dict[str, Any]:
    ops: dict[str, Any] = {}
    for op in OPERATIONS:
        seconds = results.seconds[op]
        statuses = results.statuses[op]
        ops[op] = {
            "requests": len(seconds),
            "5xx": sum(c for s, c in statuses.items() if s >= 500),
            "statuses": {str(s): c for s, c in sorted(statuses.items())},
            "transport_errors": len(results.errors[op]),
            "p50_ms": round(1000 * p(seconds, 50), 1) if seconds else None,
            "p95_ms": round(1000 * p(seconds, 95), 1) if seconds else None,
            "max_ms": round(1000 * max(seconds), 1) if seconds else None,
        }
    return {
        "backend": name,
        "workers": args.workers,
        "tablets": args.tablets,
        "argon2_kib": args.argon2_kib,
        "wall_s": round(results.wall, 1),
        "requests": sum(o["requests"] for o in ops.values()),
        "5xx": sum(o["5xx"] for o in ops.values()),
        "transport_errors": sum(o["transport_errors"] for o in ops.values()),
        "ops": ops,
        "rss_idle_mib": round(before_kib / 1024),
        "peak_sum_rss_mib": round(memory.peak_sum_rss_kib / 1024),
        "vmhwm_mib": {str(pid): round(k / 1024) for pid, k in sorted(memory.hwm_kib.items())},
        "writes": writes,
        "samples": results.samples,
        "errors": [e for op in OPERATIONS for e in results.errors[op][:2]],
    }


def show(report: dict[str, Any]) -> None:
    print(
        f"\n## {report['backend']}, {report['workers']} worker(s), {report['tablets']} tablets, "
        f"argon2 {report['argon2_kib']} KiB: {report['requests']} requests in "
        f"{report['wall_s']} s, {report['5xx']} 5xx, {report['transport_errors']} transport errors"
    )
    columns = ("requests", "5xx", "p50 ms", "p95 ms", "max ms")
    print(f"{'operation':9} " + " ".join(f"{c:>9}" for c in columns) + "  statuses")
    for op, o in report["ops"].items():
        if not o["requests"]:
            continue
        print(
            f"{op:9} {o['requests']:9} {o['5xx']:9} {o['p50_ms']:9} {o['p95_ms']:9} "
            f"{o['max_ms']:9}  {o['statuses']}"
        )
    w = report["writes"]
    print(
        f"memory: idle {report['rss_idle_mib']} MiB, peak of summed VmRSS "
        f"{report['peak_sum_rss_mib']} MiB, VmHWM per process {report['vmhwm_mib']} MiB"
    )
    print(
        f"writes: {w['acknowledged']} acknowledged, {w['stored']} stored, {w['lost']} lost, "
        f"{w['extra']} stored without acknowledgement"
    )
    for line in report["samples"] + report["errors"]:
        print(f"  e.g. {line[:300]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tablets", type=int, default=20)
    parser.add_argument("--puts", type=int, default=50, help="finding PUTs per tablet")
    parser.add_argument("--sync", type=int, default=100, help="items in each tablet's sync")
    parser.add_argument("--photos", type=int, default=5, help="tablets that upload a photo")
    parser.add_argument("--workers", type=int, default=None, help="1 on SQLite, 2 on PostgreSQL")
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL + MinIO (test env)")
    parser.add_argument("--argon2-kib", type=int, default=65536)
    parser.add_argument("--runs", type=int, default=1, help="repeat, fresh data each time")
    parser.add_argument("--json", action="store_true", help="also print each run as JSON")
    args = parser.parse_args()
    if args.workers is None:
        args.workers = 2 if args.postgres else 1
    if args.postgres and not (
        os.environ.get("INSPECTION_TEST_DATABASE_URL")
        and os.environ.get("INSPECTION_TEST_S3_ENDPOINT")
    ):
        parser.error("--postgres needs INSPECTION_TEST_DATABASE_URL and INSPECTION_TEST_S3_*")
    print(
        f"# load: {args.tablets} tablets x (sign-in, {args.puts} PUTs, 1 sync of {args.sync}), "
        f"{args.photos} photos; python {sys.version.split()[0]}, {os.cpu_count()} cpus"
    )
    picture = photo()
    print(f"photo: {len(picture) / 1e6:.2f} MB JPEG, 4000x3000")
    reports = []
    for _ in range(args.runs):
        report = asyncio.run(run(args, picture))
        show(report)
        if args.json:
            print("JSON " + json.dumps(report))
        reports.append(report)
    if len(reports) > 1:
        print(f"\n## medians over {len(reports)} runs")
        print("5xx per run:", [r["5xx"] for r in reports])
        for op in OPERATIONS:
            p95s = [r["ops"][op]["p95_ms"] for r in reports if r["ops"][op]["p95_ms"] is not None]
            p50s = [r["ops"][op]["p50_ms"] for r in reports if r["ops"][op]["p50_ms"] is not None]
            if p95s:
                print(
                    f"{op:9} p50 {statistics.median(p50s):8.1f} ms  "
                    f"p95 {statistics.median(p95s):8.1f} ms  (p95 per run {p95s})"
                )
        print("peak summed RSS MiB per run:", [r["peak_sum_rss_mib"] for r in reports])


if __name__ == "__main__":
    main()
