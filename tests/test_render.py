"""The report renderers: CSV, XLSX, PDF and chart SVG, checked on their output files.

The PDF is read back with poppler (`pdftotext`, `pdffonts`, `pdftoppm`, `pdfinfo`; installed
by .ci/run), the XLSX with openpyxl and its zip parts, the CSV with the csv module.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import re
import shutil
import subprocess
import unicodedata
import zipfile
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from PIL import Image, ImageStat

from inspection.reports.document import Cell, Chart, Column, ReportDocument, Table
from inspection.reports.render import charts, pdf, xlsx
from inspection.reports.render import csv as report_csv

HOSTILE = '#panic() *đậm* _nghiêng_ $x^2$ <nhãn> @ref \\ [a](b) `mã` "trích" //'
NAMES = ("Xã La Hiên", "Đồng Hỷ", "Nguyễn Thị Ngọc Ánh")
COLUMNS = (
    Column("unit", "Đơn vị"),
    Column("visits", "Số cuộc kiểm tra", "integer"),
    Column("rate", "Tỷ lệ khắc phục", "percent"),
    Column("score", "Điểm trung bình", "decimal"),
    Column("day", "Ngày kiểm tra", "date"),
    Column("at", "Thời điểm ghi nhận", "datetime"),
)
ROWS: tuple[tuple[Cell, ...], ...] = (
    ("Xã La Hiên", 12, 0.83, 7.25, date(2026, 3, 1), datetime(2026, 3, 1, 1, 30, tzinfo=UTC)),
    # A naive instant: the renderers take it as UTC (as the database stores instants).
    ("Huyện Đồng Hỷ", 1234567, 0.8333, 9.0, date(2026, 12, 31), datetime(2026, 12, 31, 17, 0)),  # noqa: DTZ001
    (HOSTILE, 0, 0.0, None, None, None),
    ('=HYPERLINK("http://x","bấm")', -3, 1.0, -0.05, date(2026, 1, 1), None),
)
CHART = Chart(
    "Phát hiện theo lĩnh vực",
    ("Công tác văn thư, lưu trữ", "Cải cách hành chính", "Thi đua, khen thưởng"),
    (12, 7, 3),
    "Số phát hiện",
)


def document(
    *,
    rows: object = ROWS,
    scope: str = "Tỉnh Thái Nguyên",
    by: str = "Nguyễn Thị Ngọc Ánh",
    normal: str = "NFC",
) -> ReportDocument:
    """A small report; `normal="NFD"` decomposes every string, as some keyboards send them."""

    def n(text: str) -> str:
        return unicodedata.normalize(normal, text)  # type: ignore[arg-type]

    def n_row(row: tuple[Cell, ...]) -> tuple[Cell, ...]:
        return tuple(n(c) if isinstance(c, str) else c for c in row)

    table_rows = [n_row(r) for r in rows] if isinstance(rows, tuple) else rows
    return ReportDocument(
        slug="bao-cao-tong-hop",
        title=n("BÁO CÁO TỔNG HỢP KẾT QUẢ KIỂM TRA"),
        scope_name=n(scope),
        period_from=date(2026, 1, 1),
        period_to=date(2026, 12, 31),
        generated_at=datetime(2027, 1, 2, 1, 30, tzinfo=UTC),
        generated_by=n(by),
        issuer=n("SỞ NỘI VỤ TỈNH THÁI NGUYÊN"),
        tables=(Table("don-vi", n("Theo đơn vị"), COLUMNS, table_rows),),  # type: ignore[arg-type]
        charts=(
            Chart(
                n(CHART.title),
                tuple(n(c) for c in CHART.categories),
                CHART.values,
                n(CHART.value_label),
            ),
        ),
        highlights=((n("Số cuộc kiểm tra"), "12"), (n("Số phát hiện"), "1.234")),
    )


def rss_kib() -> int:
    """This process's resident set now (not its peak: earlier tests may have raised that)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def many_rows(count: int, samples: list[int]) -> Iterator[tuple[Cell, ...]]:
    """`count` generated rows, sampling RSS every 10,000."""
    at = datetime(2026, 5, 1, tzinfo=UTC)
    for i in range(count):
        if i % 10_000 == 0:
            samples.append(rss_kib())
        yield (f"Đơn vị số {i} xã La Hiên", i, (i % 100) / 100, i / 7, date(2026, 5, 1), at)


