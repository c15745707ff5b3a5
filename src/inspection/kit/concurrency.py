"""Optimistic concurrency: `version` on every mutable record, `ETag` out, `If-Match` in."""

from __future__ import annotations

import re

from inspection.errors import PreconditionFailed, PreconditionRequired

# ASCII digits only (str.isdigit also accepts "²"), and few enough to be a real version.
_VERSION = re.compile(r"[0-9]{1,18}")


def etag(version: int) -> str:
    """The ETag of a record at `version`."""
    return f'"{version}"'


def parse_if_match(header: str | None) -> int | None:
    """The version named by an `If-Match` header; None when absent.

    Accepts `"3"`, `W/"3"` and a bare `3`, since tablet HTTP stacks differ in how they echo ETags.
    A list of candidates or `*` is not meaningful for a single version and is rejected.
    """
    if header is None or not header.strip():
        return None
    value = header.strip()
    if value.startswith("W/"):
        value = value[2:]
    value = value.strip('"')
    if not _VERSION.fullmatch(value):
        raise PreconditionFailed("If-Match must carry the ETag of the record, as GET returned it")
    return int(value)


def check_version(current: int, expected: int | None, what: str) -> None:
    """Raise 428 when no version was given, 412 when it is not the current one."""
    if expected is None:
        raise PreconditionRequired(f"send If-Match with the ETag of the {what} you are changing")
    if expected != current:
        raise PreconditionFailed(
            f"the {what} has changed (version {current}, you sent {expected}); reload it",
            current_version=current,
        )
