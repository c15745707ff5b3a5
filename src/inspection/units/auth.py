"""Sign-in, refresh-token rotation, sign-in throttling and loading the principal of a bearer token.

Refresh tokens are single-use: each refresh returns a new one of the same family. Presenting a
used one means it was copied, so the whole family is revoked and its holder must sign in again.
A family is a session (`SignInSession`): every access token names it (`sid`), and the statement
that loads the principal on each request joins it by primary key, so revoking the session ends
its access tokens at once, as the password stamp does for a password change.
Wrong passwords are counted per username and per username and client address (units/throttle.py):
the address is locked, the username only slowed down, and a correct password never counts. That
bookkeeping commits in its own transaction: the request that triggered it fails and rolls back.
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
from sqlalchemy import and_, delete, exists, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from inspection.access.principal import GrantScope, Principal
from inspection.audit import recorder as audit
from inspection.db.engine import Database
from inspection.db.session import transaction
from inspection.errors import Rejected, TooManyRequests, Unauthenticated
from inspection.kit.ids import new_id
from inspection.settings import Settings
from inspection.units import schemas, throttle
from inspection.units.models import Grant, RefreshToken, SignInSession, Unit, User
from inspection.units.passwords import hash_password, needs_rehash, verify_password
from inspection.units.roles import Role

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

    @property
    def _policy(self) -> throttle.ThrottlePolicy:
        return throttle.ThrottlePolicy(
            free_failures=self.settings.login_max_failures,
            window=timedelta(seconds=self.settings.login_lockout_seconds),
            max_delay=timedelta(seconds=self.settings.login_max_delay_seconds),
        )

    async def _count_failure(self, attempt: throttle.Attempt, now: datetime) -> None:
        async with transaction(self.database) as session:
            locked_until = await throttle.record_failure(session, attempt, self._policy, now)
            if locked_until is not None:
                await audit.record(
                    session,
                    audit.SYSTEM,
                    "login",
                    attempt.username,
                    "lock",
                    {
                        "locked_until": {"after": audit.jsonable(locked_until)},
                        "address": {"after": attempt.address},
                    },
                )

    async def sign_in(
        self, data: schemas.TokenRequest, address: str | None = None
    ) -> schemas.TokenPair:
        """Check the password and issue a token pair. A wrong password counts against the
        username and against the username from `address` (the client's); see units/throttle.py."""
        username = data.username.strip().lower()
        if len(username) > USERNAME_MAX:
            # Lower-casing can lengthen text ("İ" → "i̇"); no account has such a name.
            await verify_password(None, data.password)
            raise Unauthenticated(_BAD_CREDENTIALS)
        attempt = throttle.Attempt.of(username, address)
        # One check of this username at a time in the process: parallel guesses wait for the
        # count of the one before them instead of all passing the check at once.
        async with throttle.username_lock(username):
            now = datetime.now(UTC)
            async with self.database.read_session() as session:
                wait = await throttle.wait_seconds(session, attempt, now)
                user = (
                    None
                    if wait
                    else await session.scalar(select(User).where(User.username == username))
                )
            if wait is not None:
                raise TooManyRequests(
                    f"too many failed sign-ins for this username; try again in {wait} s", wait
                )
            # An overloaded hasher answers 503 from here, and nothing is counted.
            valid = await verify_password(user.password_hash if user else None, data.password)
            if user is None or not valid or not user.is_active:
                await self._count_failure(attempt, now)
                raise Unauthenticated(_BAD_CREDENTIALS)
        # Hash before the write transaction: argon2 takes tens of milliseconds.
        rehashed = await hash_password(data.password) if needs_rehash(user.password_hash) else None
        async with transaction(self.database) as session:
            await throttle.clear(session, attempt)
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
