"""HTTP endpoints of discipline proposals. Thin: parse, call one service method, return."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, Request, Response, get, post
from litestar.di import Provide
from litestar.params import JSONBody, Parameter, QueryParameter
from litestar.status_codes import HTTP_200_OK
from sqlalchemy.ext.asyncio import AsyncSession

from inspection.access.principal import Principal
from inspection.discipline import schemas
from inspection.discipline.models import ProposalStatus
from inspection.discipline.rules import Measure
from inspection.discipline.service import DisciplineService
from inspection.kit.concurrency import parse_if_match
from inspection.kit.pagination import DEFAULT_LIMIT, Page
from inspection.web.http import Cursor, IfMatch, Limit, with_etag
from inspection.web.idempotency import Creation


def provide_discipline(
    request: Request[Any, Any, Any], db_session: AsyncSession, principal: Principal
) -> DisciplineService:
    """Discipline proposals as this user sees them, at the app clock's "now"."""
    state = request.app.state
    return DisciplineService(db_session, principal, state.settings, state.clock())


class FindingDisciplineController(Controller):
    """Discipline proposals made on a finding."""

    path = "/api/v1/findings/{finding_id:uuid}/discipline-proposals"
    tags = ["discipline"]
    dependencies = {"discipline": Provide(provide_discipline, sync_to_thread=False)}

    @post("/", summary="Propose discipline for an official")
    async def create_proposal(
        self,
        creation: Creation,
        discipline: DisciplineService,
        finding_id: UUID,
        data: JSONBody[schemas.ProposalCreate],
    ) -> Response[schemas.Proposal]:
        """The team lead of the visit or a planner, on a submitted or closed finding. The
        measure must be one the law allows on the violation date (422 lists them)."""
        return await creation(data, schemas.Proposal, lambda: discipline.create(finding_id, data))


class DisciplineController(Controller):
    """Discipline proposals: list, get, and the decision (each change with If-Match)."""

    path = "/api/v1/discipline-proposals"
    tags = ["discipline"]
    dependencies = {"discipline": Provide(provide_discipline, sync_to_thread=False)}

    @get("/", summary="List discipline proposals")
    async def list_proposals(
        self,
        discipline: DisciplineService,
        unit_id: Annotated[UUID | None, Parameter(description="The official's unit.")] = None,
        under: Annotated[UUID | None, Parameter(description="Officials of this subtree.")] = None,
        status: ProposalStatus | None = None,
        measure: Annotated[
            Measure | None, Parameter(description="Decided, or proposed while undecided.")
        ] = None,
        q: Annotated[
            str | None,
            Parameter(max_length=200, description="Official's name; ignores diacritics."),
        ] = None,
        detected_from: Annotated[
            date | None, QueryParameter(name="from", description="Detected on or after.")
        ] = None,
        detected_to: Annotated[
            date | None, QueryParameter(name="to", description="Detected on or before.")
        ] = None,
        cursor: Cursor = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> Page[schemas.Proposal]:
        """Proposals you may see, latest detection first."""
        return await discipline.list_proposals(
            unit_id=unit_id,
            under=under,
            status=status,
            measure=measure,
            q=q,
            detected_from=detected_from,
            detected_to=detected_to,
            cursor=cursor,
            limit=limit,
        )

    @get("/{proposal_id:uuid}", summary="Get a discipline proposal")
    async def get_proposal(
        self, discipline: DisciplineService, proposal_id: UUID
    ) -> Response[schemas.Proposal]:
        """With the measures allowed, the deadlines and the official's repeat record."""
        return with_etag(await discipline.get(proposal_id))

    @post("/{proposal_id:uuid}/decide", status_code=HTTP_200_OK, summary="Record the decision")
    async def decide(
        self,
        discipline: DisciplineService,
        proposal_id: UUID,
        data: JSONBody[schemas.Decision],
        if_match: IfMatch = None,
    ) -> Response[schemas.Proposal]:
        """A leader or a planner over the official's unit: decided (a measure allowed on the
        violation date, its decision number and date) or not pursued (a reason)."""
        return with_etag(await discipline.decide(proposal_id, data, parse_if_match(if_match)))

    @post("/{proposal_id:uuid}/withdraw", status_code=HTTP_200_OK, summary="Withdraw (proposer)")
    async def withdraw(
        self,
        discipline: DisciplineService,
        proposal_id: UUID,
        data: JSONBody[schemas.Withdrawal],
        if_match: IfMatch = None,
    ) -> Response[schemas.Proposal]:
        """The proposer takes an undecided proposal back, with a reason."""
        return with_etag(await discipline.withdraw(proposal_id, data, parse_if_match(if_match)))

    @post(
        "/{proposal_id:uuid}/extend",
        status_code=HTTP_200_OK,
        summary="Extend the processing time to 150 days",
    )
    async def extend(
        self,
        discipline: DisciplineService,
        proposal_id: UUID,
        data: JSONBody[schemas.Extension],
        if_match: IfMatch = None,
    ) -> Response[schemas.Proposal]:
        """A complex case (leader or planner over the official's unit), once."""
        return with_etag(await discipline.extend(proposal_id, data, parse_if_match(if_match)))
