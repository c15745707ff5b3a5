"""Evidence ingest of a 12 MP JPEG: the API end to end against the same work done directly.

The photo is generated once per run (4000x3000, shapes, gradients, grain and texture so that it
compresses like a photograph: JPEG quality 90, about 4.4 MB) with an EXIF block (orientation 6,
camera, time taken), so the pipeline's transpose path runs.

Measured in the same run:

- pipeline only, alternating: the service's draft-first `pipeline.process_image` against a naive
  pipeline (full decode, `ImageOps.exif_transpose` of the full image, `thumbnail` 1280, `thumbnail`
  320, JPEG q85 of both): the draft-first gain is naive p50 / draft-first p50;
- for each database (SQLite; PostgreSQL with INSPECTION_TEST_DATABASE_URL) and each object store
  (the folder store; MinIO with INSPECTION_TEST_S3_*): the API (`PUT
  /api/v1/findings/{id}/evidence/{evidence_id}`, multipart `file` + JSON `meta`, a new evidence id
  each time, sequential) alternating with the floor (`process_image` of the same bytes plus one
  `store.put` of the original, hashed while streaming, on the app's own store: what the API does
  minus HTTP, auth, the database, the receive/spool and the preview/thumbnail puts). 3 warm-ups,
  then ROUNDS rounds; p50/p95 of the API, p50 of the floor, and the ratio API p50 / floor p50
  (target <= 1.3);
- then, not timed above, a probe of PROBE uploads with timers around the service's steps
  (precheck, receive, check, store, record: `EvidenceService` methods and the controller's
  `receive_multipart`, wrapped in this process for the probe only) and around the ASGI app, and
  a count of the SQL statements, to show where the time goes.

Run: `.venv/bin/python bench/evidence_ingest.py` (about 15 s per database and store: 70 s with
PostgreSQL and MinIO). Each combination gets a fresh scratch database; each MinIO combination a
scratch bucket `bench-<random>`, emptied and removed at the end.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import inspect
import io
import json
import os
import random
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx
import PIL
from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageOps

from _common import (
    Api,
    Backend,
    StatementCounter,
    backend,
    backends,
    finding_body,
    header,
    make_app,
    on_site,
    running,
    settings_for,
)
from inspection.evidence import controllers as evidence_controllers
from inspection.evidence import pipeline
from inspection.evidence.service import EvidenceService
from inspection.settings import S3Settings, Settings
from inspection.storage import ObjectStore, iterate_bytes
from inspection.storage.s3 import S3ObjectStore

WIDTH, HEIGHT = 4000, 3000
QUALITY = 90
WARMUPS = 3
ROUNDS = 30
PIPELINE_ROUNDS = 12
PROBE = 10
TARGET_RATIO = 1.3
ZONE = ZoneInfo("Asia/Ho_Chi_Minh")


# --- the photo ------------------------------------------------------------------------------


def photo() -> bytes:
    """A 12 MP photo-like JPEG (q90) with EXIF orientation 6, camera and time taken."""
    rng = random.Random(20261122)
    ramps = ((90, 200), (140, 210), (200, 235))  # a sky: darker at the top, per channel
    gradient = Image.linear_gradient("L").resize((WIDTH, HEIGHT))
    image = Image.merge(
        "RGB",
        [gradient.point(lambda v, a=a, b=b: int(a + (b - a) * v / 255)) for a, b in ramps],
    )
    draw = ImageDraw.Draw(image)
    for _ in range(2500):  # a busy street: boxes, signs, poles
        x, y = rng.randrange(WIDTH), rng.randrange(HEIGHT // 4, HEIGHT)
        w, h = rng.randrange(10, 400), rng.randrange(10, 300)
        colour = tuple(rng.randrange(256) for _ in range(3))
        shape = rng.random()
        if shape < 0.5:
            edge = tuple(c // 2 for c in colour)
            width = rng.randrange(1, 6)
            draw.rectangle((x, y, x + w, y + h), fill=colour, outline=edge, width=width)
        elif shape < 0.8:
            draw.ellipse((x, y, x + w, y + h), fill=colour)
        else:
            end = (x + rng.randrange(-600, 600), y + rng.randrange(-600, 600))
            draw.line((x, y, *end), fill=colour, width=rng.randrange(1, 12))
    image = image.filter(ImageFilter.GaussianBlur(1.2))  # lens softness
    grain = Image.effect_noise((WIDTH, HEIGHT), 6).convert("RGB")  # sensor noise
    texture = (
        Image.effect_noise((WIDTH // 4, HEIGHT // 4), 20)
        .resize((WIDTH, HEIGHT), Image.Resampling.BICUBIC)
        .convert("RGB")
    )
    image = ImageChops.add(ImageChops.add(image, grain, 1.0, -128), texture, 1.0, -128)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to view: the tablet was held upright
    exif[0x010F] = "Samsung"
    exif[0x0110] = "SM-X710"
    exif[0x8769] = {0x9003: "2026:03:10 09:42:00", 0x9011: "+07:00"}
    out = io.BytesIO()
    image.save(out, "JPEG", quality=QUALITY, exif=exif.tobytes())
    return out.getvalue()


# --- the pipelines --------------------------------------------------------------------------


def draft_first(data: bytes) -> pipeline.Photo:
    """What the service runs (off the event loop) for a JPEG."""
    return pipeline.process_image(io.BytesIO(data), pipeline.JPEG, ZONE)


def naive(data: bytes) -> tuple[bytes, bytes]:
    """Full decode, upright at full size, then shrink twice and encode both."""
    with Image.open(io.BytesIO(data)) as image:
        upright = ImageOps.exif_transpose(image)
    upright.thumbnail((pipeline.PREVIEW_SIDE, pipeline.PREVIEW_SIDE), Image.Resampling.LANCZOS)
    small = upright.copy()
    small.thumbnail((pipeline.THUMBNAIL_SIDE, pipeline.THUMBNAIL_SIDE), Image.Resampling.LANCZOS)
    encoded = []
    for picture in (upright, small):
        out = io.BytesIO()
        picture.save(out, "JPEG", quality=pipeline.JPEG_QUALITY)
        encoded.append(out.getvalue())
    return encoded[0], encoded[1]


def ms(seconds: float) -> float:
    return 1000 * seconds


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[18]


def compare_pipelines(data: bytes) -> dict[str, float]:
    """Naive and draft-first, alternating, pipeline only (no store)."""
    for _ in range(2):
        naive(data)
        draft_first(data)
    naive_times, draft_times = [], []
    for _ in range(PIPELINE_ROUNDS):
        started = time.perf_counter()
        naive(data)
        naive_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        draft_first(data)
        draft_times.append(time.perf_counter() - started)
    return {
        "naive": ms(statistics.median(naive_times)),
        "draft": ms(statistics.median(draft_times)),
    }


# --- stores -----------------------------------------------------------------------------------


def s3_base() -> S3Settings | None:
    """MinIO from the test suite's variables, or None."""
    endpoint = os.environ.get("INSPECTION_TEST_S3_ENDPOINT")
    if not endpoint:
        return None
    return S3Settings(
        endpoint=endpoint.split("://", 1)[-1],
        access_key=os.environ.get("INSPECTION_TEST_S3_ACCESS_KEY", "minioadmin"),
        secret_key=os.environ.get("INSPECTION_TEST_S3_SECRET_KEY", "minioadmin"),
        bucket="unused",
        secure=endpoint.startswith("https://"),
        region=None,
    )


