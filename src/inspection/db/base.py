"""Declarative bases shared by every model.

advanced-alchemy supplies UUIDv7 primary keys, UTC-aware timestamps (`DateTimeUTC`) and portable
types (`GUID`, `JsonB`) that behave the same on SQLite and PostgreSQL, plus a naming convention so
that Alembic names constraints identically on both.
"""

from __future__ import annotations

from advanced_alchemy.base import DefaultBase, UUIDv7AuditBase, orm_registry
from sqlalchemy import Integer
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

metadata = orm_registry.metadata

__all__ = ["DefaultBase", "Entity", "Record", "metadata"]


class Record(DefaultBase):
    """Base for tables with their own key (audit entries, counters, bookkeeping)."""

    __abstract__ = True


class Entity(UUIDv7AuditBase):
    """Base for the domain's mutable records: a UUIDv7 id, `created_at`, `updated_at` and `version`.

    `version` is SQLAlchemy's version counter: every UPDATE carries `WHERE version = :seen`, so two
    writers that read the same version cannot both win, even between the `If-Match` check and the
    commit.
    """

    __abstract__ = True

    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)

    @declared_attr.directive
    @classmethod
    def __mapper_args__(cls) -> dict[str, object]:
        return {"version_id_col": cls.__table__.c.version}
