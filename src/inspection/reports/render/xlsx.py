"""XLSX of a whole report: an overview sheet, one sheet per table, native Excel charts.

Written by XlsxWriter in `constant_memory` mode straight to a file, so a table of a million rows
costs the same memory as one of ten: each row goes to a temporary file as soon as the next one
starts (rows must therefore be written in order, which is how a table streams anyway). The
caller streams the finished file to the client and deletes it.

Layout:
- "Tổng quan" first: the title block, the key figures, the list of sheets, and the charts;
- one sheet per table, named by its Vietnamese `sheet_name` (Excel allows 31 characters): the
  title in row 1, the Vietnamese headers in row 2 (bold, frozen with the title, with an autofilter),
  the rows below. A table longer than a sheet (1,048,576 rows) continues on "title (2)",
  "title (3)" … with the same headers;
- "Số liệu biểu đồ" last: the categories and values each chart is drawn from.

Cells keep their type (numbers are numbers, dates are dates) and are shown with number formats
by column kind: `#,##0`, `#,##0.0`, `0.0%`, `dd/mm/yyyy`, `dd/mm/yyyy hh:mm` (Excel applies
the reader's own separators). Instants are shown in Asia/Ho_Chi_Minh. Text is always written as
a string, never as a formula or link, so a cell starting with `=` is inert.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from datetime import date, datetime
from itertools import chain, islice
from pathlib import Path
from typing import Any

from xlsxwriter import Workbook
from xlsxwriter.format import Format
from xlsxwriter.worksheet import Worksheet

from inspection.reports.document import Cell, Chart, Column, ColumnKind, ReportDocument, Table
from inspection.reports.render.cells import local, nfc, period, vi_moment

OVERVIEW = "Tổng quan"
CHART_DATA = "Số liệu biểu đồ"
MAX_ROWS = 1_048_576  # Excel's limit per sheet
HEADER_ROWS = 2  # the table's title, then its headers
# Column widths come from the header and the first rows only: reading them all would mean
# holding them (constant_memory writes each row out as soon as the next starts).
WIDTH_SAMPLE_ROWS = 200
MIN_WIDTH, MAX_WIDTH = 8, 60

_NUMBER_FORMATS: dict[ColumnKind, str | None] = {
    "text": None,
    "integer": "#,##0",
    "decimal": "#,##0.0",
    "percent": "0.0%",
    "date": "dd/mm/yyyy",
    "datetime": "dd/mm/yyyy hh:mm",
}
# Characters Excel refuses in a sheet name.
_SHEET_FORBIDDEN = re.compile(r"[\[\]:*?/\\\x00-\x1f]")


class _Names:
    """Sheet names: Excel's rules (31 characters, no `[]:*?/\\`, unique ignoring case)."""

    def __init__(self) -> None:
        self.taken: set[str] = {OVERVIEW.casefold(), CHART_DATA.casefold()}

    def claim(self, wanted: str) -> str:
        base = _SHEET_FORBIDDEN.sub("_", nfc(wanted)).strip().strip("'")[:31] or "Bang"
        name, number = base, 1
        while name.casefold() in self.taken:
            number += 1
            suffix = f" ({number})"
            name = base[: 31 - len(suffix)] + suffix
        self.taken.add(name.casefold())
        return name


class _Formats:
    """The workbook's cell formats, made once (each `add_format` is a style in the file)."""

    def __init__(self, book: Workbook) -> None:
        self.title = book.add_format({"bold": True, "font_size": 14})
        self.bold = book.add_format({"bold": True})
        self.header = book.add_format(
            {"bold": True, "text_wrap": True, "valign": "top", "bg_color": "#DDEBF7", "border": 1}
        )
        self.kinds: dict[ColumnKind, Format | None] = {
            kind: book.add_format({"num_format": code}) if code else None
            for kind, code in _NUMBER_FORMATS.items()
        }
        self.wrap = book.add_format({"text_wrap": True, "valign": "top"})


def _width(text: str) -> int:
    # Roughly one width unit per character; headers wrap, so only their longest word counts.
    return max((len(word) for word in text.split()), default=0)


