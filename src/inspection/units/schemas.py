"""API shapes of units, users, grants and tokens (msgspec Structs; never ORM objects)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec
from msgspec import UNSET, Meta, UnsetType

from inspection.units.models import UnitKind
from inspection.units.roles import Role

Code = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$(?!\n)",
        description="Unique short code: letters, digits, '.', '_' and '-'.",
        examples=["TN-VONHAI-XA-LAHIEN"],
    ),
]
Name = Annotated[str, Meta(min_length=1, max_length=255, examples=["UBND xã La Hiên"])]
Username = Annotated[
    str,
    Meta(
        min_length=3,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$(?!\n)",
        examples=["thanh.nv"],
    ),
]
Password = Annotated[
    str, Meta(min_length=10, max_length=256, description="At least 10 characters.")
]
Email = Annotated[str, Meta(max_length=255, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$(?!\n)")]


class UnitCreate(msgspec.Struct, forbid_unknown_fields=True):
    """A new unit; without a parent it is a root (only system-wide admins may create roots)."""

    code: Code
    name: Name
    kind: UnitKind
    parent_id: UUID | None = None


class UnitUpdate(msgspec.Struct, forbid_unknown_fields=True):
    """Changes to a unit; omitted fields stay. `parent_id: null` makes it a root."""

    code: Code | UnsetType = UNSET
    name: Name | UnsetType = UNSET
    kind: UnitKind | UnsetType = UNSET
    parent_id: UUID | UnsetType | None = UNSET


class Unit(msgspec.Struct):
    """A unit as clients see it."""

    id: UUID
    code: str
    name: str
    kind: UnitKind
    parent_id: UUID | None
    depth: int
    version: int
    created_at: datetime
    updated_at: datetime


class UnitImportRow(msgspec.Struct, forbid_unknown_fields=True):
    """One row of a bulk import; the parent is named by code (it may be another row)."""

    code: Code
    name: Name
    kind: UnitKind
    parent_code: Code | None = None


class UnitImport(msgspec.Struct, forbid_unknown_fields=True):
    """A JSON bulk import (CSV takes the same columns: code,name,kind,parent_code)."""

    units: Annotated[list[UnitImportRow], Meta(min_length=1, max_length=20_000)]


class UnitImportResult(msgspec.Struct):
    """What an import did: every row was created or already existed identically."""

    created: int
    unchanged: int
    units: list[Unit]


class GrantCreate(msgspec.Struct, forbid_unknown_fields=True):
    """A role on a unit's subtree; `unit_id: null` grants it system-wide."""

    role: Role
    unit_id: UUID | None = None


class Grant(msgspec.Struct):
    """A grant with its unit's code and name for display."""

    id: UUID
    role: Role
    unit_id: UUID | None
    unit_code: str | None
    unit_name: str | None
    created_at: datetime


class UserCreate(msgspec.Struct, forbid_unknown_fields=True):
    """A new user, optionally with grants in the same call."""

    username: Username
    full_name: Name
    password: Password
    email: Email | None = None
    unit_id: UUID | None = None
    grants: Annotated[list[GrantCreate], Meta(max_length=50)] = msgspec.field(default_factory=list)


class UserUpdate(msgspec.Struct, forbid_unknown_fields=True):
    """Changes to a user; a new password signs them out everywhere."""

    full_name: Name | UnsetType = UNSET
    email: Email | UnsetType | None = UNSET
    unit_id: UUID | UnsetType | None = UNSET
    password: Password | UnsetType = UNSET
    is_active: bool | UnsetType = UNSET


class User(msgspec.Struct):
    """A user as clients see it (never the password hash)."""

    id: UUID
    username: str
    full_name: str
    email: str | None
    unit_id: UUID | None
    is_active: bool
    version: int
    created_at: datetime
    updated_at: datetime
    grants: list[Grant]


class PasswordChange(msgspec.Struct, forbid_unknown_fields=True):
    """A user changing their own password."""

    current_password: Annotated[str, Meta(max_length=256)]
    new_password: Password


class TokenRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Sign in with username and password."""

    username: Annotated[str, Meta(min_length=1, max_length=64)]
    password: Annotated[str, Meta(min_length=1, max_length=256)]


class RefreshRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Exchange a refresh token (once) for a new pair."""

    refresh_token: Annotated[str, Meta(min_length=1, max_length=512)]


class TokenPair(msgspec.Struct):
    """A short-lived bearer token and a single-use refresh token."""

    access_token: str
    expires_in: int
    refresh_token: str
    refresh_expires_in: int
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth token type, not a secret
