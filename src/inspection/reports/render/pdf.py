"""PDF of a report, typeset by Typst from `report.typ` with the bundled Noto Sans.

Why Typst: a pip wheel with no system libraries (no Cairo/Pango as WeasyPrint needs, no
LaTeX, no headless browser), it lays out a 10-page report in well under a second, and its tables
repeat their header row across pages by themselves.

Safety: the template is fixed; the document's data goes in as one JSON string (`sys.inputs`)
that the template reads with `json()` and places as string values, which Typst never parses as
markup. So no escaping is needed and none can be forgotten.

A4 portrait; the title block (with the national heading when `issuer` is set), the key figures,
the charts (SVG from `charts.svg`), then the tables. A table longer than `MAX_TABLE_ROWS` shows
its first rows and a note sending the reader to the XLSX or CSV, which hold every row: a PDF is
for reading, and nobody reads page 300. Footer: the title, and "Trang 1/N".
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sized
from itertools import islice
from pathlib import Path
from typing import Any

import typst

from inspection.reports.document import ReportDocument, Table
from inspection.reports.render import charts
from inspection.reports.render.cells import display, nfc, period, vi_moment
from inspection.reports.render.fonts import FONT_DIR, typst_fonts

log = logging.getLogger("inspection.reports")

MAX_TABLE_ROWS = 500  # per table; about 12 pages of a 6-column table
_NUMERIC = frozenset({"integer", "decimal", "percent"})


# A file next to this module (wheels install unzipped): Typst reads it by path, and the same
# folder is the only place the template could read files from.
TEMPLATE = Path(__file__).resolve().parent / "report.typ"


def _vi_count(count: int) -> str:
    return f"{count:,}".replace(",", ".")


def _table(table: Table) -> dict[str, Any]:
    kinds = [column.kind for column in table.columns]
    rows = [
        [display(kind, value) for kind, value in zip(kinds, row, strict=True)]
        for row in islice(table.rows, MAX_TABLE_ROWS + 1)
    ]
    note = None
    if len(rows) > MAX_TABLE_ROWS:
        rows.pop()
        # The total is known only when the rows are a sequence; a generator (a database cursor)
        # is not drained just to count it.
        total = len(table.rows) if isinstance(table.rows, Sized) else None
        shown = _vi_count(MAX_TABLE_ROWS)
        of = f" trong tổng số {_vi_count(total)} dòng" if total is not None else ""
        note = (
            f"Bảng chỉ in {shown} dòng đầu{of}. "
            "Bảng đầy đủ có trong tệp Excel (XLSX) hoặc CSV của báo cáo này."
        )
    return {
        "title": nfc(table.title),
        "headers": [nfc(column.header) for column in table.columns],
        # Text columns share the width left; numbers and dates take what they need.
        "widths": ["fr" if kind == "text" else "auto" for kind in kinds],
        "right": [kind in _NUMERIC for kind in kinds],
        "rows": rows,
        "note": note,
    }


def data(doc: ReportDocument) -> dict[str, Any]:
    """What the template receives: every string NFC, every cell formatted for reading."""
    generated = f"Lập lúc {vi_moment(doc.generated_at)} bởi {nfc(doc.generated_by)}"
    return {
        "issuer": nfc(doc.issuer),
        "title": nfc(doc.title),
        "author": nfc(doc.generated_by),
        "scope": nfc(doc.scope_name),
        "period": period(doc.period_from, doc.period_to),
        "generated": generated,
        "footer": f"{nfc(doc.title)} — {nfc(doc.scope_name)}",
        "highlights": [[nfc(label), nfc(value)] for label, value in doc.highlights],
        "charts": [{"title": nfc(c.title), "svg": charts.svg(c)} for c in doc.charts],
        "tables": [_table(table) for table in doc.tables],
    }


def render(doc: ReportDocument) -> bytes:
    """The report as PDF bytes (A4, Vietnamese, fonts embedded)."""
    payload = json.dumps(data(doc), ensure_ascii=False)
    output, warnings = typst.compile_with_warnings(
        str(TEMPLATE),
        # Nothing is read from disk but the template's own folder; the data is in sys.inputs.
        root=str(TEMPLATE.parent),
        font_paths=typst_fonts(),
        ignore_system_fonts=True,
        sys_inputs={"data": payload},
        # Reproducible bytes: the PDF's creation date is the report's, not the clock's. Typst
        # refuses microseconds, which a real clock always has.
        timestamp=doc.generated_at.replace(microsecond=0),
    )
    # A warning is a report that may look wrong (typically a font family not found among the
    # bundled fonts): worth seeing in the logs, not worth refusing the leader's download.
    # (Typst does not warn about a glyph missing from the font: it draws a box. Noto Sans has
    # every Vietnamese letter; CJK or other scripts in a name would show as boxes.)
    for warning in warnings:
        log.warning("typst: %s %s", warning.message, warning.hints)
    return output


__all__ = ["FONT_DIR", "MAX_TABLE_ROWS", "data", "render"]