def _write_cell(
    sheet: Worksheet, row: int, col: int, kind: ColumnKind, value: Cell, fmt: Format | None
) -> str:
    """Write one typed cell; answer its text for the width estimate."""
    if value is None:
        return ""
    if isinstance(value, str):
        text = nfc(value)
        sheet.write_string(row, col, text)
        return text
    if isinstance(value, datetime):
        moment = local(value).replace(tzinfo=None)  # Excel has no zones: local wall time
        if kind == "date":
            sheet.write_datetime(row, col, moment.date(), fmt)
        else:
            sheet.write_datetime(row, col, moment, fmt)
        return "00/00/0000 00:00"
    if isinstance(value, date):
        sheet.write_datetime(row, col, value, fmt)
        return "00/00/0000"
    number = float(value)
    if not math.isfinite(number):
        return ""
    if kind == "integer":
        number = round(number)
    sheet.write_number(row, col, number, fmt)
    return f"{number:,.1f}"


def _table_sheets(
    book: Workbook, names: _Names, formats: _Formats, table: Table, first_name: str
) -> list[str]:
    """Write `table` on as many sheets as it needs, the first named `first_name`; answer their
    names."""
    rows: Iterator[tuple[Cell, ...]] = iter(table.rows)
    columns = table.columns
    kinds = [column.kind for column in columns]
    cell_formats = [formats.kinds[kind] for kind in kinds]
    per_sheet = MAX_ROWS - HEADER_ROWS
    written: list[str] = []
    while True:
        batch = islice(rows, per_sheet)
        first = next(batch, None)
        if first is None and written:
            return written
        name = names.claim(table.sheet_name) if written else first_name
        written.append(name)
        sheet = book.add_worksheet(name)
        widths = _head(sheet, formats, table.title, columns)
        count = 0
        for values in chain([first] if first is not None else [], batch):
            row = HEADER_ROWS + count
            for col, (kind, value) in enumerate(zip(kinds, values, strict=True)):
                text = _write_cell(sheet, row, col, kind, value, cell_formats[col])
                if count < WIDTH_SAMPLE_ROWS:
                    widths[col] = max(widths[col], len(text))
            count += 1
        for col, width in enumerate(widths):
            sheet.set_column(
                col,
                col,
                min(max(width + 2, MIN_WIDTH), MAX_WIDTH),
                formats.wrap if kinds[col] == "text" else None,
            )
        if columns:
            sheet.autofilter(HEADER_ROWS - 1, 0, HEADER_ROWS - 1 + count, len(columns) - 1)
        if count < per_sheet:
            return written


def _head(
    sheet: Worksheet, formats: _Formats, title: str, columns: tuple[Column, ...]
) -> list[int]:
    """The title row and the header row, frozen; answer the header widths."""
    sheet.write_string(0, 0, nfc(title), formats.title)
    sheet.set_row(0, 22)
    for col, column in enumerate(columns):
        sheet.write_string(1, col, nfc(column.header), formats.header)
    sheet.freeze_panes(HEADER_ROWS, 0)
    return [_width(nfc(column.header)) for column in columns]


def _overview(
    sheet: Worksheet, formats: _Formats, doc: ReportDocument, contents: list[tuple[str, str]]
) -> int:
    """The title block, key figures and list of sheets; answer the next free row."""
    sheet.set_column(0, 0, 45)
    sheet.set_column(1, 1, 40)
    row = 0
    if doc.issuer:
        sheet.write_string(row, 0, nfc(doc.issuer), formats.bold)
        row += 1
    sheet.write_string(row, 0, nfc(doc.title), formats.title)
    sheet.set_row(row, 22)
    row += 1
    for line in (
        nfc(doc.scope_name),
        period(doc.period_from, doc.period_to),
        f"Lập lúc {vi_moment(doc.generated_at)}, người lập: {nfc(doc.generated_by)}",
    ):
        sheet.write_string(row, 0, line)
        row += 1
    if doc.highlights:
        row += 1
        sheet.write_string(row, 0, "Số liệu chính", formats.bold)
        row += 1
        for label, value in doc.highlights:
            sheet.write_string(row, 0, nfc(label))
            sheet.write_string(row, 1, nfc(value))
            row += 1
    if contents:
        row += 1
        sheet.write_string(row, 0, "Các trang tính", formats.bold)
        row += 1
        for name, title in contents:
            sheet.write_string(row, 0, name)
            sheet.write_string(row, 1, title)
            row += 1
    return row + 1


