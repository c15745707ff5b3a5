"""The decode memory budget: a small PNG that decodes to 240 MB, eight at once, stays within the
budget; what can never fit is refused at once; a busy budget answers 503 with Retry-After; every
reservation comes back after errors and cancellations; the estimates bound measured peaks.

The worst case is a solid-colour RGBA PNG of 7745 x 7745 pixels (just under the 60 MP cap): about
250 KB compressed, 240 MB decoded. Before the budget, each upload of it took 744 MB at its peak
(the decode, a full-size RGBA copy, a full-size RGB copy, the alpha channel), and eight at once
took this process about 6 GB beyond its start.

Peak memory is read from the kernel: the process's peak RSS (`VmHWM`), reset before a run by
writing 5 to /proc/self/clear_refs, with VmRSS sampled in a thread as a fallback. The app runs in
this process, so the peak includes the test client, the upload bodies and the app's own work.
Estimates are checked against peaks measured one image at a time, after every format's libraries
have been warmed up and freed memory handed back to the system.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import functools
import gc
import io
import struct
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import anyio
import httpx
import pytest
from PIL import Image

from inspection.errors import Rejected
from inspection.evidence import budget as budget_module
from inspection.evidence import pipeline
from inspection.evidence.budget import DecodeBudget, DecodeBusy, budget_for
from inspection.settings import Settings
from tests import images
from tests.conftest import Backend
from tests.helpers import Api, problem
from tests.test_evidence import Scene, form, scene

MIB = 1024 * 1024
# One worst-case PNG is estimated at 279 MiB: two fit at once, as the machine has two cores.
BUDGET_MB = 600
# What the budget does not hold: the upload bodies, spools, responses, the allocator's slack.
ALLOWANCE_MB = 100
CONCURRENT = 8
WORST = (7745, 7745)


@pytest.fixture
def budget_mb() -> int:
    """The decode memory budget of the test's app (a test may parametrize another)."""
    return BUDGET_MB


@pytest.fixture
def settings(backend: Backend, tmp_path: Path, budget_mb: int) -> Settings:
    """A small budget, so that a few worst-case images fill it, and a 25 MB upload limit."""
    return backend.settings(tmp_path, decode_memory_mb=budget_mb)


@pytest.fixture
def budget(settings: Settings) -> Iterator[DecodeBudget]:
    """The process's decode budget for the test's setting (the app uses the same one); all of
    it must be free again after the test."""
    decode_budget = budget_for(settings.decode_memory_bytes)
    yield decode_budget
    assert (decode_budget.in_use, decode_budget.active, decode_budget.waiting) == (0, 0, 0)


@functools.lru_cache(maxsize=4)
def solid_png(width: int, height: int, rgba: tuple[int, int, int, int]) -> bytes:
    """A solid RGBA PNG written directly (Pillow would need the 240 MB image first): the first
    row as is, every other row filtered "Up", i.e. all zeros, which deflate packs 1000:1."""
    row = bytes(rgba) * width
    deflate = zlib.compressobj(6)
    chunks = [deflate.compress(b"\x00" + row)]
    up = b"\x02" + bytes(len(row))
    chunks.extend(deflate.compress(up) for _ in range(height - 1))
    chunks.append(deflate.flush())

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)  # 8-bit RGBA
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", b"".join(chunks))
        + chunk(b"IEND", b"")
    )


@pytest.fixture(scope="session")
def worst_png() -> bytes:
    """The worst case: 7745 x 7745 RGBA, one colour, about 240 KB."""
    return solid_png(*WORST, (200, 30, 40, 128))


# --- measuring memory -------------------------------------------------------------------------


def _status(field: str) -> int:
    """A line of /proc/self/status in bytes (VmRSS, VmHWM)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise LookupError(field)


def _reset_peak() -> bool:
    """Reset the process's peak RSS to its current RSS (Linux 4.0+); False where not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
    except OSError:
        return False
    return True


