"""The notification inbox and the webhook outbox."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from advanced_alchemy.types import GUID, DateTimeUTC, JsonB
from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from inspection.db.base import Record
from inspection.kit.ids import new_id


class Notification(Record):
    """One message to one user. `key` makes a notification happen once (jobs run repeatedly)."""

    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint("user_id", "key", name="uq_notifications_user_key"),
        Index("ix_notifications_inbox", "user_id", "read_rank", "id"),
    )

    id: Mapped[UUID] = mapped_column(GUID, primary_key=True, default=new_id)
    user_id: Mapped[UUID] = mapped_column(GUID, ForeignKey("users.id"))
    key: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    action_id: Mapped[UUID | None] = mapped_column(GUID, ForeignKey("corrective_actions.id"))
    title: Mapped[str] = mapped_column(String(300))
    data: Mapped[dict[str, Any]] = mapped_column(JsonB, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    read_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    # 0 while unread, 1 once read: the inbox lists unread first with a plain keyset.
    read_rank: Mapped[int] = mapped_column(Integer, default=0)


class WebhookDelivery(Record):
    """An event waiting to be (or already) delivered to INSPECTION_WEBHOOK_URL."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),)

    id: Mapped[UUID] = mapped_column(GUID, primary_key=True, default=new_id)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JsonB)
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
