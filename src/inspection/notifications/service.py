"""The signed-in user's inbox."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from inspection.errors import NotFound
from inspection.notifications.models import Notification
from inspection.notifications.repository import NotificationRepository
from inspection.notifications.schemas import Inbox, NotificationOut


def notification_out(row: Notification) -> NotificationOut:
    """A stored notification as the API shows it."""
    return NotificationOut(
        row.id, row.kind, row.title, row.action_id, row.data, row.created_at, row.read_at
    )


class NotificationService:
    """The signed-in user's inbox."""

    def __init__(self, session: AsyncSession, user_id: UUID) -> None:
        self.repository = NotificationRepository(session, user_id)

    async def inbox(self, unread_only: bool, cursor: str | None, limit: int) -> Inbox:
        """Unread first, newest first within each group; `unread` counts every unread one."""
        rows, next_cursor = await self.repository.page(unread_only, cursor, limit)
        unread = await self.repository.count_unread()
        return Inbox([notification_out(r) for r in rows], unread, next_cursor)

    async def mark_read(self, notification_id: UUID, now: datetime) -> NotificationOut:
        """Mark one notification read (again is harmless)."""
        row = await self.repository.get(notification_id)
        if row is None:
            raise NotFound(f"notification {notification_id} not found")
        if row.read_at is None:
            row.read_at = now
            row.read_rank = 1
        return notification_out(row)

    async def mark_all_read(self, now: datetime) -> int:
        """Mark every unread notification read; returns how many."""
        return await self.repository.mark_all_read(now)
