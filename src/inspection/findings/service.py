"""Rules and queries of findings.

A tablet creates findings offline under its own UUIDs and retries everything: the first PUT
creates (201), the same body again changes nothing (200), a changed body is an update and needs
`If-Match`. Visibility comes from `findings.repository.readable`; the officials named in a
finding are shown only where `access.principal.may_see_officials` allows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any, Literal, cast
from uuid import UUID
from zoneinfo import ZoneInfo

import msgspec
from msgspec import UNSET
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from inspection.access import scopes, seal
from inspection.access.principal import Principal, may_see_officials
from inspection.audit import recorder as audit
from inspection.audit.recorder import actor_of
from inspection.errors import (
    Conflict,
    DomainError,
    Forbidden,
    InvalidTransition,
    NotFound,
    Rejected,
)
from inspection.findings import repository as findings_repository
from inspection.findings import schemas
from inspection.findings.models import (
    CATEGORY_LABELS,
    Category,
    Finding,
    FindingStatus,
    Severity,
)
from inspection.kit.concurrency import check_version
from inspection.kit.moments import checked_moment
from inspection.kit.pagination import Page, SortKey, keyset_page
from inspection.kit.search import fold, folded_contains
from inspection.plans.models import Plan, TeamRole, Visit
from inspection.plans.schemas import Position
from inspection.plans.service import ON_SITE, PlanService, device_time
from inspection.units.models import Unit
from inspection.units.roles import Role
from inspection.units.tree import in_subtree

# Columns a bulk INSERT sets (the sentinel column is advanced-alchemy's, for ORM batching only).
_INSERTED = [c for c in Finding.__table__.columns if c.key != "sa_orm_sentinel"]
# What a replay-safe write did.
Change = Literal["created", "updated", "unchanged"]
_CONTENT = (
    "criterion_code",
    "category",
    "severity",
    "title",
    "description",
    "observed_at",
    "lat",
    "lon",
    "accuracy_m",
    "officials",
    "recommendation",
)
_TRANSITIONS = {
    FindingStatus.DRAFT.value: ["submit", "dismiss"],
    FindingStatus.SUBMITTED.value: ["dismiss"],
    FindingStatus.CLOSED.value: [],
    FindingStatus.DISMISSED.value: [],
}


def categories() -> list[schemas.CategoryInfo]:
    """The fixed list of categories with their Vietnamese and English labels."""
    return [schemas.CategoryInfo(c, vi, en) for c, (vi, en) in CATEGORY_LABELS.items()]


def _content(data: schemas.FindingIn | Finding) -> dict[str, Any]:
    """The fields a tablet controls, in one comparable shape."""
    if isinstance(data, Finding):
        values = {name: getattr(data, name) for name in _CONTENT}
        values["observed_at"] = data.observed_at.astimezone(UTC)
        return cast(dict[str, Any], audit.jsonable(values))
    position = data.position
    return cast(
        dict[str, Any],
        audit.jsonable(
            {
                "criterion_code": data.criterion_code,
                "category": data.category.value,
                "severity": data.severity.value,
                "title": data.title.strip(),
                "description": data.description,
                "observed_at": data.observed_at.astimezone(UTC)
                if data.observed_at.tzinfo
                else None,
                "lat": position.lat if position else None,
                "lon": position.lon if position else None,
                "accuracy_m": position.accuracy_m if position else None,
                "officials": [msgspec.to_builtins(o) for o in data.officials],
                "recommendation": data.recommendation,
            }
        ),
    )


@dataclass(frozen=True, slots=True)
class _Context:
    finding: Finding
    visit: Visit
    plan: Plan
    role: TeamRole | None


class FindingService:
    """Findings as the signed-in user may see and change them."""

    def __init__(self, session: AsyncSession, principal: Principal, zone: ZoneInfo) -> None:
        self.session = session
        self.principal = principal
        self.zone = zone
        self.plans = PlanService(session, principal, zone)

    # --- reading ---------------------------------------------------------------------------

    async def _read(self, findings: list[Finding]) -> list[schemas.Finding]:
        full = set(
            (
                await self.session.scalars(
                    select(Plan.id).where(
                        Plan.id.in_({f.plan_id for f in findings}),
                        seal.plans_in_full(self.principal),
                    )
                )
            ).all()
        )
        concerned: dict[UUID, UUID | None] = {}
        partial = {f.unit_id for f in findings if f.plan_id not in full}
        if partial and self.principal.has_role(Role.UNIT_HEAD):
            rows = await self.session.execute(
                select(Unit.id, scopes.unit_concerned(Unit.path)).where(Unit.id.in_(partial))
            )
            concerned = dict(rows.tuples().all())
        return [self._shape(f, f.plan_id in full, concerned.get(f.unit_id)) for f in findings]

    def _shape(
        self, finding: Finding, full: bool, concerned_unit_id: UUID | None = None
    ) -> schemas.Finding:
        position = None
        if finding.lat is not None and finding.lon is not None:
            position = Position(finding.lat, finding.lon, finding.accuracy_m)
        officials = None
        if may_see_officials(self.principal, concerned_unit_id, full):
            officials = [msgspec.convert(o, schemas.Official) for o in finding.officials]
        return schemas.Finding(
            id=finding.id,
            visit_id=finding.visit_id,
            plan_id=finding.plan_id,
            unit_id=finding.unit_id,
            criterion_code=finding.criterion_code,
            category=Category(finding.category),
            severity=Severity(finding.severity),
            title=finding.title,
            description=finding.description,
            observed_at=finding.observed_at,
            position=position,
            officials=officials,
            recommendation=finding.recommendation,
            status=FindingStatus(finding.status),
            submitted_at=finding.submitted_at,
            dismiss_reason=finding.dismiss_reason,
            version=finding.version,
            created_at=finding.created_at,
            updated_at=finding.updated_at,
        )

    async def _visible(self, finding_id: UUID) -> Finding:
        finding = await self.session.scalar(
            select(Finding).where(
                Finding.id == finding_id, findings_repository.readable(self.principal)
            )
        )
        if finding is None:
            raise NotFound(f"finding {finding_id} not found")
        return finding

    async def get(self, finding_id: UUID) -> schemas.Finding:
        """One finding."""
        return (await self._read([await self._visible(finding_id)]))[0]

    async def list_findings(
        self,
        *,
        visit: UUID | None,
        plan: UUID | None,
        unit: UUID | None,
        under: UUID | None,
        category: Category | None,
        severity: Severity | None,
        status: FindingStatus | None,
        q: str | None,
        observed_from: str | None,
        observed_to: str | None,
        cursor: str | None,
        limit: int,
    ) -> Page[schemas.Finding]:
        """Findings the user may see, newest observation first."""
        statement = select(Finding).where(findings_repository.readable(self.principal))
        for column, value in (
            (Finding.visit_id, visit),
            (Finding.plan_id, plan),
            (Finding.unit_id, unit),
        ):
            if value is not None:
                statement = statement.where(column == value)
        if category is not None:
            statement = statement.where(Finding.category == category.value)
        if severity is not None:
            statement = statement.where(Finding.severity == severity.value)
        if status is not None:
            statement = statement.where(Finding.status == status.value)
        if under is not None:
            statement = statement.where(await in_subtree(self.session, Finding.unit_id, under))
        if q:
            statement = statement.where(folded_contains(Finding.search_text, q))
        if observed_from is not None:
            statement = statement.where(
                Finding.observed_at >= self._bound(observed_from, "observed_from")
            )
        if observed_to is not None:
            statement = statement.where(
                Finding.observed_at < self._bound(observed_to, "observed_to", end=True)
            )
        keys = [SortKey(Finding.observed_at, descending=True), SortKey(Finding.id, descending=True)]
        rows, next_cursor = await keyset_page(self.session, statement, keys, cursor, limit)
        return Page(items=await self._read(rows), next_cursor=next_cursor)

    def _bound(self, value: str, field: str, *, end: bool = False) -> datetime:
        """A date (YYYY-MM-DD) means the whole local day, `to` included; a date-time needs an
        offset."""
        try:
            if len(value) == 10:
                day = date.fromisoformat(value)
                day = date.fromordinal(day.toordinal() + 1) if end else day
                moment = datetime.combine(day, time(), tzinfo=self.zone)
            else:
                moment = datetime.fromisoformat(value)
        except (ValueError, OverflowError):
            raise Rejected.field(
                field, "must be a date (YYYY-MM-DD) or an RFC 3339 date-time"
            ) from None
        return checked_moment(moment, field)

    # --- writing ---------------------------------------------------------------------------

    async def _context(self, finding: Finding) -> _Context:
        visit, plan, role = await self.plans.visit_context(finding.visit_id)
        return _Context(finding, visit, plan, role)

    def _require_editor(self, ctx: _Context) -> None:
        """The team while on site and the finding is a draft; afterwards the team lead alone."""
        status = ctx.finding.status
        if status in (FindingStatus.CLOSED.value, FindingStatus.DISMISSED.value):
            raise InvalidTransition(status, "change the finding", _TRANSITIONS[status])
        if ctx.role is None:
            raise Forbidden("only the inspection team changes findings")
        open_draft = status == FindingStatus.DRAFT.value and ctx.visit.status in ON_SITE
        if not open_draft and ctx.role != TeamRole.LEAD:
            raise Forbidden(
                "after the visit or once submitted, only the team lead changes a finding"
            )

    async def lock_for_evidence(self, finding_id: UUID, action: str) -> tuple[Finding, Plan]:
        """The finding and its plan, locked, if the caller may add or remove its evidence now.

        Evidence changes only while the finding is a draft, by those who may edit it: once the
        team lead submits it, its evidence is part of the record (409).
        """
        finding = await self._visible(finding_id)
        ctx = await self._context(finding)
        if finding.status != FindingStatus.DRAFT.value:
            raise InvalidTransition(finding.status, action)
        self._require_editor(ctx)
        return finding, ctx.plan

    async def _check_criterion(self, plan: Plan, code: str | None) -> None:
        if code is not None and not await self.plans.has_criterion(plan, code):
            raise Rejected.field(
                "criterion_code", f"the plan's checklist has no criterion {code!r}"
            )

    async def _audit(
        self, plan: Plan, finding: Finding, action: str, changes: dict[str, Any]
    ) -> None:
        await audit.record(
            self.session,
            actor_of(self.principal),
            "finding",
            finding.id,
            action,
            changes,
            unit_id=plan.unit_id,
            plan_id=plan.id,
        )

    async def put(
        self, finding_id: UUID, data: schemas.FindingIn, expected_version: int | None
    ) -> tuple[schemas.Finding, Change]:
        """Create the finding, or replay it, or update it; returns it and what happened."""
        device_time(data.observed_at, "observed_at")
        existing = await self.session.get(Finding, finding_id)
        if existing is None:
            try:
                async with self.session.begin_nested():
                    return await self._create(finding_id, data), "created"
            except IntegrityError:
                pass  # a retry raced us and created it first: answer as for any existing finding
        finding = await self._visible(finding_id)
        if finding.visit_id != data.visit_id:
            raise Conflict("this finding id is already used for another visit", field="visit_id")
        wanted = _content(data)
        if _content(finding) == wanted:
            return (await self._read([finding]))[0], "unchanged"
        ctx = await self._context(finding)
        self._require_editor(ctx)
        check_version(finding.version, expected_version, "finding")
        await self._check_criterion(ctx.plan, data.criterion_code)
        before = _content(finding)
        self._apply(finding, wanted)
        await self.session.flush()
        await self._audit(ctx.plan, finding, "update", audit.changes_between(before, wanted))
        return (await self._read([finding]))[0], "updated"

    async def _create(self, finding_id: UUID, data: schemas.FindingIn) -> schemas.Finding:
        visit, plan = await self._recording_context(data.visit_id)
        await self._check_criterion(plan, data.criterion_code)
        finding, content = self._new(finding_id, data, visit, plan)
        self.session.add(finding)
        await self.session.flush()
        await self._audit(plan, finding, "create", audit.created(content))
        # The recorder is on the team, so they see the plan whole (and the officials).
        return self._shape(finding, True)

    async def _recording_context(self, visit_id: UUID) -> tuple[Visit, Plan]:
        """The visit (locked) at which the caller may record findings now, and its plan."""
        try:
            visit, plan, role = await self.plans.visit_context(visit_id)
        except NotFound:
            raise Rejected.field("visit_id", "no such visit") from None
        if role is None:
            raise Forbidden("only the visit's team records findings")
        if visit.status not in ON_SITE:
            raise InvalidTransition(visit.status, "record findings at this visit", [])
        return visit, plan

    def _new(
        self, finding_id: UUID, data: schemas.FindingIn, visit: Visit, plan: Plan
    ) -> tuple[Finding, dict[str, Any]]:
        now = datetime.now(UTC)
        finding = Finding(
            id=finding_id,
            visit_id=visit.id,
            plan_id=plan.id,
            unit_id=visit.unit_id,
            status=FindingStatus.DRAFT.value,
            created_by=self.principal.user_id,
            version=1,
            created_at=now,
        )
        content = _content(data)
        self._apply(finding, content)
        return finding, content

    async def create_many(
        self, items: Sequence[tuple[UUID, schemas.FindingIn]]
    ) -> dict[UUID, DomainError | None]:
        """Create new findings in bulk (offline sync): one context per visit, one multi-row
        INSERT, one audit-head lock. Returns, per id, None when created or the error that
        refused it; the same rules as `put` apply. An id that already exists makes the INSERT
        fail (IntegrityError): the caller runs such a batch item by item instead."""
        outcome: dict[UUID, DomainError | None] = {}
        rows: list[dict[str, Any]] = []
        events: list[audit.Event] = []
        by_visit: dict[UUID, list[tuple[UUID, schemas.FindingIn]]] = {}
        for finding_id, data in items:
            by_visit.setdefault(data.visit_id, []).append((finding_id, data))
        for visit_id, group in by_visit.items():
            try:
                visit, plan = await self._recording_context(visit_id)
                codes = await self.plans.criterion_codes(plan)
            except DomainError as exc:
                outcome.update(dict.fromkeys((finding_id for finding_id, _ in group), exc))
                continue
            for finding_id, data in group:
                try:
                    device_time(data.observed_at, "observed_at")
                    if data.criterion_code is not None and data.criterion_code not in codes:
                        raise Rejected.field(
                            "criterion_code",
                            f"the plan's checklist has no criterion {data.criterion_code!r}",
                        )
                except DomainError as exc:
                    outcome[finding_id] = exc
                    continue
                finding, content = self._new(finding_id, data, visit, plan)
                rows.append({c.key: getattr(finding, c.key) for c in _INSERTED})
                events.append(
                    audit.Event(
                        "finding",
                        finding_id,
                        "create",
                        audit.created(content),
                        unit_id=plan.unit_id,
                        plan_id=plan.id,
                    )
                )
                outcome[finding_id] = None
        if rows:
            await self.session.execute(insert(Finding), rows)
            await audit.record_many(self.session, actor_of(self.principal), events)
        return outcome

    @staticmethod
    def _apply(finding: Finding, content: dict[str, Any]) -> None:
        for name, value in content.items():
            setattr(
                finding, name, datetime.fromisoformat(value) if name == "observed_at" else value
            )
        finding.search_text = fold(f"{finding.title} {finding.description or ''}")
        finding.updated_at = datetime.now(UTC)

    async def update(
        self, finding_id: UUID, data: schemas.FindingUpdate, expected_version: int | None
    ) -> schemas.Finding:
        """PATCH: change some fields of a finding."""
        finding = await self._visible(finding_id)
        stored = _content(finding)
        position = {k: stored.pop(k) for k in ("lat", "lon", "accuracy_m")}
        current = msgspec.convert(
            {
                **stored,
                "visit_id": str(finding.visit_id),
                "position": None if position["lat"] is None else position,
            },
            schemas.FindingIn,
        )
        changes = {
            f: getattr(data, f) for f in data.__struct_fields__ if getattr(data, f) is not UNSET
        }
        merged = msgspec.structs.replace(current, **changes)
        return (await self.put(finding_id, merged, expected_version))[0]

    async def _transition(
        self, finding_id: UUID, expected_version: int | None, action: str
    ) -> _Context:
        finding = await self._visible(finding_id)
        ctx = await self._context(finding)
        if ctx.role != TeamRole.LEAD:
            raise Forbidden(f"only the team lead may {action} a finding")
        check_version(finding.version, expected_version, "finding")
        if action not in _TRANSITIONS[finding.status]:
            raise InvalidTransition(finding.status, action, _TRANSITIONS[finding.status])
        return ctx

    async def submit(self, finding_id: UUID, expected_version: int | None) -> schemas.Finding:
        """The team lead confirms the finding: the inspected unit's head sees it from now on."""
        ctx = await self._transition(finding_id, expected_version, "submit")
        finding = ctx.finding
        finding.status = FindingStatus.SUBMITTED.value
        finding.submitted_at, finding.submitted_by = datetime.now(UTC), self.principal.user_id
        await self.session.flush()
        await self._audit(
            ctx.plan, finding, "submit", {"status": {"before": "draft", "after": "submitted"}}
        )
        return (await self._read([finding]))[0]

    async def dismiss(
        self, finding_id: UUID, data: schemas.Dismissal, expected_version: int | None
    ) -> schemas.Finding:
        """The team lead withdraws a finding, with a reason."""
        ctx = await self._transition(finding_id, expected_version, "dismiss")
        finding = ctx.finding
        before = finding.status
        finding.status, finding.dismissed_at = FindingStatus.DISMISSED.value, datetime.now(UTC)
        finding.dismiss_reason = data.reason.strip()
        await self.session.flush()
        await self._audit(
            ctx.plan,
            finding,
            "dismiss",
            {
                "status": {"before": before, "after": "dismissed"},
                "reason": {"after": finding.dismiss_reason},
            },
        )
        return (await self._read([finding]))[0]
