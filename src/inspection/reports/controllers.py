"""HTTP endpoints of the reports. Thin: parse, call one service method, return the JSON answer or
the download."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, Request, Response, get
from litestar.di import Provide
from litestar.openapi.spec import (
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    Operation,
    Schema,
)
from litestar.openapi.spec.enums import OpenAPIFormat, OpenAPIType
from litestar.params import Parameter, QueryParameter
from litestar.response import Stream

from inspection.access.principal import Principal
from inspection.kit.pagination import DEFAULT_LIMIT
from inspection.reports import schemas
from inspection.reports.downloads import MEDIA_TYPES, Download
from inspection.reports.service import ReportService
from inspection.web.http import Cursor, Limit, content_disposition

From = Annotated[
    str | None,
    QueryParameter(
        name="from", max_length=40, description="First day (YYYY-MM-DD, local); default 1 January."
    ),
]
To = Annotated[
    str | None,
    QueryParameter(
        name="to", max_length=40, description="Last day, included; default 31 December this year."
    ),
]
Under = Annotated[
    UUID | None,
    Parameter(description="A unit you may see: its whole subtree (404 otherwise)."),
]
ReportFormat = Annotated[
    schemas.Format, QueryParameter(name="format", description="json, or a download: csv|xlsx|pdf.")
]
RegisterFormat = Annotated[
    schemas.RegisterFormat,
    QueryParameter(name="format", description="json (pages), or the whole register: csv|xlsx."),
]


def provide_reports(request: Request[Any, Any, Any], principal: Principal) -> ReportService:
    """Reports as this user may read them, at the app clock's "now"."""
    state = request.app.state
    return ReportService(state.reports_database, principal, state.settings, state.clock())


def download_operation(*extensions: str) -> type[Operation]:
    """An OpenAPI operation whose 200 is JSON or, by `format`, a download in one of
    `extensions`: each media type is documented, with the download's `Content-Disposition`."""

    @dataclass
    class DownloadOperation(Operation):
        def __post_init__(self) -> None:
            ok = (self.responses or {}).get("200")
            if not isinstance(ok, OpenAPIResponse):
                return
            binary = Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY)
            ok.content = {
                **(ok.content or {}),
                **{MEDIA_TYPES[e]: OpenAPIMediaType(schema=binary) for e in extensions},
            }
            ok.headers = {
                **(ok.headers or {}),
                "Content-Disposition": OpenAPIHeader(
                    schema=Schema(type=OpenAPIType.STRING),
                    description="Downloads only: `attachment` with the file's name.",
                ),
            }

    return DownloadOperation


def _send(download: Download) -> Response[Any]:
    """A download as `Content-Disposition: attachment`."""
    headers = {"Content-Disposition": content_disposition("attachment", download.file_name)}
    if isinstance(download.body, bytes):
        return Response(download.body, media_type=download.media_type, headers=headers)
    return Stream(download.body, media_type=download.media_type, headers=headers)


class ReportController(Controller):
    """Leadership reports: every number read through the reader's access predicates."""

    path = "/api/v1/reports"
    tags = ["reports"]
    dependencies = {"reports": Provide(provide_reports, sync_to_thread=False)}

    @get(
        "/summary",
        summary="Summary of inspections, findings and actions",
        operation_class=download_operation("csv", "xlsx", "pdf"),
    )
    async def summary(
        self,
        reports: ReportService,
        first: From = None,
        last: To = None,
        under: Under = None,
        fmt: ReportFormat = schemas.Format.JSON,
    ) -> Response[schemas.Summary]:
        """Inspections, units inspected, findings and corrective actions of the period, and the
        same per child unit of the scope (`by_unit`)."""
        if fmt is schemas.Format.JSON:
            return Response(await reports.summary(under, first, last))
        return _send(await reports.summary_download(under, first, last, fmt.value))

    @get(
        "/units/{unit_id:uuid}/scorecard",
        summary="Scorecard of a unit",
        operation_class=download_operation("csv", "xlsx", "pdf"),
    )
    async def scorecard(
        self,
        reports: ReportService,
        unit_id: UUID,
        first: From = None,
        last: To = None,
        fmt: ReportFormat = schemas.Format.JSON,
    ) -> Response[schemas.Scorecard]:
        """The unit's visits with their checklist scores in time order, its findings by
        category and severity, and its corrective actions (the unit's whole subtree)."""
        if fmt is schemas.Format.JSON:
            return Response(await reports.scorecard(unit_id, first, last))
        return _send(await reports.scorecard_download(unit_id, first, last, fmt.value))

    @get(
        "/discipline",
        summary="Discipline report",
        operation_class=download_operation("csv", "xlsx", "pdf"),
    )
    async def discipline(
        self,
        reports: ReportService,
        first: From = None,
        last: To = None,
        under: Under = None,
        fmt: ReportFormat = schemas.Format.JSON,
    ) -> Response[schemas.DisciplineReport]:
        """Discipline proposals by measure and status, officials flagged for repeat offences,
        units ranked by findings per visit, overdue corrective actions by escalation level and
        age, and undecided proposals whose deadline ends within 30 days or has passed. Names
        appear only where the reader may see the official's records."""
        if fmt is schemas.Format.JSON:
            return Response(await reports.discipline(under, first, last))
        return _send(await reports.discipline_download(under, first, last, fmt.value))

    @get(
        "/findings",
        summary="The findings register",
        operation_class=download_operation("csv", "xlsx"),
    )
    async def register(
        self,
        reports: ReportService,
        first: From = None,
        last: To = None,
        under: Under = None,
        fmt: RegisterFormat = schemas.RegisterFormat.JSON,
        cursor: Cursor = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> Response[schemas.RegisterPage]:
        """One row per submitted finding in observation order: JSON pages (`cursor`, `limit`),
        or the whole register as CSV or XLSX, streamed."""
        if fmt is schemas.RegisterFormat.JSON:
            return Response(await reports.register_page(under, first, last, cursor, limit))
        return _send(await reports.register_download(under, first, last, fmt.value))