def stores() -> list[str]:
    return ["folder", "minio"] if s3_base() else ["folder"]


async def remove_bucket(s3: S3Settings) -> None:
    store = S3ObjectStore(s3)
    try:
        await store.remove_bucket()
    finally:
        await store.close()


@asynccontextmanager
async def store_settings(where: Backend, store: str) -> AsyncIterator[Settings]:
    """The benchmark's settings with objects in the scratch folder or a scratch bucket."""
    settings = settings_for(where)
    base = s3_base()
    if store == "folder" or base is None:
        yield settings
        return
    s3 = dataclasses.replace(base, bucket=f"bench-{uuid.uuid4().hex[:12]}")
    try:
        yield dataclasses.replace(settings, s3=s3)
    finally:
        await remove_bucket(s3)


# --- the API and the floor --------------------------------------------------------------------


class Uploader:
    """PUTs the photo as new evidence of one draft finding."""

    def __init__(self, member: Api, finding_id: str, data: bytes) -> None:
        self.member, self.finding_id, self.data = member, finding_id, data
        self.meta = json.dumps(
            {
                "captured_at": "2026-03-10T09:42:00+07:00",
                "position": {"lat": 21.59, "lon": 105.84, "accuracy_m": 8},
                "caption": "Bảng niêm yết thủ tục bị che khuất",
                "sha256": hashlib.sha256(data).hexdigest(),
            }
        )

    async def put(self, client: httpx.AsyncClient | None = None) -> None:
        url = f"/api/v1/findings/{self.finding_id}/evidence/{uuid.uuid4()}"
        files: dict[str, Any] = {
            "file": ("IMG_20260310_094200.jpg", self.data, "image/jpeg"),
            "meta": (None, self.meta, "application/json"),
        }
        if client is None:
            response = await self.member.call("PUT", url, files=files)
        else:
            response = await client.put(url, files=files, headers=self.member.headers)
        if response.status_code != 201:
            raise RuntimeError(f"{response.status_code}: {response.text}")


