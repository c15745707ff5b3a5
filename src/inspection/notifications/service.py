"""Announcing events: a notification per recipient and a webhook delivery per event, written in
the caller's transaction (a durable outbox: if the change commits, so does its announcement; if it
rolls back, nothing was announced). Keys make every announcement happen at most once, so a job
that runs twice, or a retried request, never notifies twice."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import msgspec
from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from inspection.errors import NotFound
from inspection.notifications.models import Notification, WebhookDelivery
from inspection.pagination import SortKey, keyset_page
from inspection.settings import Settings


class NotificationOut(msgspec.Struct):
    """One message in a user's inbox."""

    id: UUID
    kind: str
    title: str
    action_id: UUID | None
    data: dict[str, Any]
    created_at: datetime
    read_at: datetime | None


class Inbox(msgspec.Struct):
    """A page of notifications, unread first, and how many are unread in all."""

    items: list[NotificationOut]
    unread: int
    next_cursor: str | None = None


def _insert_ignoring_duplicates(session: AsyncSession, model: Any) -> Any:
    """INSERT … ON CONFLICT DO NOTHING, in the dialect of the session."""
    bind = session.bind
    dialect = bind.dialect.name if bind is not None else "sqlite"
    module: Any = postgresql if dialect == "postgresql" else sqlite
    return module.insert(model).on_conflict_do_nothing()


async def announce(
    session: AsyncSession,
    settings: Settings,
    *,
    key: str,
    kind: str,
    title: str,
    recipients: Iterable[UUID],
    data: dict[str, Any],
    action_id: UUID | None = None,
    now: datetime | None = None,
) -> None:
    """Notify each recipient once per `key`, and queue the event for the webhook once."""
    now = now or datetime.now(UTC)
    rows = [
        {
            "user_id": user_id,
            "key": key,
            "kind": kind,
            "action_id": action_id,
            "title": title[:300],
            "data": data,
            "created_at": now,
            "read_rank": 0,
        }
        for user_id in sorted(set(recipients))
    ]
    if rows:
        await session.execute(_insert_ignoring_duplicates(session, Notification), rows)
    if settings.webhook_url:
        payload = {"event": kind, "key": key, "at": now.isoformat(), "title": title, **data}
        await session.execute(
            _insert_ignoring_duplicates(session, WebhookDelivery),
            [
                {
                    "key": key,
                    "kind": kind,
                    "payload": payload,
                    "created_at": now,
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": now,
                }
            ],
        )


class NotificationService:
    """The signed-in user's inbox."""

    def __init__(self, session: AsyncSession, user_id: UUID) -> None:
        self.session = session
        self.user_id = user_id

    def _out(self, row: Notification) -> NotificationOut:
        return NotificationOut(
            row.id, row.kind, row.title, row.action_id, row.data, row.created_at, row.read_at
        )

    async def inbox(self, unread_only: bool, cursor: str | None, limit: int) -> Inbox:
        """Unread first, newest first within each group."""
        statement = select(Notification).where(Notification.user_id == self.user_id)
        if unread_only:
            statement = statement.where(Notification.read_at.is_(None))
        # `read_rank` sorts unread (0) before read (1); the id (UUIDv7) orders by time.
        rows, next_cursor = await keyset_page(
            self.session,
            statement,
            [SortKey(Notification.read_rank), SortKey(Notification.id, descending=True)],
            cursor,
            limit,
        )
        unread = await self.session.scalar(
            select(func.count())
            .select_from(Notification)
            .where(Notification.user_id == self.user_id, Notification.read_at.is_(None))
        )
        return Inbox([self._out(r) for r in rows], int(unread or 0), next_cursor)

    async def mark_read(self, notification_id: UUID, now: datetime) -> NotificationOut:
        """Mark one notification read (again is harmless)."""
        row = await self.session.scalar(
            select(Notification).where(
                Notification.id == notification_id, Notification.user_id == self.user_id
            )
        )
        if row is None:
            raise NotFound(f"notification {notification_id} not found")
        if row.read_at is None:
            row.read_at = now
            row.read_rank = 1
        return self._out(row)

    async def mark_all_read(self, now: datetime) -> int:
        """Mark every unread notification read; returns how many."""
        result = await self.session.execute(
            update(Notification)
            .where(Notification.user_id == self.user_id, Notification.read_at.is_(None))
            .values(read_at=now, read_rank=1)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
