"""Checklist templates: criteria, revisions, and freezing once a plan uses one."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from uuid import UUID

from msgspec import UNSET
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from inspection.access.principal import Principal, may_read_checklists
from inspection.audit import recorder as audit
from inspection.audit.recorder import actor_of
from inspection.errors import Conflict, FieldError, Forbidden, NotFound, Rejected
from inspection.kit.concurrency import check_version
from inspection.kit.ids import new_id
from inspection.kit.pagination import Page, SortKey, keyset_page
from inspection.plans import schemas
from inspection.plans.models import Checklist, Criterion
from inspection.units.roles import Role

# Who maintains templates: administrators and the planners who use them.
EDITOR_ROLES = (Role.ADMIN, Role.PLANNER)


def _criteria_rows(checklist_id: UUID, criteria: Sequence[schemas.CriterionIn]) -> list[Criterion]:
    errors: list[FieldError] = []
    seen: dict[str, int] = {}
    for index, criterion in enumerate(criteria):
        if criterion.code in seen:
            errors.append(
                FieldError(
                    f"criteria[{index}].code", f"duplicate of criteria[{seen[criterion.code]}]"
                )
            )
        seen.setdefault(criterion.code, index)
    if errors:
        raise Rejected("criterion codes must be unique within a checklist", errors)
    return [
        Criterion(
            id=new_id(),
            checklist_id=checklist_id,
            position=index,
            code=c.code,
            text=c.text.strip(),
            category=c.category.strip(),
            weight=c.weight,
            evidence_required=c.evidence_required,
            note=c.note,
        )
        for index, c in enumerate(criteria)
    ]


def _criterion_read(c: Criterion) -> schemas.Criterion:
    return schemas.Criterion(c.code, c.text, c.category, c.weight, c.evidence_required, c.note)


def _criteria_snapshot(
    criteria: Sequence[schemas.CriterionIn | Criterion],
) -> list[dict[str, object]]:
    return [
        {
            "code": c.code,
            "text": c.text,
            "category": c.category,
            "weight": c.weight,
            "evidence_required": c.evidence_required,
            "note": c.note,
        }
        for c in criteria  # in order: the position is the index
    ]


class ChecklistService:
    """Checklist templates: the inspection side reads them, admins and planners edit them."""

    def __init__(self, session: AsyncSession, principal: Principal) -> None:
        self.session = session
        self.principal = principal

    def _require_reader(self) -> None:
        if not may_read_checklists(self.principal):
            raise NotFound("not found")

    def _require_editor(self) -> None:
        if not self.principal.has_role(*EDITOR_ROLES):
            raise Forbidden("only administrators and planners maintain checklists")

    async def _get(self, checklist_id: UUID) -> Checklist:
        self._require_reader()
        checklist = await self.session.get(Checklist, checklist_id)
        if checklist is None:
            raise NotFound(f"checklist {checklist_id} not found")
        return checklist

    async def criteria_of(self, checklist_id: UUID) -> list[Criterion]:
        """The criteria of a revision, in their order."""
        rows = await self.session.scalars(
            select(Criterion)
            .where(Criterion.checklist_id == checklist_id)
            .order_by(Criterion.position)
        )
        return list(rows.all())

    async def _read(self, checklist: Checklist) -> schemas.Checklist:
        criteria = await self.criteria_of(checklist.id)
        return schemas.Checklist(
            id=checklist.id,
            family_id=checklist.family_id,
            revision=checklist.revision,
            title=checklist.title,
            description=checklist.description,
            frozen=checklist.frozen,
            criteria=[_criterion_read(c) for c in criteria],
            version=checklist.version,
            created_at=checklist.created_at,
            updated_at=checklist.updated_at,
        )

    async def list_checklists(
        self, *, family: UUID | None, cursor: str | None, limit: int
    ) -> Page[schemas.ChecklistSummary]:
        """Checklist revisions, newest first."""
        self._require_reader()
        statement = select(Checklist)
        if family:
            statement = statement.where(Checklist.family_id == family)
        rows, next_cursor = await keyset_page(
            self.session, statement, [SortKey(Checklist.id, descending=True)], cursor, limit
        )
        counts = dict(
            (
                await self.session.execute(
                    select(Criterion.checklist_id, func.count())
                    .where(Criterion.checklist_id.in_([c.id for c in rows]))
                    .group_by(Criterion.checklist_id)
                )
            )
            .tuples()
            .all()
        )
        items = [
            schemas.ChecklistSummary(
                c.id,
                c.family_id,
                c.revision,
                c.title,
                c.frozen,
                counts.get(c.id, 0),
                c.version,
                c.created_at,
            )
            for c in rows
        ]
        return Page(items=items, next_cursor=next_cursor)

    async def get(self, checklist_id: UUID) -> schemas.Checklist:
        """One revision with its criteria."""
        return await self._read(await self._get(checklist_id))

    async def create(self, data: schemas.ChecklistCreate) -> schemas.Checklist:
        """A new template, revision 1."""
        self._require_editor()
        checklist_id = new_id()
        checklist = Checklist(
            id=checklist_id,
            family_id=checklist_id,
            revision=1,
            title=data.title.strip(),
            description=data.description,
            frozen=False,
            created_by=self.principal.user_id,
        )
        self.session.add(checklist)
        self.session.add_all(_criteria_rows(checklist_id, data.criteria))
        await self.session.flush()
        await audit.record(
            self.session,
            actor_of(self.principal),
            "checklist",
            checklist.id,
            "create",
            audit.created(
                {"title": checklist.title, "criteria": _criteria_snapshot(data.criteria)}
            ),
        )
        return await self._read(checklist)

    async def update(
        self, checklist_id: UUID, data: schemas.ChecklistUpdate, expected_version: int | None
    ) -> schemas.Checklist:
        """Change a revision that no plan uses yet."""
        self._require_editor()
        checklist = await self._get(checklist_id)
        if checklist.frozen:
            raise Conflict(
                "this checklist is used by a plan and is frozen; "
                f"create a new revision with POST /api/v1/checklists/{checklist_id}/versions"
            )
        check_version(checklist.version, expected_version, "checklist")
        before = {"title": checklist.title, "description": checklist.description}
        changes: dict[str, object] = {}
        if data.title is not UNSET:
            checklist.title = data.title.strip()
        if data.description is not UNSET:
            checklist.description = data.description
        changes.update(
            audit.changes_between(
                before, {"title": checklist.title, "description": checklist.description}
            )
        )
        if data.criteria is not UNSET:
            old = _criteria_snapshot(await self.criteria_of(checklist.id))
            rows = _criteria_rows(checklist.id, data.criteria)
            await self.session.execute(
                delete(Criterion).where(Criterion.checklist_id == checklist.id)
            )
            self.session.add_all(rows)
            new = _criteria_snapshot(rows)  # as stored (trimmed), not as sent
            if old != new:
                changes["criteria"] = {"before": old, "after": new}
        if changes:
            # Touching the row makes the ORM bump `version`, also when only criteria changed.
            checklist.updated_at = datetime.now(UTC)
            await self.session.flush()
            await audit.record(
                self.session, actor_of(self.principal), "checklist", checklist.id, "update", changes
            )
        return await self._read(checklist)

    async def new_revision(
        self, checklist_id: UUID, data: schemas.ChecklistUpdate
    ) -> schemas.Checklist:
        """Copy a revision into the next revision of its family, applying `data`."""
        self._require_editor()
        source = await self._get(checklist_id)
        latest = await self.session.scalar(
            select(func.max(Checklist.revision)).where(Checklist.family_id == source.family_id)
        )
        new_checklist_id = new_id()
        checklist = Checklist(
            id=new_checklist_id,
            family_id=source.family_id,
            revision=(latest or source.revision) + 1,
            title=source.title if data.title is UNSET else data.title.strip(),
            description=source.description if data.description is UNSET else data.description,
            frozen=False,
            created_by=self.principal.user_id,
        )
        if data.criteria is UNSET:
            criteria: Sequence[schemas.CriterionIn] = [
                schemas.CriterionIn(
                    c.code, c.text, c.category, c.weight, c.evidence_required, c.note
                )
                for c in await self.criteria_of(source.id)
            ]
        else:
            criteria = data.criteria
        self.session.add(checklist)
        self.session.add_all(_criteria_rows(new_checklist_id, criteria))
        await self.session.flush()
        await audit.record(
            self.session,
            actor_of(self.principal),
            "checklist",
            checklist.id,
            "create",
            audit.created(
                {
                    "title": checklist.title,
                    "revision": checklist.revision,
                    "from": str(source.id),
                    "criteria": _criteria_snapshot(criteria),
                }
            ),
        )
        return await self._read(checklist)
