"""Peak memory of N worst-case photo uploads at once: the decode memory budget at work.

The worst case of the problem report: a solid-colour RGBA PNG of 7745 x 7745 pixels (just under
the 60 MP cap), about 250 KB, that decodes to 240 MB. `--image webp` uses a lossless WebP of the
same size instead (about 12 bytes per pixel while libwebp decodes it), `--image jpeg` a
progressive CMYK JPEG (libjpeg buffers every DCT coefficient at full size).

One run: a scratch SQLite database and object folder, the real app in-process
(`app.lifespan()` + `httpx.ASGITransport`, so uploads really run concurrently), a checked-in
visit with one draft finding, then `--uploads` PUTs of the image at once, each under a new
evidence id. Printed: the status of every answer, the wall time, the process's RSS before and
its peak RSS growth during the uploads (the kernel's `VmHWM`, reset through /proc/self/clear_refs
just before; VmRSS sampled every millisecond where that is not allowed), and the budget's
setting. The app runs in this process, so the growth includes the client and the bodies.

Before and after: the code measured is whatever `inspection` imports, so a snapshot of another
commit is measured with `PYTHONPATH` (a commit without the budget ignores `--budget-mb`):

    .venv/bin/python bench/decode_memory.py                      # 8 uploads, 1024 MB budget
    .venv/bin/python bench/decode_memory.py --budget-mb 600      # as the test suite
    mkdir -p /tmp/snap && git archive HEAD src | tar -x -C /tmp/snap
    PYTHONPATH=/tmp/snap/src .venv/bin/python bench/decode_memory.py

About 10 s for 8 PNGs on 2 cores (each decode takes about a second of CPU).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import dataclasses
import gc
import io
import json
import os
import struct
import sys
import threading
import time
import uuid
import zlib
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx
from PIL import Image

from _common import backend, finding_body, make_app, on_site, settings_for

MIB = 1024 * 1024
SIDE = 7745


def solid_png(side: int) -> bytes:
    """A solid RGBA PNG written directly: the first row as is, the others filtered "Up" (zeros)."""
    row = bytes((200, 30, 40, 128)) * side
    deflate = zlib.compressobj(6)
    body = [deflate.compress(b"\x00" + row)]
    zero_row = b"\x02" + bytes(len(row))
    body.extend(deflate.compress(zero_row) for _ in range(side - 1))
    body.append(deflate.flush())

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", side, side, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", b"".join(body))
        + chunk(b"IEND", b"")
    )


def worst_case(kind: str, side: int) -> tuple[bytes, str, str]:
    """The image bytes, their content type and a file name."""
    if kind == "png":
        return solid_png(side), "image/png", "scan.png"
    out = io.BytesIO()
    if kind == "webp":
        Image.new("RGBA", (side, side), (200, 30, 40, 128)).save(out, "WEBP", lossless=True)
        return out.getvalue(), "image/webp", "scan.webp"
    Image.new("CMYK", (side, side), (10, 20, 30, 40)).save(out, "JPEG", progressive=True)
    return out.getvalue(), "image/jpeg", "scan.jpg"


def status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise LookupError(field)


class PeakRss:
    """Peak RSS growth over a block: VmHWM after a reset, else VmRSS sampled every ms."""

    def __enter__(self) -> PeakRss:
        gc.collect()
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        try:
            with open("/proc/self/clear_refs", "w") as clear:
                clear.write("5")
            self.exact = True
        except OSError:
            self.exact = False
        self.start = status_kib("VmRSS")
        self.highest = self.start
        self.running = True
        self.sampler = threading.Thread(target=self._sample, daemon=True)
        if not self.exact:
            self.sampler.start()
        return self

    def _sample(self) -> None:
        while self.running:
            self.highest = max(self.highest, status_kib("VmRSS"))
            time.sleep(0.001)

    def __exit__(self, *exc: object) -> None:
        self.running = False
        if not self.exact:
            self.sampler.join()
        peak = status_kib("VmHWM") if self.exact else self.highest
        self.growth = peak - self.start


async def run(args: argparse.Namespace) -> dict[str, Any]:
    data, content_type, filename = worst_case(args.image, args.side)
    async with backend("sqlite") as where:
        settings = settings_for(where)
        fields = {f.name for f in dataclasses.fields(settings)}
        with_budget = "decode_memory_mb" in fields
        if with_budget:
            settings = dataclasses.replace(settings, decode_memory_mb=args.budget_mb)
        app = await make_app(settings)
        async with app.lifespan():
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://bench", timeout=600
            ) as client:
                inspector, visit = await on_site(client)
                finding = str(uuid.uuid4())
                created = await inspector.call(
                    "PUT", f"/api/v1/findings/{finding}", json=finding_body(visit)
                )
                assert created.status_code == 201, created.text

                async def upload() -> tuple[int, float, str | None]:
                    started = time.perf_counter()
                    answer = await inspector.call(
                        "PUT",
                        f"/api/v1/findings/{finding}/evidence/{uuid.uuid4()}",
                        files={"file": (filename, data, content_type)},
                    )
                    return (
                        answer.status_code,
                        time.perf_counter() - started,
                        answer.headers.get("Retry-After"),
                    )

                rss_before = status_kib("VmRSS")
                started = time.perf_counter()
                with PeakRss() as peak:
                    answers = await asyncio.gather(*(upload() for _ in range(args.uploads)))
                wall = time.perf_counter() - started
    return {
        "image": args.image,
        "bytes": len(data),
        "uploads": args.uploads,
        "budget_mb": args.budget_mb if with_budget else None,
        "cores": os.cpu_count(),
        "statuses": sorted(a[0] for a in answers),
        "retry_after": sorted({a[2] for a in answers if a[2]}),
        "wall_s": round(wall, 2),
        "slowest_s": round(max(a[1] for a in answers), 2),
        "rss_before_mib": round(rss_before / MIB),
        "peak_growth_mib": round(peak.growth / MIB),
        "peak_exact": peak.exact,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--uploads", type=int, default=8, help="uploads at once (8)")
    parser.add_argument("--budget-mb", type=int, default=1024, help="decode budget (1024)")
    parser.add_argument("--image", choices=("png", "webp", "jpeg"), default="png")
    parser.add_argument("--side", type=int, default=SIDE, help="square side in pixels (7745)")
    parser.add_argument("--json", action="store_true", help="one JSON line instead of text")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    if args.json:
        print(json.dumps(result))
        return
    budget = f"{result['budget_mb']} MB" if result["budget_mb"] else "none (code without it)"
    print(
        f"{result['uploads']} x {result['image']} {args.side}x{args.side} "
        f"({result['bytes'] / 1024:.0f} KB) at once; decode budget {budget}; "
        f"{result['cores']} cores"
    )
    print(f"  answers: {result['statuses']} (Retry-After: {result['retry_after'] or '-'})")
    print(f"  wall {result['wall_s']} s, slowest upload {result['slowest_s']} s")
    print(
        f"  RSS before {result['rss_before_mib']} MiB; peak growth "
        f"{result['peak_growth_mib']} MiB ({'VmHWM' if result['peak_exact'] else 'sampled'})"
    )


if __name__ == "__main__":
    main()
