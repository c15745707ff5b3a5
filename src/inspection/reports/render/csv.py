"""CSV of one table: for spreadsheets and scripts, streamed in constant memory.

- UTF-8 with a byte order mark first: without it Excel (the leaders' tool) reads the file as the
  machine's ANSI code page and Vietnamese letters come out garbled.
- One header row of the Vietnamese headers, then one row per table row; RFC 4180: comma
  separated, CRLF line ends, a field quoted when it holds a comma, quote or line break, quotes
  doubled.
- Cells formatted by column kind, machine-plain (`cells.machine`): ISO dates, ISO instants with
  the +07:00 offset, `.` decimals, no thousands separators, percentages as `83.3%`.
- Formula injection (OWASP "CSV Injection"): a text cell (or header) that starts with `=`, `+`,
  `-`, `@`, a tab or a carriage return gets a leading apostrophe, so a unit named
  `=HYPERLINK(...)` is shown, not evaluated. Numbers we format ourselves are left alone (`-3`
  stays a number). The apostrophe is visible in the cell: the price of safety OWASP accepts.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import Boolean, ColumnElement, Text, case, cast, func, literal_column, or_
from sqlalchemy.sql.elements import UnaryExpression
from sqlalchemy.sql.operators import custom_op

from inspection.reports.document import Cell, ColumnKind, Table
from inspection.reports.render.cells import local, machine, nfc

BOM = "\ufeff".encode()
LINE_END = "\r\n"
CHUNK_BYTES = 64 * 1024
# Characters that make a spreadsheet read a cell as a formula (OWASP).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(text: str) -> str:
    """`text`, with a leading apostrophe when a spreadsheet would take it for a formula."""
    return "'" + text if text.startswith(_FORMULA_START) else text


def _text(value: Cell) -> str:
    """A text cell: NFC, neutralised; anything else through `machine`."""
    if isinstance(value, str):
        text = value if unicodedata.is_normalized("NFC", value) else nfc(value)
        return "'" + text if text.startswith(_FORMULA_START) else text
    text, from_text = machine("text", value)
    return neutralise(text) if from_text else text


def _moment(value: Cell) -> str:
    """A datetime cell: ISO with the zone's offset, whole seconds."""
    if isinstance(value, datetime):
        return local(value).replace(microsecond=0).isoformat()
    return _other("datetime", value)


def _integer(value: Cell) -> str:
    """An integer cell."""
    if value.__class__ is int:
        return str(value)
    return _other("integer", value)


def _other(kind: ColumnKind, value: Cell) -> str:
    text, from_text = machine(kind, value)
    return neutralise(text) if from_text else text


def _formatter(kind: ColumnKind) -> Callable[[Cell], str]:
    """The function that writes one column's cells. Chosen once per column, with the common type
    of the column tested first and inline: a register of a million rows is ten million cells,
    and deciding every cell's kind and type anew in `machine` took a third of the time."""
    if kind == "text":
        return _text
    if kind == "datetime":
        return _moment
    if kind == "integer":
        return _integer
    return partial(_other, kind)


def _writer(buffer: io.StringIO) -> Any:
    # lineterminator: RFC 4180 wants CRLF (csv's default too; said here so nobody "fixes" it).
    return csv.writer(buffer, lineterminator=LINE_END, quoting=csv.QUOTE_MINIMAL)


def head(table: Table) -> bytes:
    """The start of the file: the BOM and the header row."""
    buffer = io.StringIO()
    _writer(buffer).writerow([neutralise(nfc(column.header)) for column in table.columns])
    return BOM + buffer.getvalue().encode()


def stream(table: Table) -> Iterator[bytes]:
    """The table as CSV bytes: the BOM, the header row, the rows, in chunks of about 64 KiB.

    Rows are read from `table.rows` as the chunks are consumed, so a generator of a million rows
    is never held in memory.
    """
    buffer = io.StringIO()
    writer = _writer(buffer)
    formatters = [_formatter(column.kind) for column in table.columns]
    yield head(table)
    for row in table.rows:
        writer.writerow([field(value) for field, value in zip(formatters, row, strict=True)])
        # tell() is characters, not bytes: Vietnamese text is a bit longer encoded; "about" 64 KiB.
        if buffer.tell() >= CHUNK_BYTES:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode()


# --- the same fields, written by PostgreSQL ---------------------------------------------------
#
# A register of a million rows is rendered fastest by the database itself: one text per row
# instead of twelve columns decoded into Python objects and formatted again (bench/reports.py:
# a cursor's row of the register costs ≈ 20 µs, one text ≈ 6 µs). These are the SQL twins of the
# formatters above, for the kinds the register has; tests/test_reports.py checks that both give
# the same bytes, hostile text included.


def _is_nfc(text: ColumnElement[str]) -> ColumnElement[bool]:
    """SQL: `text IS NFC NORMALIZED` (PostgreSQL 13+; a postfix test SQLAlchemy has no name for)."""
    return UnaryExpression(text, modifier=custom_op("IS NFC NORMALIZED"), type_=Boolean)


def sql_field(kind: ColumnKind, value: ColumnElement[Any]) -> ColumnElement[str]:
    """PostgreSQL: the CSV field `stream` writes for a `text`, `integer` or `datetime` cell.

    Text: NFC (`normalize`, a UTF-8 database), the formula guard, then quoted as
    `csv.QUOTE_MINIMAL` does (when it holds a comma, a quote or a line break; quotes doubled);
    NULL is empty. Both tests read the stored text: NFC leaves ASCII alone, so they answer the
    same for it, and `normalize` runs once a field, not once a test.
    Datetime: ISO with the offset of the session's `TimeZone`, which the caller sets to the
    service's zone (`cells.ZONE`), whole seconds (truncated, as `replace(microsecond=0)`).
    """
    if kind == "text":
        raw = cast(value, Text)
        # As `nfc`: the check is cheap and almost always true; `normalize` costs ≈ 2 µs a call.
        text = case(
            (_is_nfc(raw), raw), else_=func.normalize(raw, literal_column("NFC"), type_=Text)
        )
        guarded = case((func.left(raw, 1, type_=Text).in_(_FORMULA_START), "'" + text), else_=text)
        special = or_(*(func.strpos(raw, char) > 0 for char in (",", '"', "\r", "\n")))
        quoted = case(
            (special, '"' + func.replace(guarded, '"', '""', type_=Text) + '"'), else_=guarded
        )
        return func.coalesce(quoted, "")
    if kind == "datetime":
        return func.coalesce(func.to_char(value, 'YYYY-MM-DD"T"HH24:MI:SSTZH:TZM', type_=Text), "")
    if kind == "integer":
        return func.coalesce(cast(value, Text), "")
    raise ValueError(f"no SQL twin for {kind} cells")


def sql_line(
    kinds: Sequence[ColumnKind], cells: Sequence[ColumnElement[Any]]
) -> ColumnElement[str]:
    """PostgreSQL: one CSV row without its line end, from the cells of a table's columns."""
    fields = [sql_field(kind, cell) for kind, cell in zip(kinds, cells, strict=True)]
    line = fields[0]
    for field in fields[1:]:
        line = line + "," + field
    return line
