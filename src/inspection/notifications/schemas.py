"""The notification inbox at the API boundary."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec


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
