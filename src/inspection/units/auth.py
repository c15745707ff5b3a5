"""Sign-in, refresh-token rotation, lockout and loading the principal of a bearer token.

Refresh tokens are single-use: each refresh returns a new one of the same family. Presenting a
used one means it was copied, so the whole family is revoked and its holder must sign in again.
A family is a session (`SignInSession`): every access token names it (`sid`), and the statement
that loads the principal on each request joins it by primary key, so revoking the session ends
its access tokens at once, as the password stamp does for a password change.
Failed sign-ins are counted per username (existing or not); after `INSPECTION_LOGIN_MAX_FAILURES`
within `INSPECTION_LOGIN_LOCKOUT_SECONDS` the username is locked for that long (429 + Retry-After).
That bookkeeping commits in its own transaction: the request that triggered it fails and rolls back.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from litestar.connection import ASGIConnection
from litestar.security.jwt import Token
from sqlalchemy import and_, delete, exists, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from inspection.access import GrantScope, Principal
from inspection.audit import service as audit
from inspection.db.engine import Database
from inspection.db.session import transaction
from inspection.errors import Conflict, Rejected, TooManyRequests, Unauthenticated
from inspection.ids import new_id
from inspection.settings import Settings
from inspection.units import schemas
from inspection.units.models import (
    Grant,
    LoginThrottle,
    RefreshToken,
    Role,
    SignInSession,
    Unit,
    User,
)
from inspection.units.passwords import hash_password, needs_rehash, verify_password

ALGORITHM = "HS256"
# A claim holding the user's password-change time: a token minted before a password change or
# reset does not match the stored time any more, to the microsecond.
PASSWORD_STAMP = "pwd"  # noqa: S105 - a claim name, not a secret
# A claim holding the session (refresh-token family) the token was issued in, as 32 hex digits.
SESSION = "sid"
USERNAME_MAX = 64
ISSUER = "inspection"
_BAD_CREDENTIALS = "invalid username or password"


def password_stamp(changed_at: datetime) -> int:
    """The password-change time as whole microseconds since the epoch (exact, JSON-safe)."""
    return int(changed_at.timestamp() * 1_000_000)


def _insert_ignore(session: AsyncSession) -> Any:
    """The dialect's INSERT that supports ON CONFLICT DO NOTHING."""
    if session.bind.dialect.name == "postgresql":
        return postgresql_insert
    return sqlite_insert