async def floor(store: ObjectStore, data: bytes, sha256: str) -> None:
    """The pipeline and one put of the original, nothing else."""
    draft_first(data)
    key = f"bench-floor/{uuid.uuid4()}/original"
    stored = await store.put(key, iterate_bytes(data), pipeline.JPEG)
    if stored.sha256 != sha256:
        raise RuntimeError("the store hashed other bytes")


async def timed(action: Callable[[], Awaitable[Any]]) -> float:
    started = time.perf_counter()
    await action()
    return time.perf_counter() - started


class Steps:
    """Timers around the service's steps and the ASGI app, installed for the probe only."""

    NAMES = ("precheck", "receive", "check", "store", "record")

    def __init__(self) -> None:
        self.seconds: dict[str, list[float]] = {n: [] for n in (*self.NAMES, "app")}
        self._saved: list[tuple[Any, str, Any]] = []

    def _wrap(self, owner: Any, attribute: str, name: str) -> None:
        original = getattr(owner, attribute)
        self._saved.append((owner, attribute, original))
        spent = self.seconds[name]
        if inspect.iscoroutinefunction(original):

            async def timed_async(*args: Any, **kw: Any) -> Any:
                started = time.perf_counter()
                try:
                    return await original(*args, **kw)
                finally:
                    spent.append(time.perf_counter() - started)

            setattr(owner, attribute, timed_async)
        else:

            def timed_sync(*args: Any, **kw: Any) -> Any:
                started = time.perf_counter()
                try:
                    return original(*args, **kw)
                finally:
                    spent.append(time.perf_counter() - started)

            setattr(owner, attribute, timed_sync)

    def install(self) -> None:
        self._wrap(EvidenceService, "precheck", "precheck")
        self._wrap(evidence_controllers, "receive_multipart", "receive")
        self._wrap(EvidenceService, "_check", "check")
        self._wrap(EvidenceService, "_store", "store")
        self._wrap(EvidenceService, "_record", "record")

    def remove(self) -> None:
        for owner, attribute, original in reversed(self._saved):
            setattr(owner, attribute, original)
        self._saved.clear()

    def timed_app(self, app: Any) -> Any:
        spent = self.seconds["app"]

        async def asgi(scope: Any, receive: Any, send: Any) -> None:
            started = time.perf_counter()
            try:
                await app(scope, receive, send)
            finally:
                spent.append(time.perf_counter() - started)

        return asgi