# --- poppler -----------------------------------------------------------------------------------

POPPLER = ("pdftotext", "pdffonts", "pdftoppm", "pdfinfo")
_missing = [tool for tool in POPPLER if shutil.which(tool) is None]
# Skipped on a laptop without poppler-utils; in CI (which installs it) a missing tool must fail,
# not quietly skip the PDF checks.
if _missing and os.environ.get("INSPECTION_TEST_REQUIRE_SERVICES") == "1":
    raise RuntimeError(f"poppler-utils missing ({', '.join(_missing)}): .ci/run installs it")
needs_poppler = pytest.mark.skipif(
    bool(_missing), reason="poppler-utils missing (apt-get install poppler-utils)"
)


def run(*args: str) -> str:
    """A poppler tool's standard output (fixed argument lists, no shell)."""
    done = subprocess.run(args, capture_output=True, check=True)  # noqa: S603
    return done.stdout.decode()


def pdf_text(path: Path) -> str:
    return run("pdftotext", "-layout", str(path), "-")


def squash(text: str) -> str:
    return re.sub(r"\s+", " ", text)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pdf") / "report.pdf"
    path.write_bytes(pdf.render(document()))
    return path


@needs_poppler
def test_pdf_page_one_is_not_blank(rendered: Path, tmp_path: Path) -> None:
    run(
        "pdftoppm",
        "-png",
        "-r",
        "50",
        "-f",
        "1",
        "-l",
        "1",
        "-singlefile",
        str(rendered),
        str(tmp_path / "page"),
    )
    with Image.open(tmp_path / "page.png") as image:
        gray = image.convert("L")
        stat = ImageStat.Stat(gray)
        inked = sum(gray.histogram()[:200]) / (gray.width * gray.height)
    assert gray.width < gray.height  # portrait
    assert stat.var[0] > 200, stat.var
    assert inked > 0.02, inked


@needs_poppler
def test_pdf_is_a4_with_page_numbers(rendered: Path) -> None:
    info = run("pdfinfo", str(rendered))
    assert re.search(r"Page size:\s+595\.\d* x 841\.\d* pts \(A4\)", info), info
    pages = int(re.search(r"Pages:\s+(\d+)", info).group(1))  # type: ignore[union-attr]
    for page in range(1, pages + 1):
        text = run("pdftotext", "-f", str(page), "-l", str(page), str(rendered), "-")
        assert f"Trang {page}/{pages}" in text


@needs_poppler
def test_pdf_holds_the_vietnamese_text_exactly(rendered: Path) -> None:
    text = pdf_text(rendered)
    for name in (*NAMES, "BÁO CÁO TỔNG HỢP KẾT QUẢ KIỂM TRA", "SỞ NỘI VỤ TỈNH THÁI NGUYÊN"):
        assert name in text
    assert "Từ ngày 01/01/2026 đến ngày 31/12/2026" in text
    assert "Lập lúc 08:30 ngày 02/01/2027 bởi Nguyễn Thị Ngọc Ánh" in text
    assert "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM" in text
    # Cells formatted for a Vietnamese reader; the naive instant is UTC, shown at +07:00.
    for cell in (
        "1.234.567",
        "83%",
        "83,3%",
        "7,3",
        "31/12/2026",
        "01/03/2026 08:30",
        "01/01/2027 00:00",
        "-0,1",
        "100%",
    ):
        assert cell in text, cell
    # The chart's labels are SVG text rendered by Typst: they must be in the PDF as text too.
    for label in (*CHART.categories, "Số phát hiện"):
        assert label in text, label