def _trim() -> None:
    """Hand freed heap memory back, so that the baseline is honest and reused memory counts."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc
        ctypes.CDLL("libc.so.6").malloc_trim(0)


@contextlib.contextmanager
def peak_rss_growth() -> Iterator[Callable[[], int]]:
    """Measure how far RSS rises above its level at the start of the block: the kernel's peak
    (`VmHWM` after a reset) where allowed, else VmRSS sampled every millisecond in a thread
    (which may miss a short peak)."""
    gc.collect(0)
    _trim()
    exact = _reset_peak()
    start = _status("VmRSS")
    highest = start
    running = True

    def sample() -> None:
        nonlocal highest
        while running:
            highest = max(highest, _status("VmRSS"))
            time.sleep(0.001)

    sampler = threading.Thread(target=sample, daemon=True)
    if not exact:
        sampler.start()
    result = {"growth": 0}
    try:
        yield lambda: result["growth"]
    finally:
        running = False
        if not exact:
            sampler.join()
        peak = _status("VmHWM") if exact else highest
        result["growth"] = peak - start


# --- the budget through the API -----------------------------------------------------------------


async def _put(
    client: httpx.AsyncClient, token: str, s: Scene, data: bytes, name: str = "scan.png"
) -> httpx.Response:
    """Upload `data` as a new evidence item of the scene's finding."""
    return await client.put(
        f"{s.url}/{uuid.uuid4()}",
        headers={"Authorization": f"Bearer {token}"},
        **form(data, filename=name, content_type="image/png"),
    )


async def _inspector(client: httpx.AsyncClient) -> tuple[Scene, str]:
    admin = Api(client)  # type: ignore[arg-type]  # it only needs httpx's interface
    await admin.sign_in("admin", "admin-password-1")
    s = await scene(admin)
    inspector = await admin.as_user("inspector")
    assert inspector.token is not None
    return s, inspector.token


async def _until(condition: Callable[[], bool], seconds: float = 30.0) -> None:
    """Wait, boundedly, for the budget to reach a state (it has no events to wait on)."""
    with anyio.fail_after(seconds):
        while not condition():  # noqa: ASYNC110 - polled: the budget signals nothing
            await anyio.sleep(0.005)


