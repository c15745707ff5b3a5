"""HTTP endpoints of units, users, grants, sign-in and the current user.

Thin: parse, call one service method, return a Struct.
"""

from __future__ import annotations

import csv
import io
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.di import Provide
from litestar.params import JSONBody, Parameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT
from sqlalchemy.ext.asyncio import AsyncSession

from inspection.access.principal import Principal
from inspection.errors import FieldError, Rejected
from inspection.kit.concurrency import parse_if_match
from inspection.kit.pagination import DEFAULT_LIMIT, Page
from inspection.kit.problem_details import locate_field
from inspection.units import schemas
from inspection.units.auth import AuthService
from inspection.units.models import UnitKind
from inspection.units.roles import Role
from inspection.units.service import UnitService, UserService
from inspection.web.http import Cursor, IfMatch, Limit, with_etag
from inspection.web.idempotency import Creation


def provide_unit_service(db_session: AsyncSession, principal: Principal) -> UnitService:
    """Units as this user sees them."""
    return UnitService(db_session, principal)


def provide_user_service(db_session: AsyncSession, principal: Principal) -> UserService:
    """Users as this user sees them."""
    return UserService(db_session, principal)


def provide_auth_service(request: Request[Any, Any, Any]) -> AuthService:
    """Sign-in and token rotation."""
    return AuthService(request.app.state.database, request.app.state.settings)


# As many rows as the JSON import accepts (schemas.UnitImport).
MAX_IMPORT_ROWS = 20_000


def parse_unit_import(body: bytes, content_type: str) -> list[schemas.UnitImportRow]:
    """Read a bulk import as JSON (`{"units": [...]}`) or CSV (code,name,kind,parent_code).

    Every bad row is reported, not just the first.
    """
    if "csv" not in content_type:
        try:
            return msgspec.json.decode(body, type=schemas.UnitImport).units
        except msgspec.ValidationError as exc:
            field, message = locate_field(str(exc), "units")
            raise Rejected(
                f"the import is not valid: {field}: {message}", [FieldError(field, message)]
            ) from None
        except msgspec.DecodeError:
            raise Rejected.field("body", "is not valid JSON") from None
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise Rejected.field("body", "CSV must be UTF-8") from None
    try:
        return _csv_rows(text)
    except csv.Error as exc:
        raise Rejected.field("body", f"the CSV is malformed: {exc}") from None


def _csv_rows(text: str) -> list[schemas.UnitImportRow]:
    reader = csv.DictReader(io.StringIO(text))
    missing = {"code", "name", "kind"} - set(reader.fieldnames or [])
    if missing:
        raise Rejected.field("header", f"missing column(s): {', '.join(sorted(missing))}")
    rows: list[schemas.UnitImportRow] = []
    errors: list[FieldError] = []
    for number, raw in enumerate(reader, start=1):
        if number > MAX_IMPORT_ROWS:
            raise Rejected.field("body", f"at most {MAX_IMPORT_ROWS} rows per import")
        record: dict[str, str | None] = {k: (v or "").strip() for k, v in raw.items() if k}
        record["parent_code"] = record.get("parent_code") or None
        try:
            rows.append(msgspec.convert(record, schemas.UnitImportRow))
        except msgspec.ValidationError as exc:
            field, message = locate_field(str(exc), "row")
            errors.append(FieldError(field, message, number))
    if errors:
        raise Rejected(f"{len(errors)} row(s) rejected; nothing was imported", errors)
    if not rows:
        raise Rejected.field("body", "the CSV has no rows")
    return rows


class AuthController(Controller):
    """Sign-in and refresh (no bearer token needed)."""

    path = "/api/v1/auth"
    tags = ["auth"]
    dependencies = {"auth": Provide(provide_auth_service, sync_to_thread=False)}

    @post(
        "/token", status_code=HTTP_200_OK, summary="Sign in", exclude_from_auth=True, security=[{}]
    )
    async def token(
        self,
        auth: AuthService,
        data: JSONBody[schemas.TokenRequest],
        request: Request[Any, Any, Any],
    ) -> schemas.TokenPair:
        """Exchange username and password for a bearer token and a refresh token."""
        # The peer's address; behind a reverse proxy, the address the proxy names, when the
        # server trusts it (docs/operations.md).
        address = request.client.host if request.client else None
        return await auth.sign_in(data, address)

    @post(
        "/refresh",
        status_code=HTTP_200_OK,
        summary="Rotate tokens",
        exclude_from_auth=True,
        security=[{}],
    )
    async def refresh(
        self, auth: AuthService, data: JSONBody[schemas.RefreshRequest]
    ) -> schemas.TokenPair:
        """Exchange a refresh token (once) for a new pair; reuse revokes the session."""
        return await auth.refresh(data)


class MeController(Controller):
    """The signed-in user."""

    path = "/api/v1/me"
    tags = ["auth"]
    dependencies = {
        "users": Provide(provide_user_service, sync_to_thread=False),
        "auth": Provide(provide_auth_service, sync_to_thread=False),
    }

    @get("/", summary="Current user and grants")
    async def me(self, users: UserService) -> schemas.User:
        """Who you are and which roles you hold where."""
        return await users.me()

    @post("/password", status_code=HTTP_204_NO_CONTENT, summary="Change own password")
    async def change_password(
        self, auth: AuthService, principal: Principal, data: JSONBody[schemas.PasswordChange]
    ) -> None:
        """Change your password; every token issued before now stops working."""
        await auth.change_password(principal, data)


