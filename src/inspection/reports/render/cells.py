"""How one cell reads in each format: machine-plain for CSV, Vietnamese for PDF.

Shared so that CSV and PDF round the same way (XLSX stores the numbers themselves and formats
them with Excel number formats that follow the same rules).

- text: as is, NFC-normalised (decomposed Vietnamese from a tablet keyboard renders as
  separate accents in some viewers and compares unequal to the composed form);
- integer: whole number; CSV `1234567`, PDF `1.234.567` (Vietnamese groups with dots);
- decimal: one decimal; CSV `12.5`, PDF `12,5`;
- percent: the value is a fraction (0.8333) shown as a percentage with at most one decimal and
  no trailing zero; CSV `83.3%`, PDF `83,3%` (0.83 → `83%`);
- date: CSV ISO `2026-01-31`, PDF `31/01/2026`;
- datetime: in the service's zone (Asia/Ho_Chi_Minh; a naive value is taken as UTC, as the
  database stores it); CSV ISO with offset `2026-01-31T08:30:00+07:00`, PDF `31/01/2026 08:30`;
- None, NaN and infinities: empty.
"""

from __future__ import annotations

import math
import unicodedata
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from inspection.reports.document import Cell, ColumnKind

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")


def nfc(text: str) -> str:
    """`text` in Unicode NFC (the check is cheap when it already is, the common case)."""
    if unicodedata.is_normalized("NFC", text):
        return text
    return unicodedata.normalize("NFC", text)


def local(moment: datetime) -> datetime:
    """`moment` in the service's zone; a naive value is UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(ZONE)


def _number(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _one_decimal(number: float) -> Decimal:
    # Half away from zero on the shortest decimal form (7.25 → 7.3), as Excel shows `0.0`;
    # `f"{7.25:.1f}"` would give 7.2 (binary 7.25 rounds half to even).
    return Decimal(repr(number)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def _percent(fraction: float) -> str:
    return str(_one_decimal(fraction * 100)).removesuffix(".0")


def machine(kind: ColumnKind, value: Cell) -> tuple[str, bool]:
    """The cell as CSV shows it, and whether it came from text (so may need neutralising)."""
    if value is None:
        return "", False
    if isinstance(value, str):
        return nfc(value), True
    if isinstance(value, bool):  # a bool is an int: show it as a number, not "True"
        value = int(value)
    if isinstance(value, datetime):
        if kind == "date":
            return local(value).date().isoformat(), False
        return local(value).replace(microsecond=0).isoformat(), False
    if isinstance(value, date):
        return value.isoformat(), False
    number = _number(float(value))
    if number is None:
        return "", False
    if kind == "percent":
        return _percent(number) + "%", False
    if kind == "decimal":
        return str(_one_decimal(number)), False
    if kind == "integer" or isinstance(value, int):
        return str(round(number)), False
    return repr(number), False


def _vi(text: str) -> str:
    # Python groups with "," and marks decimals with "."; Vietnamese swaps them.
    return text.translate({ord(","): ".", ord("."): ","})


def display(kind: ColumnKind, value: Cell) -> str:
    """The cell as a Vietnamese reader sees it (PDF)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return nfc(value)
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, datetime):
        moment = local(value)
        if kind == "date":
            return moment.strftime("%d/%m/%Y")
        return moment.strftime("%d/%m/%Y %H:%M")
    if isinstance(value, date):
        return value.strftime("%d/%m/%Y")
    number = _number(float(value))
    if number is None:
        return ""
    if kind == "percent":
        return _vi(_percent(number)) + "%"
    if kind == "decimal":
        return _vi(f"{_one_decimal(number):,}")
    if kind == "integer" or isinstance(value, int):
        return _vi(f"{round(number):,}")
    return _vi(f"{number:,}")


def vi_date(day: date) -> str:
    """`31/12/2026`."""
    return day.strftime("%d/%m/%Y")


def vi_moment(moment: datetime) -> str:
    """`08:30 ngày 02/01/2027`, in the service's zone."""
    at = local(moment)
    return f"{at:%H:%M} ngày {at:%d/%m/%Y}"


def period(start: date, end: date) -> str:
    """`Từ ngày 01/01/2026 đến ngày 31/12/2026`."""
    return f"Từ ngày {vi_date(start)} đến ngày {vi_date(end)}"
