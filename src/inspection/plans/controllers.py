"""HTTP endpoints of checklists, plans and visits. Thin: parse, call one service method, return."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, Request, Response, get, patch, post, put
from litestar.di import Provide
from litestar.params import JSONBody, Parameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED
from sqlalchemy.ext.asyncio import AsyncSession

from inspection.access.principal import Principal
from inspection.kit.concurrency import parse_if_match
from inspection.kit.pagination import DEFAULT_LIMIT, Page
from inspection.plans import schemas
from inspection.plans.checklists import ChecklistService
from inspection.plans.models import PlanKind, PlanStatus, VisitStatus
from inspection.plans.service import PlanService
from inspection.web.http import Cursor, IfMatch, Limit, with_etag
from inspection.web.idempotency import Creation


def provide_checklists(db_session: AsyncSession, principal: Principal) -> ChecklistService:
    """Checklists as this user sees them."""
    return ChecklistService(db_session, principal)


def provide_plans(
    request: Request[Any, Any, Any], db_session: AsyncSession, principal: Principal
) -> PlanService:
    """Plans and visits as this user sees them."""
    return PlanService(db_session, principal, request.app.state.settings.zone)


class ChecklistController(Controller):
    """Checklist templates and their revisions."""

    path = "/api/v1/checklists"
    tags = ["checklists"]
    dependencies = {"checklists": Provide(provide_checklists, sync_to_thread=False)}

    @get("/", summary="List checklists")
    async def list_checklists(
        self,
        checklists: ChecklistService,
        family: Annotated[UUID | None, Parameter(description="Revisions of one template.")] = None,
        cursor: Cursor = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> Page[schemas.ChecklistSummary]:
        """Checklist revisions, newest first."""
        return await checklists.list_checklists(family=family, cursor=cursor, limit=limit)

    @post("/", summary="Create a checklist")
    async def create_checklist(
        self,
        creation: Creation,
        checklists: ChecklistService,
        data: JSONBody[schemas.ChecklistCreate],
    ) -> Response[schemas.Checklist]:
        """A new template (admins and planners)."""
        return await creation(data, schemas.Checklist, lambda: checklists.create(data))

    @get("/{checklist_id:uuid}", summary="Get a checklist")
    async def get_checklist(
        self, checklists: ChecklistService, checklist_id: UUID
    ) -> Response[schemas.Checklist]:
        """One revision with its criteria."""
        return with_etag(await checklists.get(checklist_id))

    @patch("/{checklist_id:uuid}", summary="Change an unused checklist")
    async def update_checklist(
        self,
        checklists: ChecklistService,
        checklist_id: UUID,
        data: JSONBody[schemas.ChecklistUpdate],
        if_match: IfMatch = None,
    ) -> Response[schemas.Checklist]:
        """409 once a plan uses it: make a new revision instead."""
        return with_etag(await checklists.update(checklist_id, data, parse_if_match(if_match)))

    @post("/{checklist_id:uuid}/versions", summary="Make a new revision")
    async def new_revision(
        self,
        creation: Creation,
        checklists: ChecklistService,
        checklist_id: UUID,
        data: JSONBody[schemas.ChecklistUpdate],
    ) -> Response[schemas.Checklist]:
        """Copy this revision into the next one, with the given changes."""
        return await creation(
            data, schemas.Checklist, lambda: checklists.new_revision(checklist_id, data)
        )


class PlanController(Controller):
    """Inspection plans."""

    path = "/api/v1/plans"
    tags = ["plans"]
    dependencies = {"plans": Provide(provide_plans, sync_to_thread=False)}

    @get("/", summary="List plans")
    async def list_plans(
        self,
        plans: PlanService,
        status: PlanStatus | None = None,
        kind: PlanKind | None = None,
        unit: Annotated[UUID | None, Parameter(description="Plans visiting this unit.")] = None,
        under: Annotated[UUID | None, Parameter(description="Plans visiting this subtree.")] = None,
        active_from: Annotated[
            date | None, Parameter(description="Period ends on or after.")
        ] = None,
        active_to: Annotated[
            date | None, Parameter(description="Period starts on or before.")
        ] = None,
        cursor: Cursor = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> Page[schemas.Plan]:
        """Plans you may know of, newest first."""
        return await plans.list_plans(
            status=status,
            kind=kind,
            unit=unit,
            under=under,
            active_from=active_from,
            active_to=active_to,
            cursor=cursor,
            limit=limit,
        )

    @post("/", summary="Create a plan")
    async def create_plan(
        self,
        creation: Creation,
        plans: PlanService,
        data: JSONBody[schemas.PlanCreate],
    ) -> Response[schemas.Plan]:
        """A draft plan; each target becomes a visit."""
        return await creation(data, schemas.Plan, lambda: plans.create_plan(data))

    @get("/{plan_id:uuid}", summary="Get a plan")
    async def get_plan(self, plans: PlanService, plan_id: UUID) -> Response[schemas.Plan]:
        """One plan with the visits you may see."""
        return with_etag(await plans.get_plan(plan_id))

    @patch("/{plan_id:uuid}", summary="Change a plan")
    async def update_plan(
        self,
        plans: PlanService,
        plan_id: UUID,
        data: JSONBody[schemas.PlanUpdate],
        if_match: IfMatch = None,
    ) -> Response[schemas.Plan]:
        """Drafts change freely; approved plans their team and targets."""
        return with_etag(await plans.update_plan(plan_id, data, parse_if_match(if_match)))

    @post("/{plan_id:uuid}/approve", status_code=HTTP_200_OK, summary="Approve a plan")
    async def approve_plan(
        self, plans: PlanService, plan_id: UUID, if_match: IfMatch = None
    ) -> Response[schemas.Plan]:
        """draft → approved."""
        return with_etag(await plans.approve_plan(plan_id, parse_if_match(if_match)))

    @post("/{plan_id:uuid}/cancel", status_code=HTTP_200_OK, summary="Cancel a plan")
    async def cancel_plan(
        self,
        plans: PlanService,
        plan_id: UUID,
        data: JSONBody[schemas.Cancellation],
        if_match: IfMatch = None,
    ) -> Response[schemas.Plan]:
        """Cancels the plan and its open visits."""
        return with_etag(await plans.cancel_plan(plan_id, data, parse_if_match(if_match)))


class VisitController(Controller):
    """Visits on site and their checklist responses."""

    path = "/api/v1/visits"
    tags = ["visits"]
    dependencies = {"plans": Provide(provide_plans, sync_to_thread=False)}

    @get("/", summary="List visits")
    async def list_visits(
        self,
        plans: PlanService,
        plan: UUID | None = None,
        unit: UUID | None = None,
        under: Annotated[UUID | None, Parameter(description="Visits to this subtree.")] = None,
        status: VisitStatus | None = None,
        window_from: Annotated[
            date | None, Parameter(description="Window ends on or after.")
        ] = None,
        window_to: Annotated[
            date | None, Parameter(description="Window starts on or before.")
        ] = None,
        cursor: Cursor = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> Page[schemas.Visit]:
        """Visits you may know of, by window."""
        return await plans.list_visits(
            plan=plan,
            unit=unit,
            under=under,
            status=status,
            window_from=window_from,
            window_to=window_to,
            cursor=cursor,
            limit=limit,
        )

    @get("/{visit_id:uuid}", summary="Get a visit")
    async def get_visit(self, plans: PlanService, visit_id: UUID) -> Response[schemas.VisitDetail]:
        """One visit with its checklist responses."""
        return with_etag(await plans.get_visit(visit_id))

    @post("/{visit_id:uuid}/check-in", status_code=HTTP_200_OK, summary="Check in on site")
    async def check_in(
        self,
        plans: PlanService,
        visit_id: UUID,
        data: JSONBody[schemas.CheckIn],
        if_match: IfMatch = None,
    ) -> Response[schemas.Visit]:
        """The team arrives (position required; a reason when outside the window)."""
        return with_etag(await plans.check_in(visit_id, data, parse_if_match(if_match)))

    @post("/{visit_id:uuid}/check-out", status_code=HTTP_200_OK, summary="Check out")
    async def check_out(
        self,
        plans: PlanService,
        visit_id: UUID,
        data: JSONBody[schemas.CheckOut],
        if_match: IfMatch = None,
    ) -> Response[schemas.Visit]:
        """The team leaves the site."""
        return with_etag(await plans.check_out(visit_id, data, parse_if_match(if_match)))

    @post("/{visit_id:uuid}/conclude", status_code=HTTP_200_OK, summary="Conclude a visit")
    async def conclude(
        self,
        plans: PlanService,
        visit_id: UUID,
        data: JSONBody[schemas.Conclusion],
        if_match: IfMatch = None,
    ) -> Response[schemas.Visit]:
        """The team lead's conclusion; the checklist score is computed."""
        return with_etag(await plans.conclude(visit_id, data, parse_if_match(if_match)))

    @put("/{visit_id:uuid}/responses/{criterion_code:str}", summary="Answer a criterion")
    async def put_response(
        self,
        plans: PlanService,
        visit_id: UUID,
        criterion_code: str,
        data: JSONBody[schemas.ResponseIn],
        if_match: IfMatch = None,
    ) -> Response[schemas.Response]:
        """pass / fail / na with a note; 201 the first time, 200 after (idempotent). Changing
        a stored answer needs `If-Match` with its ETag (428 without it, 412 when stale)."""
        response, change = await plans.put_response(
            visit_id, criterion_code, data, parse_if_match(if_match)
        )
        return with_etag(response, HTTP_201_CREATED if change == "created" else HTTP_200_OK)
