"""HTTP endpoints of the signed-in user's notification inbox. Thin: parse, call one service
method, return."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Controller, Request, get, post
from litestar.di import Provide
from litestar.status_codes import HTTP_200_OK
from sqlalchemy.ext.asyncio import AsyncSession

from inspection.access.principal import Principal
from inspection.kit.pagination import DEFAULT_LIMIT
from inspection.notifications.schemas import Inbox, NotificationOut
from inspection.notifications.service import NotificationService
from inspection.web.http import Cursor, Limit


def provide_inbox(db_session: AsyncSession, principal: Principal) -> NotificationService:
    """The signed-in user's notifications."""
    return NotificationService(db_session, principal.user_id)


class NotificationController(Controller):
    """Your notifications: unread first."""

    path = "/api/v1/me/notifications"
    tags = ["notifications"]
    dependencies = {"inbox": Provide(provide_inbox, sync_to_thread=False)}

    @get("/", summary="Your notifications")
    async def list_notifications(
        self,
        inbox: NotificationService,
        unread: bool = False,
        cursor: Cursor = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> Inbox:
        """Unread first, newest first; `unread` counts every unread one."""
        return await inbox.inbox(unread, cursor, limit)

    @post("/{notification_id:uuid}/read", status_code=HTTP_200_OK, summary="Mark read")
    async def mark_read(
        self, request: Request[Any, Any, Any], inbox: NotificationService, notification_id: UUID
    ) -> NotificationOut:
        """Marking it again changes nothing."""
        return await inbox.mark_read(notification_id, request.app.state.clock())

    @post("/read", status_code=HTTP_200_OK, summary="Mark all read")
    async def mark_all_read(
        self, request: Request[Any, Any, Any], inbox: NotificationService
    ) -> dict[str, int]:
        """Returns how many were unread."""
        return {"marked": await inbox.mark_all_read(request.app.state.clock())}