class UnitController(Controller):
    """The organisation tree."""

    path = "/api/v1/units"
    tags = ["units"]
    dependencies = {"units": Provide(provide_unit_service, sync_to_thread=False)}

    @get("/", summary="List units")
    async def list_units(
        self,
        units: UnitService,
        parent: UUID | None = None,
        kind: UnitKind | None = None,
        q: Annotated[
            str | None, Parameter(max_length=200, description="Name or code; ignores diacritics.")
        ] = None,
        under: Annotated[
            UUID | None, Parameter(description="Only this unit and its subtree.")
        ] = None,
        cursor: Cursor = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> Page[schemas.Unit]:
        """Units you may see, by code."""
        return await units.list_units(
            parent=parent, kind=kind, q=q, under=under, cursor=cursor, limit=limit
        )

    @post("/", summary="Create a unit")
    async def create_unit(
        self,
        creation: Creation,
        units: UnitService,
        data: JSONBody[schemas.UnitCreate],
    ) -> Response[schemas.Unit]:
        """Create a unit below one you administer."""
        return await creation(data, schemas.Unit, lambda: units.create(data))

    @post("/import", summary="Bulk import units (JSON or CSV), all or nothing")
    async def import_units(
        self, request: Request[Any, Any, Any], units: UnitService
    ) -> Response[schemas.UnitImportResult]:
        """Create many units; any bad row rejects the whole import with an error per row."""
        rows = parse_unit_import(await request.body(), request.headers.get("content-type", ""))
        result = await units.import_units(rows)
        return Response(result, status_code=HTTP_201_CREATED if result.created else HTTP_200_OK)

    @get("/{unit_id:uuid}", summary="Get a unit")
    async def get_unit(self, units: UnitService, unit_id: UUID) -> Response[schemas.Unit]:
        """One unit (404 if you may not see it)."""
        unit = await units.get(unit_id)
        return with_etag(unit)

    @patch("/{unit_id:uuid}", summary="Change a unit")
    async def update_unit(
        self,
        units: UnitService,
        unit_id: UUID,
        data: JSONBody[schemas.UnitUpdate],
        if_match: IfMatch = None,
    ) -> Response[schemas.Unit]:
        """Rename or move a unit; needs `If-Match`."""
        unit = await units.update(unit_id, data, parse_if_match(if_match))
        return with_etag(unit)


class UserController(Controller):
    """People and their grants."""

    path = "/api/v1/users"
    tags = ["users"]
    dependencies = {"users": Provide(provide_user_service, sync_to_thread=False)}

    @get("/", summary="List users")
    async def list_users(
        self,
        users: UserService,
        q: Annotated[str | None, Parameter(max_length=200)] = None,
        unit: UUID | None = None,
        role: Role | None = None,
        active: bool | None = None,
        cursor: Cursor = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> Page[schemas.User]:
        """Users you may see, by username."""
        return await users.list_users(
            q=q, unit=unit, role=role, active=active, cursor=cursor, limit=limit
        )

    @post("/", summary="Create a user")
    async def create_user(
        self,
        creation: Creation,
        users: UserService,
        data: JSONBody[schemas.UserCreate],
    ) -> Response[schemas.User]:
        """Create a user, optionally with grants."""
        return await creation(data, schemas.User, lambda: users.create(data))

    @get("/{user_id:uuid}", summary="Get a user")
    async def get_user(self, users: UserService, user_id: UUID) -> Response[schemas.User]:
        """One user with grants."""
        user = await users.get(user_id)
        return with_etag(user)

    @patch("/{user_id:uuid}", summary="Change a user")
    async def update_user(
        self,
        users: UserService,
        user_id: UUID,
        data: JSONBody[schemas.UserUpdate],
        if_match: IfMatch = None,
    ) -> Response[schemas.User]:
        """Change details, password or active state; needs `If-Match`."""
        user = await users.update(user_id, data, parse_if_match(if_match))
        return with_etag(user)

    @post("/{user_id:uuid}/grants", summary="Grant a role")
    async def add_grant(
        self,
        creation: Creation,
        users: UserService,
        user_id: UUID,
        data: JSONBody[schemas.GrantCreate],
    ) -> Response[schemas.User]:
        """Give the user a role on a unit's subtree."""
        return await creation(data, schemas.User, lambda: users.add_grant(user_id, data))

    @delete(
        "/{user_id:uuid}/grants",
        status_code=HTTP_200_OK,
        summary="Withdraw a grant by role and unit",
    )
    async def remove_grant(
        self,
        users: UserService,
        user_id: UUID,
        role: Role,
        unit_id: UUID | None = None,
    ) -> schemas.User:
        """Withdraw the grant (role, unit_id); omit unit_id for a system-wide grant."""
        return await users.remove_grant(user_id, grant_id=None, role=role, unit_id=unit_id)

    @delete(
        "/{user_id:uuid}/grants/{grant_id:uuid}",
        status_code=HTTP_200_OK,
        summary="Withdraw a grant",
    )
    async def remove_grant_by_id(
        self, users: UserService, user_id: UUID, grant_id: UUID
    ) -> schemas.User:
        """Withdraw one grant by its id."""
        return await users.remove_grant(user_id, grant_id=grant_id, role=None, unit_id=None)
