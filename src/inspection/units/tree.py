"""Queries over the organisation tree that other packages filter with."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import QueryableAttribute

from inspection.units.models import Unit


def in_subtree(unit_column: QueryableAttribute[UUID], root_id: UUID) -> ColumnElement[bool]:
    """SQL: the unit in `unit_column` is `root_id` or lies below it.

    No visibility check here: it filters records that `access/` already scopes, so an unknown or
    invisible root simply matches nothing, exactly like a root without records (no existence leak,
    and an inspector can filter by the communes they visit without holding grants on them).
    """
    root_path = select(Unit.path).where(Unit.id == root_id).scalar_subquery()
    return unit_column.in_(select(Unit.id).where(Unit.path.startswith(root_path)))