# Once, on SQLite + folder: what is measured is the decode, the same on either back-end (every
# other test here runs on both), and eight 60 MP decodes are the slowest test of the suite.
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_eight_worst_case_pngs_at_once_stay_within_the_budget(
    parallel_client: httpx.AsyncClient,
    worst_png: bytes,
    budget: DecodeBudget,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Every upload must be stored: the line is bounded by memory, not by the wait (the 503 of a
    # wait that runs out has a test of its own), and a 2-core machine shared with other test
    # runs can take well over 30 s for eight 60 MP decodes two at a time.
    monkeypatch.setattr(budget_module, "ADMISSION_WAIT_SECONDS", 300.0)
    s, token = await _inspector(parallel_client)
    answers: list[httpx.Response] = []

    async def upload() -> None:
        answers.append(await _put(parallel_client, token, s, worst_png))

    with peak_rss_growth() as growth:
        async with anyio.create_task_group() as group:
            for _ in range(CONCURRENT):
                group.start_soon(upload)
    # All eight are answered and stored, two decoding at a time (two cores, 279 MiB each).
    assert [a.status_code for a in answers] == [201] * CONCURRENT, [a.text for a in answers]
    assert {(a.json()["width"], a.json()["height"]) for a in answers} == {WORST}
    limit = (BUDGET_MB + ALLOWANCE_MB) * MIB
    print(f"peak RSS growth of {CONCURRENT} uploads: {growth() / MIB:.0f} MiB")
    assert growth() < limit, f"peak RSS grew by {growth() / MIB:.0f} MiB (limit {limit / MIB})"


@pytest.mark.parametrize("budget_mb", [128])
async def test_an_image_that_can_never_fit_is_refused_at_once(
    parallel_client: httpx.AsyncClient, worst_png: bytes, budget: DecodeBudget
) -> None:
    s, token = await _inspector(parallel_client)
    needs = pipeline.read_header(io.BytesIO(worst_png), pipeline.PNG).peak_bytes
    assert needs > 128 * MIB
    # Even with the budget busy it is not queued: it could never be admitted.
    async with budget.admit(budget.capacity):
        started = time.perf_counter()
        refused = await _put(parallel_client, token, s, worst_png)
        elapsed = time.perf_counter() - started
    body = problem(refused, 422)
    assert body["errors"][0]["field"] == "file"
    expected = f"needs {-(-needs // MIB)} MB of memory to process and the limit is 128 MB"
    assert expected in body["detail"]
    # Refused from its header, with the budget full: not after the 30 s a queued upload waits
    # (the bound is loose because the machine is shared; a header takes milliseconds).
    assert elapsed < 10, elapsed
    # A photo that fits is processed as usual.
    assert (await _put(parallel_client, token, s, images.jpeg(), "a.jpg")).status_code == 201


async def test_a_busy_budget_answers_503_with_retry_after(
    api: Api, budget: DecodeBudget, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(budget_module, "ADMISSION_WAIT_SECONDS", 0.3)
    s = await scene(api)
    inspector = await api.as_user("inspector")
    async with budget.admit(budget.capacity):
        _, busy = await s.upload(inspector, images.jpeg())
        body = problem(busy, 503)
        assert busy.headers["Retry-After"] == "5"
        assert body["type"] == "/problems/unavailable"
        assert "busy" in body["detail"]
        assert budget.waiting == 0  # it left the line
    _, stored = await s.upload(inspector, images.jpeg())
    assert stored.status_code == 201, stored.text


async def test_the_budget_comes_back_after_damaged_files_and_crashes(
    api: Api, budget: DecodeBudget, monkeypatch: pytest.MonkeyPatch, worst_png: bytes
) -> None:
    s = await scene(api)
    inspector = await api.as_user("inspector")
    admitted: list[int] = []
    process_image = pipeline.process_image

    def counting(*args: Any) -> pipeline.Photo:
        admitted.append(budget.in_use)
        return process_image(*args)

    monkeypatch.setattr(pipeline, "process_image", counting)
    # A header that is fine and pixels that stop halfway: admitted, then refused mid-decode.
    cut = worst_png[: len(worst_png) // 2]
    _, damaged = await s.upload(inspector, cut, content_type="image/png")
    assert "damaged or truncated" in problem(damaged, 422)["detail"]
    assert admitted and admitted[-1] > 200 * MIB
    assert (budget.in_use, budget.active) == (0, 0)

    def crash(*args: Any) -> pipeline.Photo:
        admitted.append(budget.in_use)
        raise MemoryError("the estimate was wrong")

    monkeypatch.setattr(pipeline, "process_image", crash)
    _, crashed = await s.upload(inspector, images.jpeg())
    problem(crashed, 500)
    assert (budget.in_use, budget.active) == (0, 0)
    monkeypatch.setattr(pipeline, "process_image", process_image)
    _, stored = await s.upload(inspector, images.jpeg())
    assert stored.status_code == 201, stored.text


async def test_the_budget_comes_back_after_cancellation(
    parallel_client: httpx.AsyncClient, worst_png: bytes, budget: DecodeBudget
) -> None:
    s, token = await _inspector(parallel_client)

    # Cancelled while decoding: the thread runs to its end (its memory is in use until then),
    # and only then is the reservation returned.
    async with anyio.create_task_group() as group:
        group.start_soon(_put, parallel_client, token, s, worst_png)
        await _until(lambda: budget.active == 1)
        group.cancel_scope.cancel()
    assert (budget.in_use, budget.active, budget.waiting) == (0, 0, 0)

    # Cancelled while waiting in line: it leaves the line at once.
    async with budget.admit(budget.capacity):
        async with anyio.create_task_group() as group:
            group.start_soon(_put, parallel_client, token, s, images.jpeg())
            await _until(lambda: budget.waiting == 1)
            group.cancel_scope.cancel()
        assert budget.waiting == 0 and budget.in_use == budget.capacity
    assert (await _put(parallel_client, token, s, images.jpeg(), "a.jpg")).status_code == 201


# --- the budget itself ----------------------------------------------------------------------


def _budget(capacity: int, slots: int = 8) -> DecodeBudget:
    return DecodeBudget(capacity, slots=slots)


async def test_first_come_first_served_a_big_image_is_not_overtaken() -> None:
    budget = _budget(100)
    order: list[str] = []
    events = {name: anyio.Event() for name in ("big", "small")}

    async def decode(name: str, size: int) -> None:
        async with budget.admit(size, wait=10):
            order.append(name)
            await events[name].wait()

    async with anyio.create_task_group() as group:
        async with budget.admit(60):
            group.start_soon(decode, "big", 100)
            await _until(lambda: budget.waiting == 1)
            # 60 + 10 would fit, but the big one is first in line.
            group.start_soon(decode, "small", 10)
            await _until(lambda: budget.waiting == 2)
            assert order == []
        await _until(lambda: order == ["big"])
        assert budget.waiting == 1
        events["big"].set()
        await _until(lambda: order == ["big", "small"])
        events["small"].set()
    assert (budget.in_use, budget.active, budget.waiting) == (0, 0, 0)


async def test_a_waiter_that_gives_up_lets_the_next_in_and_slots_bound_decodes() -> None:
    budget = _budget(100, slots=1)
    async with budget.admit(50):
        # The slot is taken although bytes are free.
        with pytest.raises(DecodeBusy) as caught:
            async with budget.admit(10, wait=0.05):
                pass
        assert caught.value.status == 503 and caught.value.retry_after == 5
    wide = _budget(100)
    got: list[str] = []

    async def small() -> None:
        async with wide.admit(10, wait=10):
            got.append("small")

    async with wide.admit(60), anyio.create_task_group() as group:

        async def big() -> None:
            with pytest.raises(DecodeBusy):
                async with wide.admit(100, wait=0.2):
                    pass

        group.start_soon(big)
        await _until(lambda: wide.waiting == 1)
        group.start_soon(small)
        # The big one times out at the head of the line; the small one behind it fits.
        await _until(lambda: got == ["small"], 5)
    assert (wide.in_use, wide.active, wide.waiting) == (0, 0, 0)


def test_the_budget_is_shared_across_event_loops() -> None:
    """Apps of one process may run on loops of their own (the test client does): a release on
    one loop wakes a waiter on another."""
    budget = _budget(100)
    holding, release = threading.Event(), threading.Event()

    async def hold() -> None:
        async with budget.admit(100):
            holding.set()
            await anyio.to_thread.run_sync(release.wait)

    other = threading.Thread(target=anyio.run, args=(hold,))
    other.start()
    holding.wait(5)

    async def wait_in_line() -> float:
        started = time.perf_counter()
        threading.Timer(0.1, release.set).start()
        async with budget.admit(100, wait=5):
            return time.perf_counter() - started

    assert 0.05 < anyio.run(wait_in_line) < 5
    other.join(5)
    assert (budget.in_use, budget.active, budget.waiting) == (0, 0, 0)


async def test_the_decode_budget_refuses_what_exceeds_it_without_waiting() -> None:
    budget = _budget(64 * MIB)
    with pytest.raises(Rejected) as caught:
        async with budget.admit(64 * MIB + 1):
            pass
    assert "needs 65 MB of memory to process and the limit is 64 MB" in caught.value.detail
    assert (budget.in_use, budget.waiting) == (0, 0)


# --- the estimates ----------------------------------------------------------------------------


def test_the_preview_plan_is_the_one_thumbnail_makes() -> None:
    """The shrinking ahead of the preview follows `Image.thumbnail`'s arithmetic exactly."""
    for size in [(1, 1), (1280, 1280), (1281, 1), (1, 5000), (2000, 1500), (2559, 100)] + [
        (w, h) for w in (640, 2561, 3001, 4000, 5119, 5121) for h in (480, 1281, 2999, 4001)
    ]:
        image = Image.new("1", size)
        image.thumbnail((pipeline.PREVIEW_SIDE, pipeline.PREVIEW_SIDE))
        plan = pipeline._Plan.of(size)
        assert plan.preview == image.size, size
        assert plan.shrunk[0] >= plan.preview[0] and plan.shrunk[1] >= plan.preview[1], size


def test_previews_are_the_ones_a_full_size_flatten_and_thumbnail_make() -> None:
    """Shrinking band by band, flattening each band, changes no pixel: the preview is the one
    the pipeline made before (flatten the whole image, then `thumbnail`)."""
    noise = Image.effect_noise((5200, 300), 90).convert("L")  # reduced by 2 x 2
    rgba = Image.merge(
        "RGBA", [noise, noise.rotate(180), noise, noise.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    )
    for image in (rgba, noise.convert("P"), noise.convert("I;16")):
        out = io.BytesIO()
        image.save(out, "PNG", compress_level=1)
        photo = pipeline.process_image(io.BytesIO(out.getvalue()), pipeline.PNG, ZoneInfo("UTC"))
        reference = pipeline._flatten(image)
        reference.thumbnail(
            (pipeline.PREVIEW_SIDE, pipeline.PREVIEW_SIDE), Image.Resampling.LANCZOS
        )
        assert photo.preview == pipeline._jpeg(reference), image.mode


def _solid(mode: str, size: tuple[int, int]) -> Image.Image:
    if mode == "P+tRNS":
        image = Image.new("P", size, 3)
        image.putpalette(list(range(256)) * 3)
        image.info["transparency"] = 3
        return image
    colour: Any = {
        "RGB": (200, 30, 40),
        "RGBA": (200, 30, 40, 128),
        "L": 100,
        "LA": (100, 50),
        "P": 5,
        "I;16": 40000,
        "CMYK": (10, 20, 30, 40),
    }[mode]
    return Image.new(mode, size, colour)


def _encode(case: str) -> tuple[bytes, str]:
    """The file of a measurement case "format mode WxH[ option]"."""
    kind, mode, dimensions, *option = case.split()
    size = tuple(int(n) for n in dimensions.split("x"))
    assert len(size) == 2
    if kind == "png" and mode == "RGBA":  # without the full-size image: fast at any size
        return solid_png(size[0], size[1], (200, 30, 40, 128)), pipeline.PNG
    image = _solid(mode, (size[0], size[1]))
    out = io.BytesIO()
    if kind == "png":
        image.save(out, "PNG")
        return out.getvalue(), pipeline.PNG
    if kind == "jpeg":
        image.save(out, "JPEG", quality=90, progressive="progressive" in option)
        return out.getvalue(), pipeline.JPEG
    if kind == "webp":
        image.save(out, "WEBP", lossless="lossless" in option, quality=80)
        return out.getvalue(), pipeline.WEBP
    chroma = 444 if "444" in option else 420
    image.save(out, "HEIF", quality=50, chroma=chroma)
    return out.getvalue(), pipeline.HEIC


MEASURED = [
    *(
        f"png {mode} {size}"
        for mode in ("RGB", "RGBA", "L", "LA", "P", "P+tRNS", "I;16")
        for size in ("640x480", "2000x1500")
    ),
    "png RGBA 7745x7745",  # the worst case, reduced by 3, band by band
    *(f"jpeg {mode} 640x480" for mode in ("RGB", "L", "CMYK")),
    "jpeg RGB 4000x3000",  # decoded at 1/2
    "jpeg CMYK 3000x2000",
    "jpeg L 640x480 progressive",
    "jpeg RGB 4000x3000 progressive",  # coefficients at full size, pixels at 1/2
    "jpeg CMYK 2000x1500 progressive",
    *(f"webp {mode} {size}" for mode in ("RGB", "RGBA") for size in ("640x480", "2000x1500")),
    "webp RGBA 2000x1500 lossless",
    "heic RGB 640x480",
    "heic RGBA 640x480",
    "heic RGB 1600x1200",
    "heic RGB 1600x1200 444",
]


def measure(cases: list[str]) -> dict[str, dict[str, Any]]:
    """In this process: each case's header and the peak RSS growth of `process_image` on it
    (after a warm-up of every format, so that libraries' one-time set-up is not counted)."""
    zone = ZoneInfo("UTC")
    gc.collect()
    for warm_up in ("png RGBA 64x64", "jpeg RGB 64x64", "webp RGBA 64x64", "heic RGB 64x64"):
        data, content_type = _encode(warm_up)
        pipeline.process_image(io.BytesIO(data), content_type, zone)
    results: dict[str, dict[str, Any]] = {}
    for case in cases:
        data, content_type = _encode(case)
        header = pipeline.read_header(io.BytesIO(data), content_type)
        with peak_rss_growth() as growth:
            pipeline.process_image(io.BytesIO(data), content_type, zone)
        results[case] = {"header": dataclasses.asdict(header), "peak": growth()}
    return results


@pytest.fixture(scope="module")
def measured() -> dict[str, dict[str, Any]]:
    """The peaks, measured once for the module, in this process (nothing else runs meanwhile;
    freed memory is handed back before each image, so that reusing it is counted)."""
    return measure(MEASURED)


@pytest.mark.parametrize("case", MEASURED)
def test_the_estimate_bounds_the_measured_peak(case: str, measured: dict[str, Any]) -> None:
    header = pipeline.ImageHeader(**measured[case]["header"])
    estimate = pipeline.estimate_memory(header).total
    peak = measured[case]["peak"]
    assert peak <= estimate, (
        f"{case}: measured {peak / MIB:.1f} MiB > estimate {estimate / MIB:.1f}"
    )
    # An upper bound, not a guess from afar: within a third, plus the fixed overhead.
    assert estimate <= 1.35 * peak + pipeline.FIXED_OVERHEAD + 4 * MIB, (
        f"{case}: estimate {estimate / MIB:.1f} MiB for a measured {peak / MIB:.1f} MiB"
    )


def test_the_default_budget_admits_the_largest_photo_of_every_kind() -> None:
    """At the default budget (1024 MB, sized for a 2 GB worker) the largest images that cameras,
    phones and tablets make, up to the 60 MP cap and the 25 MB upload limit, all fit: none is
    refused that was accepted before the budget. (Only a 10-bit 4:4:4 HEIC with alpha near 60 MP,
    about 1.3 GB on its own, is refused unless the budget is raised.)"""
    default = 1024 * MIB
    side, scaled = 7745, 1937  # 60 MP; a JPEG decoded at 1/4
    cases: list[tuple[str, str, int, dict[str, Any]]] = [
        (pipeline.PNG, "RGBA", side, {}),
        (pipeline.PNG, "I;16", side, {}),
        (pipeline.WEBP, "RGBA", side, {}),
        (pipeline.HEIC, "RGBA", side, {"heif_planes": 2 * 1 * (1 + 2 + 1) + 1.5}),  # 8-bit 4:4:4
        (pipeline.HEIC, "RGB", side, {"heif_planes": 2 * 2 * (1 + 0.5) + 1.5}),  # 10-bit 4:2:0
        # Progressive CMYK: four full-size planes of coefficients.
        (pipeline.JPEG, "CMYK", scaled, {"jpeg_coefficients": 4 * 969 * 969 * 128}),
    ]
    for content_type, mode, decoded, extra in cases:
        header = pipeline.ImageHeader(
            content_type=content_type,
            width=side,
            height=side,
            mode=mode,
            decoded_width=decoded,
            decoded_height=decoded,
            file_size=25 * MIB,
            **extra,
        )
        assert header.peak_bytes < default, (content_type, mode, header.peak_bytes / MIB)


def test_jpeg_headers_tell_baseline_from_progressive() -> None:
    baseline, _ = _encode("jpeg RGB 4000x3000")
    progressive, _ = _encode("jpeg RGB 4000x3000 progressive")
    plain = pipeline.read_header(io.BytesIO(baseline), pipeline.JPEG)
    scans = pipeline.read_header(io.BytesIO(progressive), pipeline.JPEG)
    assert (plain.decoded_width, plain.decoded_height) == (2000, 1500)  # DCT scaling, 1/2
    assert plain.jpeg_coefficients == 0
    # 4:2:0 in 16 x 16 MCUs: luma 500 x 376 blocks (rounded up to whole MCUs), two chroma
    # planes of 250 x 188; 64 coefficients a block, 2 bytes each.
    assert scans.jpeg_coefficients == (500 * 376 + 2 * 250 * 188) * 64 * 2
