"""Rules and queries of inspection plans and visits.

Visibility comes from `access/` (plans_in_scope, plans_in_full, visits_in_scope): a unit head
never learns of an unannounced plan before its visit to their unit is checked in. Audit entries of
plans and visits are filed under the organising unit, so they are not a side channel either.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal
from uuid import UUID
from zoneinfo import ZoneInfo

from msgspec import UNSET
from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from inspection.access import scopes, seal
from inspection.access.principal import Principal
from inspection.actions.models import OPEN_STATUSES, CorrectiveAction
from inspection.audit import recorder as audit
from inspection.audit.recorder import actor_of
from inspection.db.session import lock
from inspection.errors import (
    Conflict,
    FieldError,
    Forbidden,
    InvalidTransition,
    NotFound,
    Rejected,
)
from inspection.kit.concurrency import check_version
from inspection.kit.ids import new_id
from inspection.kit.moments import checked_moment
from inspection.kit.pagination import Page, SortKey, page_rows
from inspection.plans import schemas
from inspection.plans.models import (
    Checklist,
    ChecklistResponse,
    Criterion,
    Plan,
    PlanKind,
    PlanStatus,
    ResponseResult,
    TeamMember,
    TeamRole,
    Visit,
    VisitStatus,
)
from inspection.units.models import Grant, Unit, User
from inspection.units.roles import Role
from inspection.units.tree import in_subtree

# Roles a team member must hold somewhere: inspection is their job.
TEAM_ROLES = frozenset({Role.INSPECTOR, Role.PLANNER, Role.LEADER})
# Tablet clocks drift; a check-in "in the future" beyond this is a wrong clock, not a visit.
CLOCK_SKEW = timedelta(minutes=10)
_OPEN_VISITS = (
    VisitStatus.PLANNED.value,
    VisitStatus.CHECKED_IN.value,
    VisitStatus.CHECKED_OUT.value,
)
ON_SITE = (VisitStatus.CHECKED_IN.value, VisitStatus.CHECKED_OUT.value)
_PLAN_TRANSITIONS = {
    PlanStatus.DRAFT.value: ["approve", "cancel"],
    PlanStatus.APPROVED.value: ["cancel"],
    PlanStatus.IN_PROGRESS.value: ["cancel"],
    PlanStatus.COMPLETED.value: [],
    PlanStatus.CANCELLED.value: [],
}
_VISIT_TRANSITIONS = {
    VisitStatus.PLANNED.value: ["check-in"],
    VisitStatus.CHECKED_IN.value: ["check-out", "conclude"],
    VisitStatus.CHECKED_OUT.value: ["conclude"],
    VisitStatus.CONCLUDED.value: [],
    VisitStatus.CANCELLED.value: [],
}


def device_time(at: datetime | None, field: str) -> datetime:
    """A time a tablet reports (it may have been offline), in UTC; now when absent.

    It must carry an offset, and may not lie in the future beyond clock drift.
    """
    now = datetime.now(UTC)
    if at is None:
        return now
    moment = checked_moment(at, field)
    if moment > now + CLOCK_SKEW:
        raise Rejected.field(field, "is in the future; check the device clock")
    return moment


def weighted_score(answers: Sequence[tuple[str, float]]) -> float | None:
    """The weighted share of `pass` among answered criteria, `na` excluded; None if none count."""
    counted = [
        (result, weight) for result, weight in answers if result != ResponseResult.NOT_APPLICABLE
    ]
    total = sum(weight for _, weight in counted)
    if total <= 0:
        return None
    passed = sum(weight for result, weight in counted if result == ResponseResult.PASS)
    return round(passed / total, 4)


@dataclass(frozen=True, slots=True)
class _Member:
    user: User
    role: TeamRole
    cover_paths: list[str | None]  # grant unit paths (None: system-wide) and the home unit's path


class PlanService:
    """Plans and visits as the signed-in user may see and change them."""

    def __init__(self, session: AsyncSession, principal: Principal, zone: ZoneInfo) -> None:
        self.session = session
        self.principal = principal
        self.zone = zone

    # --- reading ---------------------------------------------------------------------------

    def _visits(self) -> Select[tuple[Visit, Plan, Unit, bool, bool]]:
        return (
            select(Visit, Plan, Unit, *seal.plan_view_columns(self.principal))
            .join(Plan, Plan.id == Visit.plan_id)
            .join(Unit, Unit.id == Visit.unit_id)
            .where(seal.visits_in_scope(self.principal))
        )

    @staticmethod
    def _plan_ref(plan: Plan, view: seal.PlanView) -> schemas.PlanRef:
        # The period of an unannounced plan would tell a unit head when other units get visited;
        # its free text may name a target still sealed to them.
        return schemas.PlanRef(
            id=plan.id,
            kind=PlanKind(plan.kind),
            status=PlanStatus(plan.status),
            title=plan.title if view.text else None,
            legal_basis=plan.legal_basis if view.text else None,
            focus=list(plan.focus) if view.text else [],
            period_start=plan.period_start if view.period else None,
            period_end=plan.period_end if view.period else None,
        )

    async def _open_actions(self, visit_ids: Sequence[UUID]) -> dict[UUID, int]:
        """Open corrective actions per visit (open, in progress or awaiting verification)."""
        if not visit_ids:
            return {}
        rows = await self.session.execute(
            select(CorrectiveAction.visit_id, func.count())
            .where(
                CorrectiveAction.visit_id.in_(list(visit_ids)),
                CorrectiveAction.status.in_(OPEN_STATUSES),
            )
            .group_by(CorrectiveAction.visit_id)
        )
        return {visit_id: int(count) for visit_id, count in rows.tuples()}

    def _visit_read(
        self, visit: Visit, plan: Plan, unit: Unit, view: seal.PlanView, open_actions: int = 0
    ) -> schemas.Visit:
        position = None
        if visit.check_in_lat is not None and visit.check_in_lon is not None:
            position = schemas.Position(
                visit.check_in_lat, visit.check_in_lon, visit.check_in_accuracy_m
            )
        return schemas.Visit(
            id=visit.id,
            plan=self._plan_ref(plan, view),
            unit_id=unit.id,
            unit_code=unit.code,
            unit_name=unit.name,
            window_start=visit.window_start,
            window_end=visit.window_end,
            status=VisitStatus(visit.status),
            checked_in_at=visit.checked_in_at,
            check_in_position=position,
            check_in_reason=visit.check_in_reason,
            checked_out_at=visit.checked_out_at,
            concluded_at=visit.concluded_at,
            conclusion=visit.conclusion,
            score=visit.score,
            cancel_reason=visit.cancel_reason,
            open_actions=open_actions,
            version=visit.version,
        )

    async def _visit_out(
        self, visit: Visit, plan: Plan, unit: Unit, view: seal.PlanView
    ) -> schemas.Visit:
        counts = await self._open_actions([visit.id])
        return self._visit_read(visit, plan, unit, view, counts.get(visit.id, 0))

    async def _plan_read(self, plan: Plan, view: seal.PlanView) -> schemas.Plan:
        return (await self._plans_read([(plan, view)]))[0]

    async def _plans_read(self, plans: Sequence[tuple[Plan, seal.PlanView]]) -> list[schemas.Plan]:
        """Plans with their visible visits and (for full viewers) their team, in two queries."""
        ids = [plan.id for plan, _ in plans]
        views = {plan.id: view for plan, view in plans}
        visits: dict[UUID, list[schemas.Visit]] = {plan_id: [] for plan_id in ids}
        rows = await self.session.execute(
            select(Visit, Plan, Unit)
            .join(Plan, Plan.id == Visit.plan_id)
            .join(Unit, Unit.id == Visit.unit_id)
            .where(Visit.plan_id.in_(ids), seal.visits_in_scope(self.principal))
            .order_by(Visit.window_start, Visit.id)
        )
        found = list(rows.tuples())
        counts = await self._open_actions([v.id for v, _, _ in found])
        for v, p, u in found:
            visits[p.id].append(self._visit_read(v, p, u, views[p.id], counts.get(v.id, 0)))
        teams: dict[UUID, list[schemas.TeamMember]] = {plan_id: [] for plan_id in ids}
        members = await self.session.execute(
            select(TeamMember, User.full_name)
            .join(User, User.id == TeamMember.user_id)
            .where(TeamMember.plan_id.in_([i for i in ids if views[i].full]))
            .order_by(TeamMember.role, User.full_name)
        )
        for member, name in members.tuples():
            teams[member.plan_id].append(
                schemas.TeamMember(member.user_id, name, TeamRole(member.role))
            )
        return [self._plan_body(p, view, visits[p.id], teams[p.id]) for p, view in plans]

    def _plan_body(
        self,
        plan: Plan,
        view: seal.PlanView,
        visits: list[schemas.Visit],
        team: list[schemas.TeamMember],
    ) -> schemas.Plan:
        ref = self._plan_ref(plan, view)
        return schemas.Plan(
            id=plan.id,
            kind=ref.kind,
            status=ref.status,
            title=ref.title,
            legal_basis=ref.legal_basis,
            focus=ref.focus,
            period_start=ref.period_start,
            period_end=ref.period_end,
            checklist_id=plan.checklist_id,
            unit_id=plan.unit_id,
            team=team,
            visits=visits,
            open_actions=sum(v.open_actions for v in visits),
            approved_at=plan.approved_at,
            cancel_reason=plan.cancel_reason,
            version=plan.version,
            created_at=plan.created_at,
            updated_at=plan.updated_at,
        )

    async def _visible_plan(self, plan_id: UUID) -> tuple[Plan, seal.PlanView]:
        row = (
            await self.session.execute(
                select(Plan, *seal.plan_view_columns(self.principal)).where(
                    Plan.id == plan_id, seal.plans_in_scope(self.principal)
                )
            )
        ).first()
        if row is None:
            raise NotFound(f"plan {plan_id} not found")
        plan, full, withheld = row
        return plan, seal.PlanView.of(plan.kind, bool(full), bool(withheld))

    async def _visible_visit(self, visit_id: UUID) -> tuple[Visit, Plan, Unit, seal.PlanView]:
        row = (await self.session.execute(self._visits().where(Visit.id == visit_id))).first()
        if row is None:
            raise NotFound(f"visit {visit_id} not found")
        visit, plan, unit, full, withheld = row
        return visit, plan, unit, seal.PlanView.of(plan.kind, bool(full), bool(withheld))

    async def list_plans(
        self,
        *,
        status: PlanStatus | None,
        kind: PlanKind | None,
        unit: UUID | None,
        under: UUID | None,
        active_from: date | None,
        active_to: date | None,
        cursor: str | None,
        limit: int,
    ) -> Page[schemas.Plan]:
        """Plans the user may know of, newest first."""
        statement = select(Plan, *seal.plan_view_columns(self.principal)).where(
            seal.plans_in_scope(self.principal)
        )
        if status is not None:
            statement = statement.where(Plan.status == status.value)
        if kind is not None:
            statement = statement.where(Plan.kind == kind.value)
        if unit is not None or under is not None:
            statement = statement.where(await self._has_visible_visit(unit=unit, under=under))
        if active_from is not None or active_to is not None:
            statement = statement.where(self._active_between(active_from, active_to))
        rows, next_cursor = await page_rows(
            self.session, statement, [SortKey(Plan.id, descending=True)], cursor, limit
        )
        plans = [(p, seal.PlanView.of(p.kind, bool(f), bool(w))) for p, f, w in rows]
        return Page(items=await self._plans_read(plans), next_cursor=next_cursor)

    def _active_between(self, start: date | None, end: date | None) -> ColumnElement[bool]:
        """Plans whose period overlaps [start, end]. Where the viewer may not know the period (an
        unannounced plan seen through one visit), only the windows of the visits they see count:
        filtering on the hidden period would let them recover it by bisection."""
        period, windows = [], []
        if start is not None:
            period.append(Plan.period_end >= start)
            windows.append(Visit.window_end >= start)
        if end is not None:
            period.append(Plan.period_start <= end)
            windows.append(Visit.window_start <= end)
        period_known = seal.periods_known(self.principal)
        visible_window = (
            select(Visit.id)
            .where(Visit.plan_id == Plan.id, seal.visits_in_scope(self.principal), *windows)
            .exists()
        )
        return or_(and_(period_known, *period), visible_window)

    async def _has_visible_visit(
        self, *, unit: UUID | None, under: UUID | None
    ) -> ColumnElement[bool]:
        visit = select(Visit.id).where(
            Visit.plan_id == Plan.id, seal.visits_in_scope(self.principal)
        )
        if unit is not None:
            visit = visit.where(Visit.unit_id == unit)
        if under is not None:
            visit = visit.where(await in_subtree(self.session, Visit.unit_id, under))
        return visit.exists()

    async def get_plan(self, plan_id: UUID) -> schemas.Plan:
        """One plan, with what the viewer may see of it."""
        plan, view = await self._visible_plan(plan_id)
        return await self._plan_read(plan, view)

    async def list_visits(
        self,
        *,
        plan: UUID | None,
        unit: UUID | None,
        under: UUID | None,
        status: VisitStatus | None,
        window_from: date | None,
        window_to: date | None,
        cursor: str | None,
        limit: int,
    ) -> Page[schemas.Visit]:
        """Visits the user may know of, by window."""
        statement = self._visits()
        if plan is not None:
            statement = statement.where(Visit.plan_id == plan)
        if unit is not None:
            statement = statement.where(Visit.unit_id == unit)
        if under is not None:
            statement = statement.where(await in_subtree(self.session, Visit.unit_id, under))
        if status is not None:
            statement = statement.where(Visit.status == status.value)
        if window_from is not None:
            statement = statement.where(Visit.window_end >= window_from)
        if window_to is not None:
            statement = statement.where(Visit.window_start <= window_to)
        keys = [SortKey(Visit.window_start), SortKey(Visit.id)]
        rows, next_cursor = await page_rows(self.session, statement, keys, cursor, limit)
        counts = await self._open_actions([v.id for v, _, _, _, _ in rows])
        items = [
            self._visit_read(
                v, p, u, seal.PlanView.of(p.kind, bool(f), bool(w)), counts.get(v.id, 0)
            )
            for v, p, u, f, w in rows
        ]
        return Page(items=items, next_cursor=next_cursor)

    async def get_visit(self, visit_id: UUID) -> schemas.VisitDetail:
        """One visit with its checklist responses."""
        visit, plan, unit, view = await self._visible_visit(visit_id)
        responses = await self.session.scalars(
            select(ChecklistResponse)
            .where(ChecklistResponse.visit_id == visit.id)
            .order_by(ChecklistResponse.criterion_code)
        )
        base = await self._visit_out(visit, plan, unit, view)
        return schemas.VisitDetail(
            **{f: getattr(base, f) for f in base.__struct_fields__},
            responses=[_response_read(r) for r in responses],
        )

    # --- planning ----------------------------------------------------------------------------

    def _require_planner_of(self, unit_path: str | None, what: str) -> None:
        if not self.principal.covers(unit_path, [Role.PLANNER]):
            raise Forbidden(f"you are not a planner of {what}")

    async def _organising_unit(self, unit_id: UUID | None) -> Unit:
        if unit_id is None:
            planner_units = [
                g.unit_id for g in self.principal.grants if g.role == Role.PLANNER and g.unit_id
            ]
            if len(planner_units) != 1:
                raise Rejected.field("unit_id", "name the organising unit (you plan for several)")
            unit_id = planner_units[0]
        unit = await self.session.scalar(
            select(Unit).where(Unit.id == unit_id, scopes.units_in_scope(self.principal))
        )
        if unit is None:
            raise Rejected.field("unit_id", "no such unit")
        self._require_planner_of(unit.path, "this unit")
        return unit

    async def _check_checklist(self, checklist_id: UUID) -> Checklist:
        checklist = await self.session.get(Checklist, checklist_id)
        if checklist is None:
            raise Rejected.field("checklist_id", "no such checklist")
        return checklist

    async def _members(
        self, team: Sequence[schemas.TeamMemberIn], errors: list[FieldError]
    ) -> list[_Member]:
        leads = [m for m in team if m.role == TeamRole.LEAD]
        if len(leads) != 1:
            errors.append(FieldError("team", f"a team has exactly one lead, not {len(leads)}"))
        ids = [m.user_id for m in team]
        users = {
            u.id: u
            for u in (
                await self.session.scalars(
                    select(User).where(User.id.in_(ids), scopes.users_in_scope(self.principal))
                )
            ).all()
        }
        grants: dict[UUID, list[tuple[str, str | None]]] = {uid: [] for uid in ids}
        for user_id, role, path in (
            await self.session.execute(
                select(Grant.user_id, Grant.role, Unit.path)
                .outerjoin(Unit, Unit.id == Grant.unit_id)
                .where(Grant.user_id.in_(ids))
            )
        ).tuples():
            grants[user_id].append((role, path))
        homes = dict(
            (
                await self.session.execute(
                    select(User.id, Unit.path)
                    .join(Unit, Unit.id == User.unit_id)
                    .where(User.id.in_(ids))
                )
            )
            .tuples()
            .all()
        )
        members: list[_Member] = []
        seen: set[UUID] = set()
        for index, member in enumerate(team):
            field = f"team[{index}].user_id"
            user = users.get(member.user_id)
            if user is None or not user.is_active:
                errors.append(FieldError(field, "no such active user"))
                continue
            if member.user_id in seen:
                errors.append(FieldError(field, "already on the team"))
                continue
            seen.add(member.user_id)
            if not any(Role(role) in TEAM_ROLES for role, _ in grants[user.id]):
                errors.append(
                    FieldError(
                        field, f"{user.full_name} holds no inspector, planner or leader role"
                    )
                )
                continue
            cover = [path for _, path in grants[user.id]]
            if user.id in homes:
                cover.append(homes[user.id])
            members.append(_Member(user, member.role, cover))
        return members

    async def _target_units(
        self, targets: Sequence[schemas.TargetIn], start: date, end: date, errors: list[FieldError]
    ) -> dict[UUID, Unit]:
        units = {
            u.id: u
            for u in (
                await self.session.scalars(
                    select(Unit).where(
                        Unit.id.in_([t.unit_id for t in targets]),
                        scopes.units_in_scope(self.principal),
                    )
                )
            ).all()
        }
        seen: set[UUID] = set()
        for index, target in enumerate(targets):
            prefix = f"targets[{index}]"
            unit = units.get(target.unit_id)
            if unit is None:
                errors.append(FieldError(f"{prefix}.unit_id", "no such unit"))
            elif not self.principal.covers(unit.path, [Role.PLANNER]):
                errors.append(FieldError(f"{prefix}.unit_id", f"you do not plan for {unit.name}"))
            if target.unit_id in seen:
                errors.append(
                    FieldError(f"{prefix}.unit_id", "a unit is visited at most once per plan")
                )
            seen.add(target.unit_id)
            if target.window_start > target.window_end:
                errors.append(FieldError(f"{prefix}.window_end", "ends before it starts"))
            if target.window_start < start or target.window_end > end:
                errors.append(
                    FieldError(
                        f"{prefix}.window_start", f"the window must lie within {start}..{end}"
                    )
                )
        return units

    @staticmethod
    def _conflicts(
        members: Sequence[_Member],
        targets: Sequence[schemas.TargetIn],
        units: dict[UUID, Unit],
        errors: list[FieldError],
    ) -> None:
        """Nobody inspects a unit their own grants or home unit cover."""
        for index, member in enumerate(members):
            for target in targets:
                unit = units.get(target.unit_id)
                if unit is None:
                    continue
                if any(path is None or unit.path.startswith(path) for path in member.cover_paths):
                    errors.append(
                        FieldError(
                            f"team[{index}].user_id",
                            f"conflict of interest: {member.user.full_name} belongs to or is "
                            f"responsible for {unit.name} ({unit.code})",
                        )
                    )

    async def create_plan(self, data: schemas.PlanCreate) -> schemas.Plan:
        """A new draft plan with its team and one visit per target."""
        organiser = await self._organising_unit(data.unit_id)
        errors: list[FieldError] = []
        if data.period_start > data.period_end:
            errors.append(FieldError("period_end", "the period ends before it starts"))
        checklist = await self._check_checklist(data.checklist_id)
        members = await self._members(data.team, errors)
        units = await self._target_units(data.targets, data.period_start, data.period_end, errors)
        self._conflicts(members, data.targets, units, errors)
        if errors:
            raise Rejected(f"the plan is not valid: {errors[0].field}: {errors[0].message}", errors)
        plan = Plan(
            id=new_id(),
            kind=data.kind.value,
            status=PlanStatus.DRAFT.value,
            title=data.title.strip(),
            legal_basis=data.legal_basis,
            focus=list(data.focus),
            period_start=data.period_start,
            period_end=data.period_end,
            checklist_id=checklist.id,
            unit_id=organiser.id,
            created_by=self.principal.user_id,
        )
        self.session.add(plan)
        await self.session.flush()
        self.session.add_all(
            TeamMember(id=new_id(), plan_id=plan.id, user_id=m.user.id, role=m.role.value)
            for m in members
        )
        self.session.add_all(
            Visit(
                id=new_id(),
                plan_id=plan.id,
                unit_id=t.unit_id,
                window_start=t.window_start,
                window_end=t.window_end,
                status=VisitStatus.PLANNED.value,
            )
            for t in data.targets
        )
        checklist.frozen = True
        await self.session.flush()
        await self._audit(
            plan, "create", audit.created(_plan_snapshot(plan, data.team, data.targets))
        )
        return await self._plan_read(plan, seal.PlanView.whole())

    async def _audit(
        self,
        plan: Plan,
        action: str,
        changes: dict[str, Any],
        entity: str = "plan",
        entity_id: UUID | None = None,
    ) -> None:
        # Filed under the organising unit and tied to the plan: `audit.repository.readable` shows it
        # only to those who see the plan in full.
        await audit.record(
            self.session,
            actor_of(self.principal),
            entity,
            entity_id or plan.id,
            action,
            changes,
            unit_id=plan.unit_id,
            plan_id=plan.id,
        )

    async def _plan_for_change(self, plan_id: UUID, expected_version: int | None) -> Plan:
        plan, view = await self._visible_plan(plan_id)
        organiser_path = await self.session.scalar(select(Unit.path).where(Unit.id == plan.unit_id))
        if not view.full or not self.principal.covers(organiser_path, [Role.PLANNER]):
            raise Forbidden("only planners of the organising unit change a plan")
        check_version(plan.version, expected_version, "plan")
        return plan

    async def update_plan(
        self, plan_id: UUID, data: schemas.PlanUpdate, expected_version: int | None
    ) -> schemas.Plan:
        """Edit a draft freely; an approved plan only its team and targets (and wording)."""
        plan = await self._plan_for_change(plan_id, expected_version)
        status = plan.status
        if status in (PlanStatus.COMPLETED.value, PlanStatus.CANCELLED.value):
            raise InvalidTransition(status, "edit the plan", _PLAN_TRANSITIONS[status])
        if status != PlanStatus.DRAFT.value:
            locked = [
                name
                for name in ("kind", "period_start", "period_end", "checklist_id")
                if getattr(data, name) is not UNSET
                and getattr(data, name) != _value(getattr(plan, name))
            ]
            if locked:
                raise Conflict(
                    f"{', '.join(locked)} cannot change once the plan is {status}",
                    current_status=status,
                    fields=locked,
                )
        team_rows = list(
            (
                await self.session.scalars(select(TeamMember).where(TeamMember.plan_id == plan.id))
            ).all()
        )
        visits = list(
            (await self.session.scalars(select(Visit).where(Visit.plan_id == plan.id))).all()
        )
        before = _plan_snapshot(
            plan,
            [schemas.TeamMemberIn(m.user_id, TeamRole(m.role)) for m in team_rows],
            [
                schemas.TargetIn(v.unit_id, v.window_start, v.window_end)
                for v in visits
                if v.status != VisitStatus.CANCELLED.value
            ],
        )
        for name in ("kind", "title", "legal_basis", "focus", "period_start", "period_end"):
            value = getattr(data, name)
            if value is not UNSET:
                setattr(plan, name, _value(value))
        if data.checklist_id is not UNSET and data.checklist_id != plan.checklist_id:
            (await self._check_checklist(data.checklist_id)).frozen = True
            plan.checklist_id = data.checklist_id
        team = (
            data.team
            if data.team is not UNSET
            else [schemas.TeamMemberIn(m.user_id, TeamRole(m.role)) for m in team_rows]
        )
        active = [v for v in visits if v.status != VisitStatus.CANCELLED.value]
        targets = (
            data.targets
            if data.targets is not UNSET
            else [schemas.TargetIn(v.unit_id, v.window_start, v.window_end) for v in active]
        )
        errors: list[FieldError] = []
        if plan.period_start > plan.period_end:
            errors.append(FieldError("period_end", "the period ends before it starts"))
        members = await self._members(team, errors)
        units = await self._target_units(targets, plan.period_start, plan.period_end, errors)
        self._conflicts(members, targets, units, errors)
        if errors:
            raise Rejected(f"the plan is not valid: {errors[0].field}: {errors[0].message}", errors)
        if data.team is not UNSET:
            await self._replace_team(plan, team_rows, members)
        if data.targets is not UNSET:
            self._replace_targets(plan, visits, data.targets)
        after = _plan_snapshot(plan, team, targets)
        changes = audit.changes_between(before, after)
        if changes:
            plan.updated_at = datetime.now(UTC)
            await self.session.flush()
            await self._complete_if_done(plan)
            await self._audit(plan, "update", changes)
        return await self._plan_read(plan, seal.PlanView.whole())

    async def _replace_team(
        self, plan: Plan, rows: list[TeamMember], members: list[_Member]
    ) -> None:
        wanted = {m.user.id: m.role.value for m in members}
        for row in rows:
            if row.user_id not in wanted:
                await self.session.delete(row)
            elif row.role != wanted[row.user_id]:
                row.role = wanted[row.user_id]
        present = {row.user_id for row in rows}
        self.session.add_all(
            TeamMember(id=new_id(), plan_id=plan.id, user_id=user_id, role=role)
            for user_id, role in wanted.items()
            if user_id not in present
        )

    def _replace_targets(
        self, plan: Plan, visits: list[Visit], targets: Sequence[schemas.TargetIn]
    ) -> None:
        wanted = {t.unit_id: t for t in targets}
        now = datetime.now(UTC)
        for visit in visits:
            target = wanted.pop(visit.unit_id, None)
            if target is None:
                if visit.status == VisitStatus.PLANNED.value:
                    visit.status, visit.cancelled_at = VisitStatus.CANCELLED.value, now
                    visit.cancel_reason = "removed from the plan"
                elif visit.status != VisitStatus.CANCELLED.value:
                    raise Conflict(
                        "a visit that has started or ended cannot be removed from the plan",
                        visit_id=str(visit.id),
                        current_status=visit.status,
                    )
                continue
            if (target.window_start, target.window_end) != (visit.window_start, visit.window_end):
                if visit.status not in (VisitStatus.PLANNED.value, VisitStatus.CANCELLED.value):
                    raise Conflict(
                        "the window of a visit that has started cannot change",
                        visit_id=str(visit.id),
                        current_status=visit.status,
                    )
                visit.window_start, visit.window_end = target.window_start, target.window_end
            if visit.status == VisitStatus.CANCELLED.value and visit.checked_in_at is None:
                visit.status, visit.cancelled_at, visit.cancel_reason = (
                    VisitStatus.PLANNED.value,
                    None,
                    None,
                )
        self.session.add_all(
            Visit(
                id=new_id(),
                plan_id=plan.id,
                unit_id=t.unit_id,
                window_start=t.window_start,
                window_end=t.window_end,
                status=VisitStatus.PLANNED.value,
            )
            for t in wanted.values()
        )

    async def approve_plan(self, plan_id: UUID, expected_version: int | None) -> schemas.Plan:
        """draft → approved: scheduled plans become visible to the units they target."""
        plan = await self._plan_for_change(plan_id, expected_version)
        if plan.status != PlanStatus.DRAFT.value:
            raise InvalidTransition(plan.status, "approve", _PLAN_TRANSITIONS[plan.status])
        open_visits = await self.session.scalar(
            select(func.count())
            .select_from(Visit)
            .where(Visit.plan_id == plan.id, Visit.status != VisitStatus.CANCELLED.value)
        )
        if not open_visits:
            raise Rejected.field("targets", "a plan needs at least one target to be approved")
        plan.status = PlanStatus.APPROVED.value
        plan.approved_at, plan.approved_by = datetime.now(UTC), self.principal.user_id
        await self.session.flush()
        await self._audit(plan, "approve", {"status": {"before": "draft", "after": "approved"}})
        return await self._plan_read(plan, seal.PlanView.whole())

    async def cancel_plan(
        self, plan_id: UUID, data: schemas.Cancellation, expected_version: int | None
    ) -> schemas.Plan:
        """Cancel a plan that has not ended; its open visits are cancelled with it."""
        plan = await self._plan_for_change(plan_id, expected_version)
        if plan.status in (PlanStatus.COMPLETED.value, PlanStatus.CANCELLED.value):
            raise InvalidTransition(plan.status, "cancel", _PLAN_TRANSITIONS[plan.status])
        now = datetime.now(UTC)
        before = plan.status
        plan.status, plan.cancelled_at, plan.cancel_reason = (
            PlanStatus.CANCELLED.value,
            now,
            data.reason,
        )
        for visit in (
            await self.session.scalars(
                select(Visit).where(Visit.plan_id == plan.id, Visit.status.in_(_OPEN_VISITS))
            )
        ).all():
            visit.status, visit.cancelled_at, visit.cancel_reason = (
                VisitStatus.CANCELLED.value,
                now,
                data.reason,
            )
        await self.session.flush()
        await self._audit(
            plan,
            "cancel",
            {"status": {"before": before, "after": "cancelled"}, "reason": {"after": data.reason}},
        )
        return await self._plan_read(plan, seal.PlanView.whole())

    async def _complete_if_done(self, plan: Plan) -> None:
        if plan.status != PlanStatus.IN_PROGRESS.value:
            return
        still_open = await self.session.scalar(
            select(func.count())
            .select_from(Visit)
            .where(Visit.plan_id == plan.id, Visit.status.in_(_OPEN_VISITS))
        )
        if not still_open:
            plan.status = PlanStatus.COMPLETED.value
            plan.updated_at = datetime.now(UTC)
            await self.session.flush()
            await self._audit(
                plan, "complete", {"status": {"before": "in_progress", "after": "completed"}}
            )

    # --- on site -------------------------------------------------------------------------------

    async def visit_context(self, visit_id: UUID) -> tuple[Visit, Plan, TeamRole | None]:
        """A visit the caller may see, its plan, and the caller's role on the team (if any).

        For work that hangs off a visit (findings): NotFound when the visit is not visible. The
        plan and visit rows are locked until the transaction ends (see `_lock`).
        """
        visit, plan, _unit, _view = await self._visible_visit(visit_id)
        await self._lock(plan, visit)
        return visit, plan, await self._team_role(plan)

    async def _lock(self, plan: Plan, visit: Visit) -> None:
        """Lock the plan, then the visit, and reload both: work on site is decided on their
        current state. Without it, two check-ins of one plan would race to start it, and an
        answer could land after the conclusion that computed the score."""
        await lock(self.session, plan, visit)

    async def criterion_codes(self, plan: Plan) -> set[str]:
        """Every criterion code of the plan's checklist (to check a batch with one query)."""
        rows = await self.session.scalars(
            select(Criterion.code).where(Criterion.checklist_id == plan.checklist_id)
        )
        return set(rows)

    async def has_criterion(self, plan: Plan, code: str) -> bool:
        """Whether the plan's checklist has a criterion with this code."""
        found = await self.session.scalar(
            select(Criterion.id).where(
                Criterion.checklist_id == plan.checklist_id, Criterion.code == code
            )
        )
        return found is not None

    async def _team_role(self, plan: Plan) -> TeamRole | None:
        role = await self.session.scalar(
            select(TeamMember.role).where(
                TeamMember.plan_id == plan.id, TeamMember.user_id == self.principal.user_id
            )
        )
        return TeamRole(role) if role else None

    async def _visit_for_team(
        self, visit_id: UUID, expected_version: int | None, *, lead_only: bool = False
    ) -> tuple[Visit, Plan, Unit]:
        visit, plan, unit, _ = await self._visible_visit(visit_id)
        await self._lock(plan, visit)
        role = await self._team_role(plan)
        if role is None or (lead_only and role != TeamRole.LEAD):
            who = "the team lead" if lead_only else "the inspection team"
            raise Forbidden(f"only {who} may do this")
        check_version(visit.version, expected_version, "visit")
        return visit, plan, unit

    async def check_in(
        self, visit_id: UUID, data: schemas.CheckIn, expected_version: int | None
    ) -> schemas.Visit:
        """The team arrives: time and position on site; outside the window only with a reason."""
        visit, plan, unit = await self._visit_for_team(visit_id, expected_version)
        if visit.status != VisitStatus.PLANNED.value:
            raise InvalidTransition(visit.status, "check in", _VISIT_TRANSITIONS[visit.status])
        if plan.status not in (PlanStatus.APPROVED.value, PlanStatus.IN_PROGRESS.value):
            # The visit could be checked in; its plan is what stands in the way.
            raise Conflict(
                f"the plan is {plan.status}: its visits cannot be checked in",
                current_status=visit.status,
                plan_status=plan.status,
            )
        at = device_time(data.at, "at")
        local_day = at.astimezone(self.zone).date()
        outside = not (visit.window_start <= local_day <= visit.window_end)
        if outside and not (data.reason and data.reason.strip()):
            raise Rejected.field(
                "reason",
                f"{local_day} is outside the visit window "
                f"{visit.window_start}..{visit.window_end}; give a reason",
            )
        visit.status = VisitStatus.CHECKED_IN.value
        visit.checked_in_at, visit.checked_in_by = at, self.principal.user_id
        visit.check_in_lat, visit.check_in_lon = data.position.lat, data.position.lon
        visit.check_in_accuracy_m = data.position.accuracy_m
        visit.check_in_reason = data.reason.strip() if outside and data.reason else None
        if plan.status == PlanStatus.APPROVED.value:
            plan.status = PlanStatus.IN_PROGRESS.value
            await self._audit(
                plan, "start", {"status": {"before": "approved", "after": "in_progress"}}
            )
        await self.session.flush()
        await self._audit(
            plan,
            "check_in",
            {
                "status": {"before": "planned", "after": "checked_in"},
                "checked_in_at": {"after": audit.jsonable(at)},
                "position": {"after": {"lat": data.position.lat, "lon": data.position.lon}},
                **({"reason": {"after": visit.check_in_reason}} if visit.check_in_reason else {}),
            },
            entity="visit",
            entity_id=visit.id,
        )
        return await self._visit_out(visit, plan, unit, seal.PlanView.whole())

    async def check_out(
        self, visit_id: UUID, data: schemas.CheckOut, expected_version: int | None
    ) -> schemas.Visit:
        """The team leaves the site."""
        visit, plan, unit = await self._visit_for_team(visit_id, expected_version)
        if visit.status != VisitStatus.CHECKED_IN.value:
            raise InvalidTransition(visit.status, "check out", _VISIT_TRANSITIONS[visit.status])
        at = device_time(data.at, "at")
        if visit.checked_in_at and at < visit.checked_in_at:
            raise Rejected.field("at", "is before the check-in")
        visit.status, visit.checked_out_at, visit.checked_out_by = (
            VisitStatus.CHECKED_OUT.value,
            at,
            self.principal.user_id,
        )
        await self.session.flush()
        await self._audit(
            plan,
            "check_out",
            {"status": {"before": "checked_in", "after": "checked_out"}},
            entity="visit",
            entity_id=visit.id,
        )
        return await self._visit_out(visit, plan, unit, seal.PlanView.whole())

    async def conclude(
        self, visit_id: UUID, data: schemas.Conclusion, expected_version: int | None
    ) -> schemas.Visit:
        """The lead concludes the visit; the checklist score is computed and stored."""
        visit, plan, unit = await self._visit_for_team(visit_id, expected_version, lead_only=True)
        if visit.status not in ON_SITE:
            raise InvalidTransition(visit.status, "conclude", _VISIT_TRANSITIONS[visit.status])
        answers = (
            await self.session.execute(
                select(ChecklistResponse.result, Criterion.weight)
                .join(
                    Criterion,
                    (Criterion.code == ChecklistResponse.criterion_code)
                    & (Criterion.checklist_id == plan.checklist_id),
                )
                .where(ChecklistResponse.visit_id == visit.id)
            )
        ).tuples()
        before = visit.status
        visit.score = weighted_score(list(answers))
        visit.status, visit.conclusion = VisitStatus.CONCLUDED.value, data.conclusion.strip()
        visit.concluded_at, visit.concluded_by = datetime.now(UTC), self.principal.user_id
        await self.session.flush()
        await self._audit(
            plan,
            "conclude",
            {
                "status": {"before": before, "after": "concluded"},
                "score": {"after": visit.score},
                "conclusion": {"after": visit.conclusion},
            },
            entity="visit",
            entity_id=visit.id,
        )
        await self._complete_if_done(plan)
        return await self._visit_out(visit, plan, unit, seal.PlanView.whole())

    async def get_response(self, visit_id: UUID, code: str) -> schemas.Response:
        """The stored answer to one criterion at a visible visit."""
        visit, _plan, _unit, _view = await self._visible_visit(visit_id)
        response = await self.session.scalar(
            select(ChecklistResponse).where(
                ChecklistResponse.visit_id == visit.id, ChecklistResponse.criterion_code == code
            )
        )
        if response is None:
            raise NotFound(f"no answer to {code!r} at this visit")
        return _response_read(response)

    async def put_response(
        self, visit_id: UUID, code: str, data: schemas.ResponseIn, expected_version: int | None
    ) -> tuple[schemas.Response, Literal["created", "updated", "unchanged"]]:
        """Answer one criterion (idempotent); returns the answer and what happened. Changing an
        answer needs its current version (`If-Match`): 428 without, 412 when stale."""
        visit, plan, role = await self.visit_context(visit_id)
        if role is None:
            raise Forbidden("only the inspection team answers the checklist")
        if visit.status not in ON_SITE:
            raise InvalidTransition(
                visit.status, "answer the checklist", _VISIT_TRANSITIONS[visit.status]
            )
        if not await self.has_criterion(plan, code):
            raise NotFound(f"the visit's checklist has no criterion {code!r}")
        response = await self.session.scalar(
            select(ChecklistResponse).where(
                ChecklistResponse.visit_id == visit.id, ChecklistResponse.criterion_code == code
            )
        )
        if response is None:
            response = ChecklistResponse(
                id=new_id(),
                visit_id=visit.id,
                criterion_code=code,
                result=data.result.value,
                note=data.note,
                answered_by=self.principal.user_id,
            )
            self.session.add(response)
            await self.session.flush()
            await self._audit_answer(plan, visit, code, None, data)
            return _response_read(response), "created"
        if (response.result, response.note) == (data.result.value, data.note):
            return _response_read(response), "unchanged"  # a replay: nothing changes
        # As for findings: changing a stored answer needs the version it was changed from, or a
        # teammate's different answer would be overwritten unseen.
        check_version(response.version, expected_version, "response")
        before = {"result": response.result, "note": response.note}
        response.result, response.note, response.answered_by = (
            data.result.value,
            data.note,
            self.principal.user_id,
        )
        response.updated_at = datetime.now(UTC)
        await self.session.flush()
        await self._audit_answer(plan, visit, code, before, data)
        return _response_read(response), "updated"

    async def _audit_answer(
        self,
        plan: Plan,
        visit: Visit,
        code: str,
        before: dict[str, Any] | None,
        data: schemas.ResponseIn,
    ) -> None:
        after = {"result": data.result.value, "note": data.note}
        await self._audit(
            plan,
            "answer",
            {code: {"before": before, "after": after}},
            entity="visit",
            entity_id=visit.id,
        )


def _value(value: Any) -> Any:
    return value.value if hasattr(value, "value") else value


def _plan_snapshot(
    plan: Plan, team: Sequence[schemas.TeamMemberIn], targets: Sequence[schemas.TargetIn]
) -> dict[str, Any]:
    return {
        "kind": plan.kind,
        "title": plan.title,
        "legal_basis": plan.legal_basis,
        "focus": list(plan.focus),
        "period_start": plan.period_start,
        "period_end": plan.period_end,
        "checklist_id": plan.checklist_id,
        "team": sorted([{"user_id": str(m.user_id), "role": m.role.value} for m in team], key=str),
        "targets": sorted(
            [
                {
                    "unit_id": str(t.unit_id),
                    "window_start": t.window_start.isoformat(),
                    "window_end": t.window_end.isoformat(),
                }
                for t in targets
            ],
            key=str,
        ),
    }


def _response_read(r: ChecklistResponse) -> schemas.Response:
    return schemas.Response(
        r.visit_id,
        r.criterion_code,
        ResponseResult(r.result),
        r.note,
        r.answered_by,
        r.version,
        r.updated_at,
    )