async def measure(where: Backend, store_name: str, data: bytes) -> dict[str, Any]:
    sha256 = hashlib.sha256(data).hexdigest()
    async with store_settings(where, store_name) as settings:
        app = await make_app(settings)
        async with running(app) as client:
            member, visit = await on_site(client)
            finding_id = str(uuid.uuid4())
            created = await member.call(
                "PUT", f"/api/v1/findings/{finding_id}", json=finding_body(visit)
            )
            if created.status_code != 201:
                raise RuntimeError(created.text)
            uploader = Uploader(member, finding_id, data)
            store: ObjectStore = app.state.object_store
            for _ in range(WARMUPS):
                await uploader.put()
                await floor(store, data, sha256)
            api, base = [], []
            for _ in range(ROUNDS):
                api.append(await timed(uploader.put))
                base.append(await timed(lambda: floor(store, data, sha256)))

            steps = Steps()
            transport = httpx.ASGITransport(app=steps.timed_app(app))
            walls = []
            counter = StatementCounter(app.state.database.engine)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as probe:
                steps.install()
                try:
                    for _ in range(PROBE):
                        walls.append(await timed(lambda: uploader.put(probe)))
                finally:
                    steps.remove()
                    counter.close()
    step_ms = {name: ms(statistics.median(v)) for name, v in steps.seconds.items()}
    step_ms["wall"] = ms(statistics.median(walls))
    kinds = ", ".join(f"{k} {v / PROBE:g}" for k, v in sorted(counter.kinds.items()))
    return {
        "ratio": statistics.median(a / b for a, b in zip(api, base, strict=True)),
        "statements": f"{counter.statements / PROBE:g} SQL statements ({kinds}), "
        f"{ms(counter.seconds) / PROBE:.1f} ms inside the driver",
        "api_p50": ms(statistics.median(api)),
        "api_p95": ms(p95(api)),
        "floor_p50": ms(statistics.median(base)),
        "floor_p95": ms(p95(base)),
        "steps": step_ms,
    }


def show(label: str, r: dict[str, Any]) -> None:
    ratio = r["api_p50"] / r["floor_p50"]
    verdict = "meets" if ratio <= TARGET_RATIO else "misses"
    print(
        f"{label:<22} API p50 {r['api_p50']:6.0f} ms  p95 {r['api_p95']:6.0f} ms | "
        f"floor p50 {r['floor_p50']:6.0f} ms  p95 {r['floor_p95']:6.0f} ms | "
        f"API/floor {ratio:4.2f} (target <= {TARGET_RATIO}: {verdict}; "
        f"median of per-round ratios {r['ratio']:4.2f})"
    )
    s = r["steps"]
    inside = sum(s[n] for n in Steps.NAMES)
    print(
        f"{'':<22} probe of {PROBE} (medians, ms): wall {s['wall']:.0f} = app {s['app']:.0f} "
        f"+ client {s['wall'] - s['app']:.0f}; in the app: precheck {s['precheck']:.1f}, "
        f"receive {s['receive']:.1f}, check {s['check']:.1f}, store {s['store']:.1f}, "
        f"record {s['record']:.1f}, rest {s['app'] - inside:.1f}"
    )
    print(f"{'':<22} per upload: {r['statements']}")


async def main() -> None:
    header("evidence ingest of a 12 MP JPEG: API vs floor, draft-first vs naive pipeline")
    started = time.perf_counter()
    data = photo()
    print(
        f"photo {WIDTH}x{HEIGHT} JPEG q{QUALITY}, {len(data) / 1e6:.2f} MB, EXIF orientation 6 "
        f"(made in {time.perf_counter() - started:.1f} s); Pillow {PIL.__version__}"
    )
    print(
        f"{WARMUPS} warm-ups, then {ROUNDS} rounds of (API PUT, floor) alternating, sequential; "
        f"pipelines: {PIPELINE_ROUNDS} alternating rounds"
    )
    pipelines = compare_pipelines(data)
    gain = pipelines["naive"] / pipelines["draft"]
    print(
        f"pipeline only: naive p50 {pipelines['naive']:.0f} ms, draft-first p50 "
        f"{pipelines['draft']:.0f} ms: draft-first gain x{gain:.2f}"
    )
    for name in backends():
        for store in stores():
            began = time.perf_counter()
            async with backend(name) as where:  # a fresh database for each combination
                result = await measure(where, store, data)
            show(f"{where.name} + {store}", result)
            print(f"{'':<22} ({where.version}; {time.perf_counter() - began:.0f} s)")


if __name__ == "__main__":
    asyncio.run(main())
