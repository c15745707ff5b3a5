"""Report renderers: a 10-page PDF, chart SVGs, and 200,000 rows to CSV and XLSX.

Prints medians over `--rounds` (the first, cold, call of each renderer is reported apart: it
loads fonts, and vl-convert starts its JS engine), and the RSS growth while streaming 200k rows
(VmRSS from /proc/self/status, sampled every 10,000 rows).

    .venv/bin/python bench/render.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from inspection.reports.document import Cell, Chart, Column, ReportDocument, Table
from inspection.reports.render import charts, pdf, xlsx
from inspection.reports.render import csv as report_csv

COLUMNS = (
    Column("unit", "Đơn vị"),
    Column("visits", "Số cuộc kiểm tra", "integer"),
    Column("findings", "Số phát hiện", "integer"),
    Column("rate", "Tỷ lệ khắc phục", "percent"),
    Column("score", "Điểm trung bình", "decimal"),
    Column("at", "Lần kiểm tra gần nhất", "datetime"),
)
UNITS = ("Xã La Hiên", "Thị trấn Chùa Hang", "Xã Hóa Thượng", "Phường Túc Duyên", "Xã Văn Hán")
CHARTS = tuple(
    Chart(
        f"Phát hiện theo lĩnh vực ({n})",
        (
            "Công tác văn thư, lưu trữ",
            "Cải cách hành chính",
            "Thi đua, khen thưởng",
            "Tôn giáo",
            "Tổ chức bộ máy",
            "Công chức, viên chức",
        )[: 3 + n],
        (42, 31, 17, 9, 4, 1)[: 3 + n],
        "Số phát hiện",
    )
    for n in range(3)
)


def rows(count: int, samples: list[int] | None = None) -> Iterator[tuple[Cell, ...]]:
    at = datetime(2026, 5, 1, 2, 0, tzinfo=UTC)
    for i in range(count):
        if samples is not None and i % 10_000 == 0:
            samples.append(rss_kib())
        yield (f"{UNITS[i % len(UNITS)]} {i}", i % 40, i * 7 % 1000, (i % 100) / 100, i / 7, at)


def document(table_rows: Any, with_charts: bool = True) -> ReportDocument:
    return ReportDocument(
        slug="bao-cao-tong-hop",
        title="BÁO CÁO TỔNG HỢP KẾT QUẢ KIỂM TRA",
        scope_name="Tỉnh Thái Nguyên",
        period_from=date(2026, 1, 1),
        period_to=date(2026, 12, 31),
        generated_at=datetime(2027, 1, 2, 1, 30, tzinfo=UTC),
        generated_by="Nguyễn Thị Ngọc Ánh",
        issuer="SỞ NỘI VỤ TỈNH THÁI NGUYÊN",
        tables=(Table("don-vi", "Theo đơn vị", COLUMNS, table_rows),),
        charts=CHARTS if with_charts else (),
        highlights=(("Số cuộc kiểm tra", "412"), ("Số phát hiện", "1.234")),
    )


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def timed(call: Callable[[], object], rounds: int) -> tuple[float, float]:
    """(cold seconds, median of `rounds` warm seconds)."""
    start = time.perf_counter()
    call()
    cold = time.perf_counter() - start
    warm = []
    for _ in range(rounds):
        start = time.perf_counter()
        call()
        warm.append(time.perf_counter() - start)
    return cold, statistics.median(warm)


def pages(data: bytes) -> int:
    with tempfile.NamedTemporaryFile(suffix=".pdf") as file:
        file.write(data)
        file.flush()
        info = subprocess.run(["pdfinfo", file.name], capture_output=True, check=True)  # noqa: S603, S607
    line = next(x for x in info.stdout.decode().splitlines() if x.startswith("Pages:"))
    return int(line.split()[1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    cpu = next(
        (
            x.split(":", 1)[1].strip()
            for x in Path("/proc/cpuinfo").read_text().splitlines()
            if x.startswith("model name")
        ),
        platform.processor(),
    )
    print(
        f"{datetime.now(UTC):%Y-%m-%d}, nproc {os.cpu_count()}, {cpu}, Python "
        f"{platform.python_version()}"
    )

    # 10 pages: 3 charts on page 1-2, then a 6-column table (about 43 rows a page).
    ten = tuple(rows(420))
    data = pdf.render(document(ten))
    cold, warm = timed(lambda: pdf.render(document(ten)), args.rounds)
    print(
        f"PDF, {pages(data)} pages, 3 charts, 420 rows: cold {cold * 1000:.0f} ms, "
        f"median {warm * 1000:.0f} ms ({len(data) / 1024:.0f} KiB)"
    )
    cold, warm = timed(lambda: pdf.render(document(ten, with_charts=False)), args.rounds)
    print(f"PDF, same without charts: median {warm * 1000:.0f} ms")
    cold, warm = timed(lambda: [charts.svg(c) for c in CHARTS], args.rounds)
    print(
        f"chart SVGs (3 charts): first call {cold * 1000:.0f} ms (starts vl-convert), "
        f"median {warm / len(CHARTS) * 1000:.1f} ms per chart"
    )

    count = 200_000
    samples: list[int] = []
    before = rss_kib()
    start = time.perf_counter()
    size = sum(len(c) for c in report_csv.stream(Table("t", "T", COLUMNS, rows(count, samples))))
    seconds = time.perf_counter() - start
    print(
        f"CSV, {count:,} rows: {seconds:.2f} s, {size / 2**20:.1f} MiB, RSS growth "
        f"{(max(samples) - before) / 1024:.1f} MiB"
    )
    with tempfile.TemporaryDirectory() as folder:
        samples = []
        before = rss_kib()
        start = time.perf_counter()
        path = Path(folder) / "r.xlsx"
        xlsx.write(document(rows(count, samples)), path)
        seconds = time.perf_counter() - start
        samples.append(rss_kib())
        print(
            f"XLSX, {count:,} rows: {seconds:.2f} s, {path.stat().st_size / 2**20:.1f} MiB, "
            f"RSS growth {(max(samples) - before) / 1024:.1f} MiB"
        )


if __name__ == "__main__":
    main()
