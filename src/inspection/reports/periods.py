"""The period of a report: calendar dates in the service's time zone, both ends included.

A visit counts in the period of its check-in date (its window's first day while it is not checked
in), a finding by the local date of `observed_at`, an action with the finding it comes from. The
local dates become one half-open range of UTC instants, `[start, end)`, which the timestamp
indexes serve on both databases.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from inspection.errors import FieldError, InvalidParameter

_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# Far enough for any real record, near enough that converting between zones never overflows.
EARLIEST = date(1900, 1, 1)
LATEST = date(8999, 12, 31)


@dataclass(frozen=True, slots=True)
class Period:
    """From `first` to `last` (local dates, inclusive), and the UTC instants that bound it."""

    first: date
    last: date
    start: datetime  # UTC, included: the first day's local midnight
    end: datetime  # UTC, excluded: the local midnight after the last day

    @classmethod
    def parse(cls, first: str | None, last: str | None, zone: ZoneInfo, now: datetime) -> Period:
        """`of` for the query parameters as written: `YYYY-MM-DD` each (400 naming it)."""
        return cls.of(_date(first, "from"), _date(last, "to"), zone, now)

    @classmethod
    def of(cls, first: date | None, last: date | None, zone: ZoneInfo, now: datetime) -> Period:
        """The period asked for; the current local year where an end is left out.

        400 naming the parameter (`from`, `to`) when it lies outside 1900-8999 or `from` comes
        after `to`.
        """
        year = now.astimezone(zone).year
        first = first or date(year, 1, 1)
        last = last or date(year, 12, 31)
        for name, value in (("from", first), ("to", last)):
            if not EARLIEST <= value <= LATEST:
                raise _invalid(name, "must lie between 1900-01-01 and 8999-12-31")
        if first > last:
            raise _invalid("from", f"must not come after to ({last.isoformat()})")
        return cls(
            first, last, local_midnight(first, zone), local_midnight(last + timedelta(1), zone)
        )


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    """The UTC instant at which `day` begins in `zone`."""
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def _date(raw: str | None, name: str) -> date | None:
    if raw is None or raw == "":
        return None
    if not _ISO_DATE.fullmatch(raw):
        raise _invalid(name, f"{raw[:40]!r} is not a date (YYYY-MM-DD)")
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise _invalid(name, f"{raw!r} is not a date of the calendar") from None


def _invalid(name: str, message: str) -> InvalidParameter:
    return InvalidParameter(f"{name}: {message}", [FieldError(name, message)])