@needs_poppler
def test_pdf_from_decomposed_input_is_composed(tmp_path: Path) -> None:
    path = tmp_path / "nfd.pdf"
    path.write_bytes(pdf.render(document(normal="NFD")))
    text = pdf_text(path)
    assert text == unicodedata.normalize("NFC", text)
    for name in NAMES:
        assert name in text
    assert "Công tác văn thư, lưu trữ" in text


@needs_poppler
def test_pdf_embeds_only_the_bundled_fonts(rendered: Path) -> None:
    lines = run("pdffonts", str(rendered)).splitlines()[2:]
    assert lines
    fonts = set()
    for line in lines:
        name, *_rest = line.split()
        # name type… encoding emb sub uni object ID: emb is the 5th field from the end.
        assert line.split()[-5] == "yes", line
        fonts.add(name.split("+")[-1])
    assert fonts == {"NotoSans-Regular", "NotoSans-Bold"}


@needs_poppler
def test_pdf_prints_hostile_text_literally(tmp_path: Path) -> None:
    path = tmp_path / "hostile.pdf"
    path.write_bytes(pdf.render(document(scope=HOSTILE, by=HOSTILE)))
    text = pdf_text(path)
    assert HOSTILE in text  # the scope line is one centred line
    assert squash(HOSTILE) in squash(text)


@needs_poppler
def test_pdf_truncates_long_tables_with_a_note(tmp_path: Path) -> None:
    count = pdf.MAX_TABLE_ROWS + 7
    rows = tuple((f"Đơn vị số {i}", i, 0.5, 1.0, date(2026, 1, 1), None) for i in range(count))
    listed = tmp_path / "list.pdf"
    listed.write_bytes(pdf.render(document(rows=rows)))
    text = squash(pdf_text(listed))
    assert f"Đơn vị số {pdf.MAX_TABLE_ROWS - 1} " in text
    assert f"Đơn vị số {pdf.MAX_TABLE_ROWS} " not in text
    assert "Bảng chỉ in 500 dòng đầu trong tổng số 507 dòng." in text
    assert "XLSX" in text
    # A generator is not drained to count it: the note says only what was printed.
    streamed = tmp_path / "gen.pdf"
    streamed.write_bytes(pdf.render(document(rows=(r for r in rows))))
    assert "Bảng chỉ in 500 dòng đầu. " in squash(pdf_text(streamed))
    # The header row repeats on every page the table runs onto.
    pages = int(re.search(r"Pages:\s+(\d+)", run("pdfinfo", str(listed))).group(1))  # type: ignore[union-attr]
    for page in range(3, pages + 1):
        assert "Tỷ lệ khắc phục" in run(
            "pdftotext", "-f", str(page), "-l", str(page), str(listed), "-"
        )


def test_pdf_renders_without_typst_warnings(caplog: pytest.LogCaptureFixture) -> None:
    # Typst warns when a font family the template asks for is not among the fonts it was given
    # (the bundled folder missing from the wheel, a renamed family): none may appear.
    with caplog.at_level("WARNING", logger="inspection.reports"):
        assert pdf.render(document(normal="NFD", scope=HOSTILE)).startswith(b"%PDF-")
    assert caplog.records == []


def test_pdf_of_a_report_made_now_renders() -> None:
    """Found by downloading a real summary: the clock's instant has microseconds, which Typst
    refuses as the PDF's date (a 500); the tests' fixed instants had none."""
    made_now = dataclasses.replace(
        document(), generated_at=datetime(2026, 12, 1, 23, 48, 40, 123456, UTC)
    )
    assert pdf.render(made_now).startswith(b"%PDF-")


def test_pdf_data_is_json_not_markup() -> None:
    data = pdf.data(document(scope=HOSTILE))
    assert data["scope"] == HOSTILE
    assert json.loads(json.dumps(data)) == data
    assert data["tables"][0]["rows"][0] == [
        "Xã La Hiên",
        "12",
        "83%",
        "7,3",
        "01/03/2026",
        "01/03/2026 08:30",
    ]


