"""`POST /api/v1/sync`: what a tablet recorded offline, in one batch.

Findings whose ids are new (the bulk of a first sync) are checked one by one with the rules of
`PUT` but written together: one context per visit, one multi-row INSERT and one audit-head lock
(`FindingService.create_many`); this is what makes a 500-item batch much cheaper than 500 PUTs.
Every other item (a replay, an edit, an id sent twice) runs in its own SAVEPOINT through the same
service methods as the single endpoints, so the rules, the audit entries and the replay semantics
are identical, and one bad item rolls back alone. An item that edits something which changed on
the server meanwhile is a `conflict` carrying the server's copy; the tablet merges and sends it
again with the new version.
"""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Any, Literal
from uuid import UUID
from zoneinfo import ZoneInfo

import msgspec
from msgspec import Meta
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from inspection.access.principal import Principal
from inspection.errors import DomainError, PreconditionFailed, PreconditionRequired, Rejected
from inspection.findings import schemas
from inspection.findings.models import Finding
from inspection.findings.service import FindingService
from inspection.kit.problem_details import locate_field, problem_type, rejected_fields
from inspection.plans import schemas as plan_schemas

MAX_ITEMS = 500
Outcome = Literal["created", "updated", "unchanged", "conflict", "rejected"]


class SyncFinding(schemas.FindingIn, forbid_unknown_fields=True, kw_only=True):
    """A finding with its id and, when it edits an existing one, the version it was edited from."""

    id: UUID
    version: Annotated[int, Meta(ge=1)] | None = None


class SyncResponse(plan_schemas.ResponseIn, forbid_unknown_fields=True, kw_only=True):
    """A checklist answer with its visit and criterion."""

    visit_id: UUID
    criterion_code: plan_schemas.CriterionCode
    version: Annotated[int, Meta(ge=1)] | None = None


class SyncBatch(msgspec.Struct, forbid_unknown_fields=True):
    """Up to 500 items in all. Items are JSON objects shaped like `SyncFinding` and
    `SyncResponse`; each is validated on its own, so a malformed item, even one that is not an
    object at all, is rejected alone."""

    findings: Annotated[list[Any], Meta(max_length=MAX_ITEMS)] = msgspec.field(default_factory=list)
    responses: Annotated[list[Any], Meta(max_length=MAX_ITEMS)] = msgspec.field(
        default_factory=list
    )


