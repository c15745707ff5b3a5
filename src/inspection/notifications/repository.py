"""Queries of notifications, and the outbox: a notification per recipient and a webhook delivery
per event, written in the caller's transaction (if the change commits, so does its announcement;
if it rolls back, nothing was announced). Keys make every announcement happen at most once, so a
job that runs twice, or a retried request, never notifies twice."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from inspection.kit.pagination import SortKey, keyset_page
from inspection.notifications.models import Notification, WebhookDelivery
from inspection.settings import Settings


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


class NotificationRepository:
    """One user's notifications: what their inbox reads and marks."""

    def __init__(self, session: AsyncSession, user_id: UUID) -> None:
        self.session = session
        self.user_id = user_id

    async def page(
        self, unread_only: bool, cursor: str | None, limit: int
    ) -> tuple[Sequence[Notification], str | None]:
        """Unread first, newest first within each group."""
        statement = select(Notification).where(Notification.user_id == self.user_id)
        if unread_only:
            statement = statement.where(Notification.read_at.is_(None))
        # `read_rank` sorts unread (0) before read (1); the id (UUIDv7) orders by time.
        return await keyset_page(
            self.session,
            statement,
            [SortKey(Notification.read_rank), SortKey(Notification.id, descending=True)],
            cursor,
            limit,
        )

    async def count_unread(self) -> int:
        """How many are unread."""
        unread = await self.session.scalar(
            select(func.count())
            .select_from(Notification)
            .where(Notification.user_id == self.user_id, Notification.read_at.is_(None))
        )
        return int(unread or 0)

    async def get(self, notification_id: UUID) -> Notification | None:
        """One of the user's notifications (another user's is None)."""
        row: Notification | None = await self.session.scalar(
            select(Notification).where(
                Notification.id == notification_id, Notification.user_id == self.user_id
            )
        )
        return row

    async def mark_all_read(self, now: datetime) -> int:
        """Mark every unread one read; returns how many."""
        result = await self.session.execute(
            update(Notification)
            .where(Notification.user_id == self.user_id, Notification.read_at.is_(None))
            .values(read_at=now, read_rank=1)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
