"""Times that clients send: one check for all of them."""

from __future__ import annotations

from datetime import UTC, datetime

from inspection.errors import Rejected

# Far enough for any real record, near enough that converting between zones never overflows.
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def checked_moment(moment: datetime, field: str) -> datetime:
    """`moment` in UTC; 422 naming `field` without an offset or outside 1900-9000."""
    if moment.tzinfo is None:
        raise Rejected.field(field, "needs a time zone offset (RFC 3339), e.g. Z or +07:00")
    if not (
        EARLIEST.replace(tzinfo=None) < moment.replace(tzinfo=None) < LATEST.replace(tzinfo=None)
    ):
        raise Rejected.field(field, "is outside the years 1900 to 9000")
    return moment.astimezone(UTC)


def system_now() -> datetime:
    """The current time, in UTC (the app's default clock)."""
    return datetime.now(UTC)
