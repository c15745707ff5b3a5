"""HTTP endpoints of findings. Thin: parse, call one service method, return."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, Request, Response, get, patch, post, put
from litestar.di import Provide
from litestar.params import JSONBody, Parameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED
from sqlalchemy.ext.asyncio import AsyncSession

from inspection.access.principal import Principal
from inspection.findings import schemas
from inspection.findings.models import Category, FindingStatus, Severity
from inspection.findings.service import FindingService, categories
from inspection.findings.sync import SyncBatch, SyncResult, SyncService
from inspection.kit.concurrency import parse_if_match
from inspection.kit.pagination import DEFAULT_LIMIT, Page
from inspection.web.http import Cursor, IfMatch, Limit, with_etag

# A date (the whole local day) or an RFC 3339 date-time with an offset.
Moment = Annotated[
    str | None,
    Parameter(
        max_length=40, description="YYYY-MM-DD (a whole local day) or an RFC 3339 date-time."
    ),
]


def provide_findings(
    request: Request[Any, Any, Any], db_session: AsyncSession, principal: Principal
) -> FindingService:
    """Findings as this user sees them."""
    return FindingService(db_session, principal, request.app.state.settings.zone)


class FindingController(Controller):
    """Findings recorded on site (offline-first: the tablet chooses the id)."""

    path = "/api/v1/findings"
    tags = ["findings"]
    dependencies = {"findings": Provide(provide_findings, sync_to_thread=False)}

    @get("/categories", summary="Finding categories")
    async def list_categories(self) -> list[schemas.CategoryInfo]:
        """The fixed categories with Vietnamese and English labels."""
        return categories()

    @get("/", summary="List findings")
    async def list_findings(
        self,
        findings: FindingService,
        visit: UUID | None = None,
        plan: UUID | None = None,
        unit: UUID | None = None,
        under: Annotated[UUID | None, Parameter(description="Findings in this subtree.")] = None,
        category: Category | None = None,
        severity: Severity | None = None,
        status: FindingStatus | None = None,
        q: Annotated[
            str | None,
            Parameter(max_length=200, description="Title or description; ignores diacritics."),
        ] = None,
        observed_from: Moment = None,
        observed_to: Moment = None,
        cursor: Cursor = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> Page[schemas.Finding]:
        """Findings you may see, newest observation first."""
        return await findings.list_findings(
            visit=visit,
            plan=plan,
            unit=unit,
            under=under,
            category=category,
            severity=severity,
            status=status,
            q=q,
            observed_from=observed_from,
            observed_to=observed_to,
            cursor=cursor,
            limit=limit,
        )

    @put("/{finding_id:uuid}", summary="Create or replay a finding")
    async def put_finding(
        self,
        findings: FindingService,
        finding_id: UUID,
        data: JSONBody[schemas.FindingIn],
        if_match: IfMatch = None,
    ) -> Response[schemas.Finding]:
        """201 the first time; 200 for the same body again; a changed body needs If-Match."""
        finding, change = await findings.put(finding_id, data, parse_if_match(if_match))
        return with_etag(finding, HTTP_201_CREATED if change == "created" else HTTP_200_OK)

    @get("/{finding_id:uuid}", summary="Get a finding")
    async def get_finding(
        self, findings: FindingService, finding_id: UUID
    ) -> Response[schemas.Finding]:
        """One finding (officials only where you may see them)."""
        return with_etag(await findings.get(finding_id))

    @patch("/{finding_id:uuid}", summary="Change a finding")
    async def update_finding(
        self,
        findings: FindingService,
        finding_id: UUID,
        data: JSONBody[schemas.FindingUpdate],
        if_match: IfMatch = None,
    ) -> Response[schemas.Finding]:
        """Change some fields; needs If-Match."""
        return with_etag(await findings.update(finding_id, data, parse_if_match(if_match)))

    @post("/{finding_id:uuid}/submit", status_code=HTTP_200_OK, summary="Submit a finding")
    async def submit(
        self, findings: FindingService, finding_id: UUID, if_match: IfMatch = None
    ) -> Response[schemas.Finding]:
        """The team lead confirms it; the unit's head sees it from now on."""
        return with_etag(await findings.submit(finding_id, parse_if_match(if_match)))

    @post("/{finding_id:uuid}/dismiss", status_code=HTTP_200_OK, summary="Dismiss a finding")
    async def dismiss(
        self,
        findings: FindingService,
        finding_id: UUID,
        data: JSONBody[schemas.Dismissal],
        if_match: IfMatch = None,
    ) -> Response[schemas.Finding]:
        """The team lead withdraws it, with a reason."""
        return with_etag(await findings.dismiss(finding_id, data, parse_if_match(if_match)))


def provide_sync(
    request: Request[Any, Any, Any], db_session: AsyncSession, principal: Principal
) -> SyncService:
    """The batch sync of this user's tablet."""
    return SyncService(db_session, principal, request.app.state.settings.zone)


class SyncController(Controller):
    """What a tablet recorded offline, in one request."""

    path = "/api/v1/sync"
    tags = ["findings"]
    dependencies = {"sync": Provide(provide_sync, sync_to_thread=False)}

    @post("/", status_code=HTTP_200_OK, summary="Sync an offline batch")
    async def sync(self, sync: SyncService, data: JSONBody[SyncBatch]) -> SyncResult:
        """Findings and checklist answers, up to 500 items; an outcome per item (created,
        updated, unchanged, conflict with the server's copy, or rejected with the problem).
        Replaying a batch changes nothing."""
        return await sync.run(data)
