"""Units (a tree of any depth), users, grants and authentication bookkeeping."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from uuid import UUID

from advanced_alchemy.types import GUID, DateTimeUTC
from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from inspection.db.base import Entity, Record


class UnitKind(StrEnum):
    """Kinds of administrative unit.

    Levels are never hard-coded: a kind says what a unit is, its parent says where it sits (the
    2025 reform removed districts; the tree just got shallower).
    """

    PROVINCE = "province"
    DEPARTMENT = "department"
    DISTRICT = "district"
    COMMUNE = "commune"
    ONE_STOP_SHOP = "one_stop_shop"
    PUBLIC_SERVICE_UNIT = "public_service_unit"
    OTHER = "other"


class Unit(Entity):
    """An administrative unit. `path` is the chain of ancestor ids ("/a/b/c/"), so "the subtree of
    X" is a prefix match that uses an index on both databases, at any depth."""

    __tablename__ = "units"
    __table_args__ = (
        Index("ix_units_path", "path", postgresql_ops={"path": "text_pattern_ops"}),
        Index("ix_units_name_folded", "name_folded"),
    )

    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    name_folded: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(32))
    parent_id: Mapped[UUID | None] = mapped_column(
        GUID, ForeignKey("units.id", ondelete="RESTRICT"), index=True
    )
    path: Mapped[str] = mapped_column(String(2048))
    depth: Mapped[int] = mapped_column(Integer, default=0)


class User(Entity):
    """A person who signs in. `unit_id` is where they work (their home unit), not a permission."""

    __tablename__ = "users"

    username: Mapped[str] = mapped_column(String(64), unique=True)
    full_name: Mapped[str] = mapped_column(String(255))
    full_name_folded: Mapped[str] = mapped_column(String(255), index=True)
    email: Mapped[str | None] = mapped_column(String(255))
    unit_id: Mapped[UUID | None] = mapped_column(
        GUID, ForeignKey("units.id", ondelete="RESTRICT"), index=True
    )
    password_hash: Mapped[str] = mapped_column(String(255))
    password_changed_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)

    grants: Mapped[list[Grant]] = relationship(
        back_populates="user", lazy="raise", cascade="all, delete-orphan"
    )


class Grant(Entity):
    """A role on a unit, covering its whole subtree. No unit means the whole system."""

    __tablename__ = "grants"
    __table_args__ = (
        UniqueConstraint("user_id", "role", "unit_id", name="uq_grants_user_role_unit"),
    )

    user_id: Mapped[UUID] = mapped_column(
        GUID, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[str] = mapped_column(String(32))
    unit_id: Mapped[UUID | None] = mapped_column(
        GUID, ForeignKey("units.id", ondelete="RESTRICT"), index=True
    )
    granted_by: Mapped[UUID | None] = mapped_column(GUID)

    user: Mapped[User] = relationship(back_populates="grants", lazy="raise")


class SignInSession(Record):
    """One sign-in and every token rotated from it: a refresh-token family.

    Access tokens name their session (the `sid` claim) and every request joins this row by its
    primary key in the statement that loads the user, so revoking it (`revoked_at`, on reuse of a
    refresh token) ends the session's access tokens at once, not when they expire.
    """

    __tablename__ = "sessions"

    id: Mapped[UUID] = mapped_column(GUID, primary_key=True)
    user_id: Mapped[UUID] = mapped_column(
        GUID, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))


class RefreshToken(Record):
    """One refresh token of a rotation family (its session). Only a hash of its secret is kept."""

    __tablename__ = "refresh_tokens"

    id: Mapped[UUID] = mapped_column(GUID, primary_key=True)
    # Every token belongs to a session row: a token without one could never be checked.
    family_id: Mapped[UUID] = mapped_column(
        GUID, ForeignKey("sessions.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[UUID] = mapped_column(
        GUID, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    secret_hash: Mapped[str] = mapped_column(String(64))
    issued_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))


class LoginThrottle(Record):
    """A counter of wrong passwords (units/throttle.py): per username (`u:<username>`) or per
    username and client address (`p:<hash>`), for usernames known or not, so a refusal reveals
    nothing about who exists."""

    __tablename__ = "login_throttle"

    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    username: Mapped[str] = mapped_column(String(64), index=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    blocked_until: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