# --- charts ------------------------------------------------------------------------------------


def test_chart_spec_is_vega_lite_with_its_data_in_order() -> None:
    spec = charts.spec(CHART)
    json.dumps(spec)
    assert spec["$schema"].endswith("vega-lite/v5.json")
    assert [v["category"] for v in spec["data"]["values"]] == list(CHART.categories)
    assert spec["encoding"]["y"]["sort"] is None
    assert spec["encoding"]["x"]["title"] == "Số phát hiện"


def test_chart_svg_has_the_labels_as_text_in_the_bundled_font() -> None:
    decomposed = Chart(
        unicodedata.normalize("NFD", CHART.title),
        tuple(unicodedata.normalize("NFD", c) for c in CHART.categories),
        (1234.5, 7, 3),
        CHART.value_label,
    )
    svg = charts.svg(decomposed)
    assert svg.startswith("<svg")
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", svg)
    for label in (*CHART.categories, CHART.title, "1.234,5"):
        assert label in texts, label
    assert set(re.findall(r'font-family="([^"]*)"', svg)) == {"Noto Sans"}


# --- XLSX --------------------------------------------------------------------------------------


def test_xlsx_sheets_headers_values_and_formats(tmp_path: Path) -> None:
    path = tmp_path / "r.xlsx"
    xlsx.write(document(normal="NFD"), path)
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == ["Tổng quan", "Theo đơn vị", "Số liệu biểu đồ"]
    overview = [c for row in book["Tổng quan"].iter_rows(values_only=True) for c in row if c]
    assert "BÁO CÁO TỔNG HỢP KẾT QUẢ KIỂM TRA" in overview
    assert "Từ ngày 01/01/2026 đến ngày 31/12/2026" in overview
    assert "Số cuộc kiểm tra" in overview
    sheet = book["Theo đơn vị"]
    assert sheet["A1"].value == "Theo đơn vị"
    assert [c.value for c in sheet[2]] == [c.header for c in COLUMNS]
    assert sheet["A2"].font.b
    assert sheet.freeze_panes == "A3"
    assert sheet.auto_filter.ref == "A2:F6"
    assert [c.value for c in sheet[3]] == [
        "Xã La Hiên",
        12,
        0.83,
        7.25,
        # Excel has no time zones: local wall time, naive, as openpyxl reads it back.
        datetime(2026, 3, 1),  # noqa: DTZ001
        datetime(2026, 3, 1, 8, 30),  # noqa: DTZ001
    ]
    assert sheet["B4"].value == 1234567
    assert sheet["F4"].value == datetime(2027, 1, 1, 0, 0)  # noqa: DTZ001 - naive UTC 17:00 at +07:00
    assert sheet["A5"].value == HOSTILE
    assert sheet["A6"].value == '=HYPERLINK("http://x","bấm")'
    assert sheet["A6"].data_type == "s"
    formats = [sheet.cell(3, col).number_format for col in range(2, 7)]
    assert formats == ["#,##0", "0.0%", "#,##0.0", "dd/mm/yyyy", "dd/mm/yyyy hh:mm"]
    assert sheet.column_dimensions["A"].width >= 15
    with zipfile.ZipFile(path) as parts:
        # Text is never a formula: no <f> anywhere in the table's sheet.
        assert "<f>" not in parts.read("xl/worksheets/sheet2.xml").decode()


