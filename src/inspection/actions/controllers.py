"""HTTP endpoints of corrective actions. Thin: parse, call one service method, return."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, Request, Response, get, post
from litestar.di import Provide
from litestar.params import JSONBody, Parameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED
from sqlalchemy.ext.asyncio import AsyncSession

from inspection.access.principal import Principal
from inspection.actions import schemas
from inspection.actions.models import ActionStatus
from inspection.actions.service import ActionService
from inspection.kit.concurrency import parse_if_match
from inspection.kit.pagination import DEFAULT_LIMIT, Page
from inspection.web.http import Cursor, IfMatch, Limit, with_etag
from inspection.web.idempotency import Creation


def provide_actions(
    request: Request[Any, Any, Any], db_session: AsyncSession, principal: Principal
) -> ActionService:
    """Corrective actions as this user sees them, at the app clock's "now"."""
    state = request.app.state
    return ActionService(db_session, principal, state.settings, state.clock())


class FindingActionController(Controller):
    """Corrective actions assigned on a finding."""

    path = "/api/v1/findings/{finding_id:uuid}/actions"
    tags = ["actions"]
    dependencies = {"actions": Provide(provide_actions, sync_to_thread=False)}

    @post("/", summary="Assign a corrective action")
    async def create_action(
        self,
        creation: Creation,
        actions: ActionService,
        finding_id: UUID,
        data: JSONBody[schemas.ActionCreate],
    ) -> Response[schemas.Action]:
        """The team lead or a planner, on a submitted finding; the assignee is told."""
        return await creation(data, schemas.Action, lambda: actions.create(finding_id, data))


class ActionController(Controller):
    """Corrective actions: list, timeline and transitions (each with If-Match)."""

    path = "/api/v1/actions"
    tags = ["actions"]
    dependencies = {"actions": Provide(provide_actions, sync_to_thread=False)}

    @get("/", summary="List corrective actions")
    async def list_actions(
        self,
        actions: ActionService,
        finding: UUID | None = None,
        unit: UUID | None = None,
        under: Annotated[UUID | None, Parameter(description="Actions of this subtree.")] = None,
        status: ActionStatus | None = None,
        overdue: bool | None = None,
        assignee: Annotated[
            str | None, Parameter(pattern="^me$", description="`me`: assigned to you.")
        ] = None,
        due_before: date | None = None,
        cursor: Cursor = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> Page[schemas.Action]:
        """Soonest due first; `overdue` uses the end of the due day in INSPECTION_TIMEZONE."""
        return await actions.list_actions(
            finding=finding,
            unit=unit,
            under=under,
            status=status,
            overdue=overdue,
            assignee_me=assignee == "me",
            due_before=due_before,
            cursor=cursor,
            limit=limit,
        )

    @get("/{action_id:uuid}", summary="Get a corrective action with its timeline")
    async def get_action(self, actions: ActionService, action_id: UUID) -> Response[schemas.Action]:
        """Every event in order: created, started, responses, verifications, extensions,
        comments, escalations, with who and when."""
        return with_etag(await actions.get(action_id))

    @post("/{action_id:uuid}/start", status_code=HTTP_200_OK, summary="Start work (assignee)")
    async def start(
        self, actions: ActionService, action_id: UUID, if_match: IfMatch = None
    ) -> Response[schemas.Action]:
        """open → in_progress."""
        return with_etag(await actions.start(action_id, parse_if_match(if_match)))

    @post("/{action_id:uuid}/respond", status_code=HTTP_200_OK, summary="Respond (assignee)")
    async def respond(
        self,
        actions: ActionService,
        action_id: UUID,
        data: JSONBody[schemas.Response],
        if_match: IfMatch = None,
    ) -> Response[schemas.Action]:
        """in_progress → submitted: what was done, with evidence uploaded to the action."""
        return with_etag(await actions.respond(action_id, data, parse_if_match(if_match)))

    @post("/{action_id:uuid}/verify", status_code=HTTP_200_OK, summary="Verify a response")
    async def verify(
        self,
        actions: ActionService,
        action_id: UUID,
        data: JSONBody[schemas.Verification],
        if_match: IfMatch = None,
    ) -> Response[schemas.Action]:
        """accepted → closed; returned (with a reason) → in_progress, one more round."""
        return with_etag(await actions.verify(action_id, data, parse_if_match(if_match)))

    @post("/{action_id:uuid}/extension", status_code=HTTP_200_OK, summary="Ask for more time")
    async def request_extension(
        self,
        actions: ActionService,
        action_id: UUID,
        data: JSONBody[schemas.ExtensionRequest],
        if_match: IfMatch = None,
    ) -> Response[schemas.Action]:
        """The assignee asks for a new due date, with a reason."""
        return with_etag(await actions.request_extension(action_id, data, parse_if_match(if_match)))

    @post(
        "/{action_id:uuid}/extension/decide",
        status_code=HTTP_200_OK,
        summary="Decide on an extension (planner)",
    )
    async def decide_extension(
        self,
        actions: ActionService,
        action_id: UUID,
        data: JSONBody[schemas.ExtensionDecision],
        if_match: IfMatch = None,
    ) -> Response[schemas.Action]:
        """Approve (the due date moves) or refuse the pending request."""
        return with_etag(await actions.decide_extension(action_id, data, parse_if_match(if_match)))

    @post("/{action_id:uuid}/cancel", status_code=HTTP_200_OK, summary="Cancel (planner)")
    async def cancel(
        self,
        actions: ActionService,
        action_id: UUID,
        data: JSONBody[schemas.Cancellation],
        if_match: IfMatch = None,
    ) -> Response[schemas.Action]:
        """The action is no longer needed, with a reason."""
        return with_etag(await actions.cancel(action_id, data, parse_if_match(if_match)))

    @post("/{action_id:uuid}/comments", status_code=HTTP_201_CREATED, summary="Comment")
    async def comment(
        self,
        actions: ActionService,
        creation: Creation,
        action_id: UUID,
        data: JSONBody[schemas.CommentIn],
    ) -> Response[schemas.Event]:
        """A remark on the timeline; the assignee and the action's author are told. No
        `If-Match`: a comment does not change the action. Retry with the same `Idempotency-Key`
        and the comment is posted once."""
        return await creation(data, schemas.Event, lambda: actions.comment(action_id, data))