def _chart_data(
    sheet: Worksheet, formats: _Formats, charts: tuple[Chart, ...]
) -> list[tuple[Chart, int, int]]:
    """Each chart's categories and values, one block under another; answer (chart, first
    data row, last data row) per chart."""
    sheet.set_column(0, 0, 45)
    sheet.set_column(1, 1, 18)
    blocks = []
    row = 0
    for chart in charts:
        sheet.write_string(row, 0, nfc(chart.title), formats.bold)
        sheet.write_string(row + 1, 0, "Danh mục", formats.header)
        sheet.write_string(row + 1, 1, nfc(chart.value_label), formats.header)
        first = row + 2
        for offset, (category, value) in enumerate(
            zip(chart.categories, chart.values, strict=True)
        ):
            sheet.write_string(first + offset, 0, nfc(category))
            number = float(value)
            if math.isfinite(number):
                sheet.write_number(first + offset, 1, number)
        last = first + len(chart.categories) - 1
        blocks.append((chart, first, last))
        row = max(last, first) + 2
    return blocks


def _cached(value: float) -> float | int:
    if not math.isfinite(value):
        return 0
    return int(value) if value.is_integer() else value


def _bar_chart(book: Workbook, chart: Chart, first: int, last: int) -> Any:
    """A native horizontal bar chart of one block of `CHART_DATA`."""
    bar = book.add_chart({"type": "bar"})
    categories = [nfc(c) for c in chart.categories]
    # Whole numbers cached as such ("12", not "12.0"): some viewers print the cache as is.
    values = [_cached(float(value)) for value in chart.values]
    bar.add_series(
        {
            "name": nfc(chart.value_label),
            "categories": [CHART_DATA, first, 0, last, 0],
            "values": [CHART_DATA, first, 1, last, 1],
            # constant_memory cannot read cells back for the chart's cached values; without a
            # cache, viewers that do not recalculate (previews, some mobile apps) draw an empty
            # chart. These keys (XlsxWriter's own, undocumented) give the cache directly.
            "categories_data": categories,
            "values_data": values,
            "data_labels": {"value": True},
            "fill": {"color": "#2F6EBA"},
        }
    )
    bar.set_title({"name": nfc(chart.title), "name_font": {"size": 12, "bold": True}})
    bar.set_legend({"none": True})
    # Excel draws a bar chart's first category at the bottom; reversed, it reads top-down in the
    # order given, as the table and the PDF do.
    bar.set_y_axis({"reverse": True, "crossing": "max"})  # and the value axis stays at the bottom
    bar.set_x_axis({"name": nfc(chart.value_label), "major_gridlines": {"visible": True}})
    bar.set_size({"width": 720, "height": 120 + 24 * max(len(categories), 1)})
    return bar


def write(doc: ReportDocument, path: Path) -> None:
    """Write the report as an XLSX workbook at `path` (overwritten), in constant memory."""
    options = {
        "constant_memory": True,
        # Belt and braces: every cell is written with an explicit type anyway.
        "strings_to_formulas": False,
        "strings_to_urls": False,
        "strings_to_numbers": False,
    }
    with Workbook(str(path), options) as book:
        book.set_properties(
            {
                "title": nfc(doc.title),
                "subject": nfc(doc.scope_name),
                "author": nfc(doc.generated_by),
                "created": local(doc.generated_at).replace(tzinfo=None),
            }
        )
        formats = _Formats(book)
        names = _Names()
        # The overview is written first so it is the first tab, but its list of sheets needs
        # their names: each table's first sheet name is claimed up front (overflow sheets,
        # known only after writing, are not listed).
        overview = book.add_worksheet(OVERVIEW)
        first_names = [names.claim(table.sheet_name) for table in doc.tables]
        contents = [(name, nfc(t.title)) for name, t in zip(first_names, doc.tables, strict=True)]
        chart_row = _overview(overview, formats, doc, contents)
        for table, name in zip(doc.tables, first_names, strict=True):
            _table_sheets(book, names, formats, table, name)
        if doc.charts:
            data = book.add_worksheet(CHART_DATA)
            for chart, first, last in _chart_data(data, formats, doc.charts):
                bar = _bar_chart(book, chart, first, last)
                overview.insert_chart(chart_row, 0, bar)
                # Charts are drawn over cells of default height (20 px).
                chart_row += (120 + 24 * max(len(chart.categories), 1)) // 20 + 2