def test_xlsx_has_native_bar_charts_on_the_overview(tmp_path: Path) -> None:
    path = tmp_path / "r.xlsx"
    xlsx.write(document(), path)
    with zipfile.ZipFile(path) as parts:
        names = parts.namelist()
        chart = parts.read("xl/charts/chart1.xml").decode()
        overview_rels = parts.read("xl/worksheets/_rels/sheet1.xml.rels").decode()
    assert "xl/charts/chart2.xml" not in names
    assert "<c:barChart>" in chart
    assert '<c:barDir val="bar"/>' in chart
    refs = re.findall(r"<c:f>([^<]*)</c:f>", chart)
    assert refs == ["'Số liệu biểu đồ'!$A$3:$A$5", "'Số liệu biểu đồ'!$B$3:$B$5"]
    # The cached values (what a viewer that does not recalculate draws) are the chart's.
    assert re.findall(r"<c:v>([^<]*)</c:v>", chart) == [
        "Số phát hiện",
        *CHART.categories,
        "12",
        "7",
        "3",
    ]
    # Categories top-down in the order given (Excel's default draws the first at the bottom).
    assert re.search(r"<c:catAx>.*?<c:orientation val=\"maxMin\"/>.*?</c:catAx>", chart, re.S)
    assert "Phát hiện theo lĩnh vực" in chart
    assert "drawing" in overview_rels
    data = openpyxl.load_workbook(path)["Số liệu biểu đồ"]
    assert [c.value for c in data["A"]][2:5] == list(CHART.categories)
    assert [c.value for c in data["B"]][2:5] == [12, 7, 3]


def test_xlsx_long_table_continues_on_a_second_sheet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(xlsx, "MAX_ROWS", 5)  # 3 data rows per sheet
    rows = tuple((f"Đơn vị {i}", i, 0.1, 1.0, None, None) for i in range(7))
    path = tmp_path / "r.xlsx"
    xlsx.write(document(rows=rows), path)
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == [
        "Tổng quan",
        "Theo đơn vị",
        "Theo đơn vị (2)",
        "Theo đơn vị (3)",
        "Số liệu biểu đồ",
    ]
    values = [
        row[0]
        for name in ("Theo đơn vị", "Theo đơn vị (2)", "Theo đơn vị (3)")
        for row in book[name].iter_rows(min_row=3, values_only=True)
    ]
    assert values == [f"Đơn vị {i}" for i in range(7)]
    assert [c.value for c in book["Theo đơn vị (3)"][2]] == [c.header for c in COLUMNS]


def test_xlsx_200k_rows_in_constant_memory(tmp_path: Path) -> None:
    warm: list[int] = []
    xlsx.write(document(rows=many_rows(20_000, warm)), tmp_path / "warm.xlsx")
    samples: list[int] = []
    before = rss_kib()
    xlsx.write(document(rows=many_rows(200_000, samples)), tmp_path / "big.xlsx")
    samples.append(rss_kib())
    growth_mib = (max(samples) - before) / 1024
    assert growth_mib < 8, (growth_mib, samples)
    assert (tmp_path / "big.xlsx").stat().st_size > 5_000_000


# --- CSV ---------------------------------------------------------------------------------------


def parse(data: bytes) -> list[list[str]]:
    assert data.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(data[3:].decode("utf-8"), newline="")))


def test_csv_bom_header_and_cells() -> None:
    table = document(normal="NFD").tables[0]
    data = b"".join(report_csv.stream(table))
    assert data.startswith(b"\xef\xbb\xbf" + "Đơn vị,".encode())
    assert b"\r\n" in data and b"\n" not in data.replace(b"\r\n", b"")
    assert parse(data) == [
        [c.header for c in COLUMNS],
        ["Xã La Hiên", "12", "83%", "7.3", "2026-03-01", "2026-03-01T08:30:00+07:00"],
        ["Huyện Đồng Hỷ", "1234567", "83.3%", "9.0", "2026-12-31", "2027-01-01T00:00:00+07:00"],
        [HOSTILE, "0", "0%", "", "", ""],
        ['\'=HYPERLINK("http://x","bấm")', "-3", "100%", "-0.1", "2026-01-01", ""],
    ]