class ItemProblem(msgspec.Struct, omit_defaults=True):
    """Why an item was rejected (problem details, as the single endpoint would answer)."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[dict[str, Any]] | None = None


class FindingOutcome(msgspec.Struct, omit_defaults=True):
    """What happened to one finding; `server` is the current copy on a conflict."""

    index: int
    outcome: Outcome
    id: UUID | None = None
    version: int | None = None
    server: schemas.Finding | None = None
    problem: ItemProblem | None = None


class ResponseOutcome(msgspec.Struct, omit_defaults=True):
    """What happened to one checklist answer; `server` is the current copy on a conflict."""

    index: int
    outcome: Outcome
    visit_id: UUID | None = None
    criterion_code: str | None = None
    version: int | None = None
    server: plan_schemas.Response | None = None
    problem: ItemProblem | None = None


class SyncResult(msgspec.Struct):
    """One outcome per item, in the order sent."""

    findings: list[FindingOutcome]
    responses: list[ResponseOutcome]


def _problem(exc: DomainError) -> ItemProblem:
    errors = rejected_fields(exc) if isinstance(exc, Rejected) else None
    return ItemProblem(f"/problems/{exc.slug}", exc.title, exc.status, exc.detail, errors)


def _malformed(exc: msgspec.ValidationError) -> ItemProblem:
    field, message = locate_field(str(exc), "item")
    return ItemProblem(
        "/problems/validation",
        "Invalid request",
        400,
        f"{field}: {message}",
        [{"field": field, "message": message}],
    )


def _finding_in(item: SyncFinding) -> schemas.FindingIn:
    return schemas.FindingIn(**{f: getattr(item, f) for f in schemas.FindingIn.__struct_fields__})


_CONFLICT = ItemProblem(problem_type(409), "Conflict", 409, "the id is used by another record")


class SyncService:
    """Applies a tablet's batch item by item."""

    def __init__(self, session: AsyncSession, principal: Principal, zone: ZoneInfo) -> None:
        self.session = session
        self.findings = FindingService(session, principal, zone)
        self.plans = self.findings.plans

    async def run(self, batch: SyncBatch) -> SyncResult:
        """Every item, independently; the batch as a whole never fails on one item."""
        if len(batch.findings) + len(batch.responses) > MAX_ITEMS:
            raise Rejected.field("findings", f"at most {MAX_ITEMS} items per batch")
        findings = await self._findings(batch.findings)
        responses = [await self._response(i, item) for i, item in enumerate(batch.responses)]
        return SyncResult(findings, responses)

    async def _findings(self, raws: list[Any]) -> list[FindingOutcome]:
        """New findings (the bulk of a first sync) are created together in one step; the rest
        (replays, edits, ids sent twice) go item by item, in the order sent."""
        outcomes: dict[int, FindingOutcome] = {}
        items: dict[int, SyncFinding] = {}
        for index, raw in enumerate(raws):
            try:
                items[index] = msgspec.convert(raw, SyncFinding)
            except msgspec.ValidationError as exc:
                outcomes[index] = FindingOutcome(index, "rejected", problem=_malformed(exc))
        sent = Counter(item.id for item in items.values())
        stored = set(
            await self.session.scalars(select(Finding.id).where(Finding.id.in_(list(sent))))
        )
        fresh = {
            i: item for i, item in items.items() if item.id not in stored and sent[item.id] == 1
        }
        if fresh:
            outcomes.update(await self._create_fresh(fresh))
        for index, item in items.items():
            if index not in outcomes:
                outcomes[index] = await self._finding(index, item)
        return [outcomes[index] for index in range(len(raws))]

    async def _create_fresh(self, fresh: dict[int, SyncFinding]) -> dict[int, FindingOutcome]:
        """Create findings whose ids are new, in bulk; nothing if one of them raced in."""
        try:
            async with self.session.begin_nested():
                refused = await self.findings.create_many(
                    [(item.id, _finding_in(item)) for item in fresh.values()]
                )
        except IntegrityError:
            return {}  # another request created one of them meanwhile: go item by item
        outcomes = {}
        for index, item in fresh.items():
            error = refused[item.id]
            outcomes[index] = (
                FindingOutcome(index, "created", item.id, 1)
                if error is None
                else FindingOutcome(index, "rejected", item.id, problem=_problem(error))
            )
        return outcomes

    async def _finding(self, index: int, item: SyncFinding) -> FindingOutcome:
        data = _finding_in(item)
        try:
            async with self.session.begin_nested():
                finding, change = await self.findings.put(item.id, data, item.version)
        except (PreconditionFailed, PreconditionRequired):
            server = await self.findings.get(item.id)
            return FindingOutcome(index, "conflict", item.id, server.version, server=server)
        except DomainError as exc:
            return FindingOutcome(index, "rejected", item.id, problem=_problem(exc))
        except IntegrityError:
            return FindingOutcome(index, "rejected", item.id, problem=_CONFLICT)
        return FindingOutcome(index, change, item.id, finding.version)

    async def _response(self, index: int, raw: Any) -> ResponseOutcome:
        try:
            item = msgspec.convert(raw, SyncResponse)
        except msgspec.ValidationError as exc:
            return ResponseOutcome(index, "rejected", problem=_malformed(exc))
        answer = plan_schemas.ResponseIn(item.result, item.note)
        visit_id, code = item.visit_id, item.criterion_code
        try:
            async with self.session.begin_nested():
                response, change = await self.plans.put_response(
                    visit_id, code, answer, item.version
                )
        except (PreconditionFailed, PreconditionRequired):
            server = await self.plans.get_response(visit_id, code)
            return ResponseOutcome(index, "conflict", visit_id, code, server.version, server=server)
        except DomainError as exc:
            return ResponseOutcome(index, "rejected", visit_id, code, problem=_problem(exc))
        except IntegrityError:
            return ResponseOutcome(index, "rejected", visit_id, code, problem=_CONFLICT)
        return ResponseOutcome(index, change, visit_id, code, response.version)
