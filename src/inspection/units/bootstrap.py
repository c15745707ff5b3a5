"""Operator tasks outside the API: the first administrator, and resetting a lost password."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from sqlalchemy import func, select, update

from inspection.audit import recorder as audit
from inspection.db.engine import Database
from inspection.db.session import transaction
from inspection.kit.ids import new_id
from inspection.units import throttle
from inspection.units.models import Grant, RefreshToken, User
from inspection.units.passwords import hash_password
from inspection.units.roles import Role

ADMIN_USERNAME = "admin"


async def ensure_admin(database: Database, password: str | None) -> str | None:
    """Create `admin` when the user table is empty; return the password if it was generated."""
    async with transaction(database) as session:
        if await session.scalar(select(func.count()).select_from(User)):
            return None
        generated = password is None
        chosen = password or secrets.token_urlsafe(18)
        user = User(
            id=new_id(),
            username=ADMIN_USERNAME,
            full_name="System administrator",
            full_name_folded="system administrator",
            password_hash=await hash_password(chosen),
            password_changed_at=datetime.now(UTC),
            is_active=True,
        )
        session.add(user)
        session.add(Grant(id=new_id(), user_id=user.id, role=Role.ADMIN.value, unit_id=None))
        await session.flush()
        await audit.record(
            session,
            audit.SYSTEM,
            "user",
            user.id,
            "create",
            audit.created(
                {"username": ADMIN_USERNAME, "grant": {"role": "admin", "unit_id": None}}
            ),
        )
    return chosen if generated else None


async def reset_password(database: Database, username: str, password: str | None) -> str:
    """Set a new password (generated when not given) and end every session of the user; also
    lifts a sign-in lock. Returns the password. Raises LookupError for an unknown user."""
    chosen = password or secrets.token_urlsafe(18)
    new_hash = await hash_password(chosen)
    now = datetime.now(UTC)
    async with transaction(database) as session:
        user = await session.scalar(select(User).where(User.username == username.lower()))
        if user is None:
            raise LookupError(username)
        user.password_hash, user.password_changed_at, user.updated_at = new_hash, now, now
        await session.execute(
            update(RefreshToken)
            .where(RefreshToken.user_id == user.id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        await throttle.lift(session, user.username)
        await session.flush()
        await audit.record(
            session,
            audit.SYSTEM,
            "user",
            user.id,
            "update",
            {"password": "reset"},
            unit_id=user.unit_id,
        )
    return chosen