def test_csv_neutralises_formulas_and_quotes_per_rfc_4180() -> None:
    cells = [
        "=1+1",
        "+84 912 345 678",
        "-2",
        "@SUM(A1)",
        "\tx",
        "\rx",
        "a,b",
        'say "hi"',
        "two\nlines",
        "bình thường",
        "'đã có nháy",
    ]
    table = Table(
        "t", "T", (Column("v", "=Tiêu đề"), Column("n", "Số", "integer")), [(c, -5) for c in cells]
    )
    rows = parse(b"".join(report_csv.stream(table)))
    assert rows[0] == ["'=Tiêu đề", "Số"]
    assert [r[0] for r in rows[1:]] == [
        "'=1+1",
        "'+84 912 345 678",
        "'-2",
        "'@SUM(A1)",
        "'\tx",
        "'\rx",
        "a,b",
        'say "hi"',
        "two\nlines",
        "bình thường",
        "'đã có nháy",
    ]
    assert {r[1] for r in rows[1:]} == {"-5"}  # a number we formatted is not text
    raw = b"".join(report_csv.stream(table)).decode("utf-8-sig")
    assert '"say ""hi"""' in raw
    assert '"two\nlines"' in raw


def test_csv_streams_200k_rows_in_chunks_and_constant_memory() -> None:
    list(report_csv.stream(Table("w", "W", COLUMNS, many_rows(20_000, []))))  # warm up
    samples: list[int] = []
    before = rss_kib()
    chunks = 0
    total = 0
    biggest = 0
    lines = 0
    for chunk in report_csv.stream(Table("big", "Lớn", COLUMNS, many_rows(200_000, samples))):
        chunks += 1
        total += len(chunk)
        biggest = max(biggest, len(chunk))
        lines += chunk.count(b"\r\n")
    samples.append(rss_kib())
    assert lines == 200_001
    assert chunks > 100
    assert biggest < 2 * report_csv.CHUNK_BYTES
    growth_mib = (max(samples) - before) / 1024
    assert growth_mib < 4, (growth_mib, samples)


def test_csv_is_lazy() -> None:
    pulled = 0

    def rows() -> Iterator[tuple[Cell, ...]]:
        nonlocal pulled
        for i in range(1_000_000):
            pulled += 1
            yield (f"Xã {i}", i, 0.5, 1.5, None, None)

    chunks = report_csv.stream(Table("t", "T", COLUMNS, rows()))
    first = next(chunks)
    # The BOM and the header row come first, before any row is read.
    assert first.startswith(b"\xef\xbb\xbf") and first.endswith(b"\r\n") and pulled == 0
    assert first.count(b"\r\n") == 1
    next(chunks)
    assert pulled < 10_000


# --- rows fed from the event loop (`downloads.RowFeed`) -----------------------------------------


async def test_a_row_feed_closes_its_source_when_the_download_is_left() -> None:
    """The renderer's thread takes rows as they come, a chunk at a time; a download left halfway
    (the renderer stops) closes the source when the feed's `async with` ends, so its
    transaction ends with the download."""
    import anyio.to_thread

    from inspection.reports.downloads import RowFeed

    fetched: list[int] = []
    closed: list[bool] = []

    async def chunks() -> Any:
        try:
            for n in range(100):
                fetched.append(n)
                yield [n, n]
        finally:
            closed.append(True)

    def first(rows: RowFeed, count: int) -> list[tuple[Cell, ...]]:
        taken = []
        for row in rows:
            taken.append(row)
            if len(taken) == count:
                break
        return taken

    async with RowFeed(chunks(), lambda n: (n,)) as rows:
        taken = await anyio.to_thread.run_sync(first, rows, 3)
        assert taken == [(0,), (0,), (1,)]
        assert fetched == [0, 1] and closed == []
    assert closed == [True]
    assert fetched == [0, 1]

    # Read to the end: every chunk once, in order, and the source is closed.
    fetched.clear()
    closed.clear()
    async with RowFeed(chunks(), lambda n: (n,)) as rows:
        everything = await anyio.to_thread.run_sync(lambda: list(rows))
    assert everything == [(n,) for n in range(100) for _ in range(2)]
    assert fetched == list(range(100)) and closed == [True]
