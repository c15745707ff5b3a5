"""The reports as one reader asks for them: the period and scope checked, the queries run in the
reports' read-only transaction, the answer as JSON or as a download built from the same answer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import datetime
from uuid import UUID

from inspection.access.principal import Principal
from inspection.db.engine import ReportsDatabase
from inspection.reports import documents, downloads, schemas
from inspection.reports.document import ReportDocument, Table
from inspection.reports.downloads import Download, RowFeed
from inspection.reports.periods import Period
from inspection.reports.render import cells
from inspection.reports.render import csv as csv_render
from inspection.reports.repository import ReportRepository
from inspection.settings import Settings


class ReportService:
    """Reports for one signed-in reader at one moment (`now`, the app's clock)."""

    def __init__(
        self, database: ReportsDatabase, principal: Principal, settings: Settings, now: datetime
    ) -> None:
        self.database = database
        self.principal = principal
        self.settings = settings
        self.zone = settings.zone
        self.issuer = settings.report_issuer
        self.now = now

    def _headed(self, doc: ReportDocument) -> ReportDocument:
        """The document under the issuing agency's name (the national heading)."""
        return replace(doc, issuer=self.issuer)

    def period(self, first: str | None, last: str | None) -> Period:
        """The period asked for (400 naming `from` or `to` if it cannot be served)."""
        return Period.parse(first, last, self.zone, self.now)

    @asynccontextmanager
    async def _repository(self) -> AsyncIterator[ReportRepository]:
        """The queries in one read-only transaction of the reports' database."""
        async with self.database.session() as session, session.begin():
            yield ReportRepository(
                session,
                self.principal,
                self.zone,
                self.now,
                self.database.dialect,
                escalation_days=self.settings.escalation_days,
                repeat_threshold=self.settings.repeat_threshold,
                limitation_years=self.settings.discipline_limitation_years,
            )

    async def summary(
        self, under: UUID | None, first: str | None, last: str | None
    ) -> schemas.Summary:
        """The summary of the reader's scope (or of `under`, which they must see)."""
        period = self.period(first, last)
        async with self._repository() as repository:
            return await repository.summary(await repository.scope(under), period)

    async def summary_download(
        self, under: UUID | None, first: str | None, last: str | None, extension: str
    ) -> Download:
        """The summary as a file (the same numbers as its JSON)."""
        summary = await self.summary(under, first, last)
        return await downloads.download(
            self._headed(documents.summary_document(summary, self.principal.full_name)), extension
        )

    async def scorecard(
        self, unit_id: UUID, first: str | None, last: str | None
    ) -> schemas.Scorecard:
        """The scorecard of a unit the reader sees (404 otherwise)."""
        period = self.period(first, last)
        async with self._repository() as repository:
            return await repository.scorecard(unit_id, period)

    async def scorecard_download(
        self, unit_id: UUID, first: str | None, last: str | None, extension: str
    ) -> Download:
        """The scorecard as a file."""
        scorecard = await self.scorecard(unit_id, first, last)
        return await downloads.download(
            self._headed(documents.scorecard_document(scorecard, self.principal.full_name)),
            extension,
        )

    async def discipline(
        self, under: UUID | None, first: str | None, last: str | None
    ) -> schemas.DisciplineReport:
        """The discipline report of the reader's scope (or of `under`, which they must see)."""
        period = self.period(first, last)
        async with self._repository() as repository:
            return await repository.discipline(await repository.scope(under), period)

    async def discipline_download(
        self, under: UUID | None, first: str | None, last: str | None, extension: str
    ) -> Download:
        """The discipline report as a file (the same numbers as its JSON)."""
        report = await self.discipline(under, first, last)
        return await downloads.download(
            self._headed(documents.discipline_document(report, self.principal.full_name)), extension
        )

    async def register_page(
        self,
        under: UUID | None,
        first: str | None,
        last: str | None,
        cursor: str | None,
        limit: int,
    ) -> schemas.RegisterPage:
        """A page of the findings register."""
        period = self.period(first, last)
        async with self._repository() as repository:
            return await repository.register_page(
                await repository.scope(under), period, cursor, limit
            )

    async def register_download(
        self, under: UUID | None, first: str | None, last: str | None, extension: str
    ) -> Download:
        """The whole register as CSV or XLSX, streamed from the database as it is sent.

        The period and the scope are checked first, in a short transaction of their own, so a
        bad request is a problem document and not a broken download, and so is whether the
        database can write the CSV's rows itself (`database_writes_csv`); the rows are then read
        in the download's own transaction, which lives exactly as long as the body is being sent.
        """
        period = self.period(first, last)
        async with self._repository() as repository:
            scope = await repository.scope(under)
            written_by_database = extension == "csv" and await repository.database_writes_csv()
        # Only its file name is needed here: the rows come in the download's transaction.
        doc = documents.register_document(
            scope.name, period, self.now, self.principal.full_name, ()
        )
        if written_by_database:
            body = self._register_csv_from_database(under, period, doc.tables[0])
        elif extension == "csv":
            body = self._register_csv(under, period)
        else:
            body = self._register_xlsx(under, period)
        return Download(doc.file_name(extension), downloads.MEDIA_TYPES[extension], body)

    @asynccontextmanager
    async def _register(self, under: UUID | None, period: Period) -> AsyncIterator[ReportDocument]:
        """The register's document, its rows streaming from the database while it is open."""
        async with self._repository() as repository:
            scope = await repository.scope(under)
            chunks = repository.register_chunks(scope, period)
            async with RowFeed(chunks, documents.register_cells) as rows:
                yield self._headed(
                    documents.register_document(
                        scope.name, period, self.now, self.principal.full_name, rows
                    )
                )

    async def _register_csv_from_database(
        self, under: UUID | None, period: Period, table: Table
    ) -> AsyncIterator[bytes]:
        """The CSV with its rows written by the database (`documents.register_sql_line`): the
        same bytes as the renderer's, at a fraction of the cost (docs/reports.md)."""
        async with self._repository() as repository:
            scope = await repository.scope(under)
            lines = repository.register_lines(
                scope, period, documents.register_sql_line, cells.ZONE.key
            )
            async for block in downloads.csv_lines_body(csv_render.head(table), lines):
                yield block

    async def _register_csv(self, under: UUID | None, period: Period) -> AsyncIterator[bytes]:
        async with self._register(under, period) as doc:
            async for block in downloads.csv_body(doc.tables[0]):
                yield block

    async def _register_xlsx(self, under: UUID | None, period: Period) -> AsyncIterator[bytes]:
        async with self._register(under, period) as doc:
            path = await downloads.xlsx_file(doc)
        async for block in downloads.file_body(await downloads.open_and_delete(path)):
            yield block
