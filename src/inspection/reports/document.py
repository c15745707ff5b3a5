"""A report as its readers see it, whatever the format: a title block, tables and charts.

The report queries (`reports/repository.py`) answer JSON Structs; each report also builds one
`ReportDocument` from its answer, and the renderers (`reports/render/`) turn that into CSV, XLSX
or PDF. So a number is computed once and every format shows the same one, and a renderer knows
nothing of findings or units.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal

# How a renderer formats a cell: text as is, whole numbers, fractions as percentages, numbers
# with one decimal, dates and instants in the service's time zone.
ColumnKind = Literal["text", "integer", "percent", "decimal", "date", "datetime"]
Cell = str | int | float | date | datetime | None


@dataclass(frozen=True, slots=True)
class Column:
    """One column: its key in the JSON answer, its Vietnamese header, and how to format it."""

    key: str
    header: str
    kind: ColumnKind = "text"


@dataclass(frozen=True, slots=True)
class Table:
    """A titled table; `rows` may be a generator (the findings register streams its rows)."""

    name: str  # short and ASCII, for file names and anchors: "don-vi"
    title: str  # Vietnamese, shown above the table: "Theo đơn vị"
    columns: tuple[Column, ...]
    rows: Iterable[tuple[Cell, ...]]
    # The workbook's sheet name (Excel allows 31 characters): a short Vietnamese label when
    # the title is longer; empty for the title itself.
    sheet: str = ""

    @property
    def sheet_name(self) -> str:
        """What the table's sheet is called."""
        return self.sheet or self.title


@dataclass(frozen=True, slots=True)
class Chart:
    """A bar chart of one series: one bar per category, in the order given."""

    title: str  # Vietnamese: "Phát hiện theo lĩnh vực"
    categories: tuple[str, ...]
    values: tuple[float, ...]
    value_label: str  # the axis title: "Số phát hiện"


@dataclass(frozen=True, slots=True)
class ReportDocument:
    """Everything a rendered report shows.

    `slug` and the period make the download's file name
    (`bao-cao-tong-hop_2026-01-01_2026-12-31.pdf`).
    """

    slug: str  # "bao-cao-tong-hop"
    title: str  # "BÁO CÁO TỔNG HỢP KẾT QUẢ KIỂM TRA"
    scope_name: str  # the unit the report covers: "Tỉnh Thái Nguyên"
    period_from: date
    period_to: date
    generated_at: datetime
    generated_by: str  # the reader's full name
    tables: tuple[Table, ...] = ()
    charts: tuple[Chart, ...] = ()
    # Lines of key figures under the title block: ("Số cuộc kiểm tra", "12").
    highlights: tuple[tuple[str, str], ...] = field(default=())
    # The issuing agency, upper case ("SỞ NỘI VỤ TỈNH THÁI NGUYÊN"). When set, the PDF opens with
    # the national heading of an administrative document (agency left, national name and motto
    # right); when empty, with the title alone.
    issuer: str = ""

    def file_name(self, extension: str) -> str:
        """The download's name: slug, period, extension."""
        period = f"{self.period_from.isoformat()}_{self.period_to.isoformat()}"
        return f"{self.slug}_{period}.{extension}"
