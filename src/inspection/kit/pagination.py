"""Keyset pagination: an opaque cursor holding the last row's sort key.

Stable under inserts (a new row never shifts a page) and as fast on page 1,000 as on page 1.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import msgspec
from sqlalchemy import Select, and_, or_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from inspection.errors import Rejected

T = TypeVar("T")
_INT64 = (-(2**63), 2**63 - 1)
DEFAULT_LIMIT = 50
MAX_LIMIT = 500


class Page(msgspec.Struct, Generic[T]):
    """A page of a list: the items and the cursor of the next page (null on the last)."""

    items: list[T]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class SortKey:
    """One column of the sort order; the last key must make the order unique."""

    column: InstrumentedAttribute[Any]
    descending: bool = False


def _encode(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(msgspec.json.encode(values)).decode().rstrip("=")


def _decode(cursor: str, keys: Sequence[SortKey]) -> list[Any]:
    try:
        raw = msgspec.json.decode(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(raw, list) or len(raw) != len(keys):
            raise ValueError("wrong shape")
        if any(isinstance(v, int) and not _INT64[0] <= v <= _INT64[1] for v in raw):
            raise ValueError("out of range")
        return [
            msgspec.convert(value, key.column.type.python_type, strict=False)
            for value, key in zip(raw, keys, strict=True)
        ]
    except (ValueError, TypeError, binascii.Error, msgspec.ValidationError, msgspec.DecodeError):
        raise Rejected.field("cursor", "is not a cursor this list produced") from None


def _after(keys: Sequence[SortKey], values: list[Any]) -> Any:
    # (a, b) > (x, y) spelled out as a OR-chain: row values compare in one direction only.
    clauses = []
    for i, key in enumerate(keys):
        equal = [k.column == v for k, v in zip(keys[:i], values[:i], strict=True)]
        step = key.column < values[i] if key.descending else key.column > values[i]
        clauses.append(and_(*equal, step))
    return or_(*clauses)


async def page_rows(
    session: AsyncSession,
    statement: Select[Any],
    keys: Sequence[SortKey],
    cursor: str | None,
    limit: int,
) -> tuple[list[Any], str | None]:
    """Run `statement` for one page; return its rows (tuples) and the next cursor.

    The sort keys are read from the first entity of each row.
    """
    if cursor:
        statement = statement.where(_after(keys, _decode(cursor, keys)))
    order = [k.column.desc() if k.descending else k.column.asc() for k in keys]
    rows = list((await session.execute(statement.order_by(*order).limit(limit + 1))).tuples().all())
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    last = rows[-1][0]
    values = [msgspec.to_builtins(getattr(last, k.column.key)) for k in keys]
    return rows, _encode(values)


async def keyset_page(
    session: AsyncSession,
    statement: Select[Any],
    keys: Sequence[SortKey],
    cursor: str | None,
    limit: int,
) -> tuple[list[Any], str | None]:
    """`page_rows` for a statement selecting one entity: returns the entities."""
    rows, next_cursor = await page_rows(session, statement, keys, cursor, limit)
    return [row[0] for row in rows], next_cursor