def _secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(slots=True)
class AuthService:
    """Issues and rotates tokens; independent of the request's transaction."""

    database: Database
    settings: Settings

    def _access_token(self, user: User, family: UUID, now: datetime) -> str:
        token = Token(
            sub=str(user.id),
            iat=now,
            exp=now + timedelta(seconds=self.settings.access_token_ttl_seconds),
            iss=ISSUER,
            jti=new_id().hex,
            extras={
                PASSWORD_STAMP: password_stamp(user.password_changed_at),
                SESSION: family.hex,
            },
        )
        return token.encode(self.settings.secret_key, ALGORITHM)

    def _refresh_token(
        self, session: AsyncSession, user_id: UUID, family: UUID, now: datetime
    ) -> str:
        secret = secrets.token_urlsafe(32)
        row = RefreshToken(
            id=new_id(),
            family_id=family,
            user_id=user_id,
            secret_hash=_secret_hash(secret),
            issued_at=now,
            expires_at=now + timedelta(seconds=self.settings.refresh_token_ttl_seconds),
        )
        session.add(row)
        return f"{row.id.hex}.{secret}"

    def _pair(
        self, session: AsyncSession, user: User, family: UUID, now: datetime
    ) -> schemas.TokenPair:
        return schemas.TokenPair(
            access_token=self._access_token(user, family, now),
            expires_in=self.settings.access_token_ttl_seconds,
            refresh_token=self._refresh_token(session, user.id, family, now),
            refresh_expires_in=self.settings.refresh_token_ttl_seconds,
        )

    async def _reserve_attempt(self, username: str, now: datetime) -> None:
        """Count the attempt before checking the password, atomically: parallel guesses cannot
        all slip through before the first failure is counted. Refuse while locked or once the
        window's attempts are used up."""
        window = timedelta(seconds=self.settings.login_lockout_seconds)
        wait: int | None = None
        async with transaction(self.database) as session:
            # Forget windows that ended without a lock: the table holds only live counters.
            await session.execute(
                delete(LoginThrottle).where(
                    LoginThrottle.first_failure_at < now - window,
                    or_(LoginThrottle.locked_until.is_(None), LoginThrottle.locked_until < now),
                )
            )
            throttle = None
            # A parallel successful sign-in may delete the row between the INSERT (which found
            # it and did nothing) and the SELECT: insert again then, rather than fail.
            for _ in range(3):
                await session.execute(
                    _insert_ignore(session)(LoginThrottle)
                    .values(username=username, failures=0, first_failure_at=now)
                    .on_conflict_do_nothing()
                )
                throttle = await session.scalar(
                    select(LoginThrottle)
                    .where(LoginThrottle.username == username)
                    .with_for_update()
                )
                if throttle is not None:
                    break
            if throttle is None:
                raise Conflict("sign-ins of this username are racing; try again")
            if throttle.locked_until and throttle.locked_until > now:
                wait = int((throttle.locked_until - now).total_seconds()) + 1
            elif throttle.failures >= self.settings.login_max_failures:
                throttle.locked_until = now + window
                wait = int(window.total_seconds())
            else:
                throttle.failures += 1
        if wait is not None:
            raise TooManyRequests(
                f"too many failed sign-ins for this username; try again in {wait} s", wait
            )

    async def _after_failure(self, username: str, now: datetime) -> None:
        """Lock once the attempts of the window are used up."""
        async with transaction(self.database) as session:
            throttle = await session.scalar(
                select(LoginThrottle).where(LoginThrottle.username == username).with_for_update()
            )
            if throttle is None or throttle.failures < self.settings.login_max_failures:
                return
            if throttle.locked_until is None or throttle.locked_until <= now:
                window = timedelta(seconds=self.settings.login_lockout_seconds)
                throttle.locked_until = now + window
                await audit.record(
                    session,
                    audit.SYSTEM,
                    "login",
                    username,
                    "lock",
                    {"locked_until": {"after": audit.jsonable(throttle.locked_until)}},
                )

    async def sign_in(self, data: schemas.TokenRequest) -> schemas.TokenPair:
        """Check the password and issue a token pair; count and lock on failure."""
        username = data.username.strip().lower()
        if len(username) > USERNAME_MAX:
            # Lower-casing can lengthen text ("İ" → "i̇"); no account has such a name.
            await verify_password(None, data.password)
            raise Unauthenticated(_BAD_CREDENTIALS)
        now = datetime.now(UTC)
        await self._reserve_attempt(username, now)
        async with self.database.read_session() as session:
            user = await session.scalar(select(User).where(User.username == username))
        valid = await verify_password(user.password_hash if user else None, data.password)
        if user is None or not valid or not user.is_active:
            await self._after_failure(username, now)
            raise Unauthenticated(_BAD_CREDENTIALS)
        # Hash before the write transaction: argon2 takes tens of milliseconds.
        rehashed = await hash_password(data.password) if needs_rehash(user.password_hash) else None
        async with transaction(self.database) as session:
            await session.execute(delete(LoginThrottle).where(LoginThrottle.username == username))
            # Expired tokens can no longer be presented: nothing to detect reuse against.
            await session.execute(
                delete(RefreshToken).where(
                    RefreshToken.user_id == user.id, RefreshToken.expires_at < now
                )
            )
            # A session without tokens has ended: its last access token expired with them (it was
            # issued with the last refresh token and lives shorter). Its access tokens, if any,
            # then name no session and are refused, which is what a revoked one would get.
            await session.execute(
                delete(SignInSession)
                .where(
                    SignInSession.user_id == user.id,
                    ~exists().where(RefreshToken.family_id == SignInSession.id),
                )
                .execution_options(synchronize_session=False)
            )
            if rehashed is not None:
                await session.execute(
                    update(User).where(User.id == user.id).values(password_hash=rehashed)
                )
            family = new_id()
            # Core INSERT, sent now: the token row below refers to it.
            await session.execute(
                insert(SignInSession).values(id=family, user_id=user.id, created_at=now)
            )
            return self._pair(session, user, family, now)

    async def refresh(self, data: schemas.RefreshRequest) -> schemas.TokenPair:
        """Rotate a refresh token; a reused one revokes its whole family."""
        token_id, _, secret = data.refresh_token.partition(".")
        try:
            row_id = UUID(hex=token_id)
        except ValueError:
            raise Unauthenticated("invalid refresh token") from None
        now = datetime.now(UTC)
        reused = False
        async with transaction(self.database) as session:
            # Lock the session first, then the token (one order, no deadlock): refreshes of a
            # family queue on the session row, so a revocation sees, and marks, a token minted by
            # a rotation running beside it. (The revoked session refuses that token's pair
            # anyway; the lock keeps the tokens' own marks complete.) SQLite sends no FOR UPDATE:
            # its writing transactions hold the one write lock from BEGIN IMMEDIATE.
            sign_in = await session.scalar(
                select(SignInSession)
                .where(
                    SignInSession.id
                    == select(RefreshToken.family_id)
                    .where(RefreshToken.id == row_id)
                    .scalar_subquery()
                )
                .with_for_update()
            )
            row = await session.scalar(
                select(RefreshToken).where(RefreshToken.id == row_id).with_for_update()
            )
            if (
                sign_in is None
                or row is None
                or not hmac.compare_digest(row.secret_hash, _secret_hash(secret))
            ):
                raise Unauthenticated("invalid refresh token")
            live = row.revoked_at is None and sign_in.revoked_at is None
            if row.used_at is not None and live:
                reused = True
                # Revoking the session ends its access tokens on their next request; the tokens
                # are marked too, so a refresh token tells by itself that it is dead.
                sign_in.revoked_at = now
                await session.execute(
                    update(RefreshToken)
                    .where(
                        RefreshToken.family_id == row.family_id, RefreshToken.revoked_at.is_(None)
                    )
                    .values(revoked_at=now)
                )
                await audit.record(
                    session,
                    audit.SYSTEM,
                    "user",
                    row.user_id,
                    "refresh_reuse",
                    {"family_id": {"after": str(row.family_id)}},
                )
            elif live and row.expires_at > now:
                user = await session.get(User, row.user_id)
                # A password change (or a reset by an admin) ends every earlier session.
                if (
                    user is not None
                    and user.is_active
                    and row.issued_at >= user.password_changed_at
                ):
                    row.used_at = now
                    return self._pair(session, user, row.family_id, now)
        if reused:
            raise Unauthenticated("this refresh token was already used; its session is revoked")
        raise Unauthenticated("refresh token expired or revoked; sign in again")

    async def change_password(self, principal: Principal, data: schemas.PasswordChange) -> None:
        """A user changes their own password; every other session ends."""
        now = datetime.now(UTC)
        async with self.database.read_session() as session:
            user = await session.get(User, principal.user_id)
        if user is None or not await verify_password(user.password_hash, data.current_password):
            raise Rejected.field("current_password", "is not your current password")
        new_hash = await hash_password(data.new_password)
        async with transaction(self.database) as session:
            await session.execute(
                update(User)
                .where(User.id == principal.user_id)
                .values(
                    password_hash=new_hash,
                    password_changed_at=now,
                    version=User.version + 1,
                    updated_at=now,
                )
            )
            await session.execute(
                update(RefreshToken)
                .where(RefreshToken.user_id == principal.user_id, RefreshToken.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            await audit.record(
                session,
                audit.Actor(principal.user_id, principal.username),
                "user",
                principal.user_id,
                "update",
                {"password": "changed"},
                unit_id=user.unit_id,
            )


async def load_principal(
    database: Database, user_id: UUID, stamp: object, session_id: UUID | None = None
) -> Principal | None:
    """The user behind a token with their grants, or None if inactive, if the token predates a
    password change (which signs the user out everywhere), or if its session is not a live
    session of this user (revoked after a refresh token was reused, or gone).

    One statement: the session is an inner join on its primary key (and the user, so a token
    cannot borrow another user's session), so checking it costs no round trip. `session_id=None`
    skips that check, for principals built in-process without a token; the JWT hook never
    passes None (`retrieve_principal` refuses tokens without a session first).
    """
    query = select(
        User.username,
        User.full_name,
        User.unit_id,
        User.is_active,
        User.password_changed_at,
        Grant.role,
        Grant.unit_id,
        Unit.path,
    )
    if session_id is not None:
        query = query.join(
            SignInSession,
            and_(
                SignInSession.id == session_id,
                SignInSession.user_id == User.id,
                SignInSession.revoked_at.is_(None),
            ),
        )
    query = (
        query.outerjoin(Grant, Grant.user_id == User.id)
        .outerjoin(Unit, Grant.unit_id == Unit.id)
        .where(User.id == user_id)
    )
    async with database.read_session() as session:
        rows = (await session.execute(query)).all()
    if not rows:
        return None
    first = rows[0]
    if not first.is_active or stamp != password_stamp(first.password_changed_at):
        return None
    grants = tuple(
        GrantScope(Role(row.role), row[6], row.path) for row in rows if row.role is not None
    )
    return Principal(user_id, first.username, first.full_name, first.unit_id, grants)


async def retrieve_principal(
    token: Token, connection: ASGIConnection[Any, Any, Any, Any]
) -> Principal | None:
    """Litestar's JWT hook: turn a verified token into the request's principal.

    None (401 with `WWW-Authenticate: Bearer`, as for an expired token) unless the token names a
    live session of its user.

    Tokens issued before sessions were carried have no `sid` and are refused, not waved through:
    they cannot be tied to a session, so accepting them would leave a copied refresh token's
    access tokens working until they expire, the very hole `sid` closes. It costs a client one
    refresh, not a sign-in: existing refresh-token families became sessions in migration 0008,
    and the refreshed pair carries `sid`.
    """
    sid = token.extras.get(SESSION)
    if not isinstance(sid, str):
        return None
    try:
        user_id = UUID(token.sub)
        session_id = UUID(hex=sid)
    except ValueError:
        return None
    database: Database = connection.app.state.database
    return await load_principal(database, user_id, token.extras.get(PASSWORD_STAMP), session_id)
