"""Rules of corrective actions: who creates and moves them, their state machine, deadlines,
extensions, the timeline, and what each step announces.

Every transition locks the action (and checks `If-Match`), writes a timeline event, an audit
entry and its notifications in the request's transaction, and keeps the finding's status in step
(closed once all its actions are closed or cancelled, reopened otherwise).

Time: due dates are calendar dates in the configured zone and fall due at the end of that day;
"today" is computed once per request from the injected clock, and the same value drives the SQL
filters (`overdue=true`) and the computed fields, so lists, counts and details always agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from inspection.access import scopes
from inspection.access.principal import Principal
from inspection.actions import repository as actions_repository
from inspection.actions import schemas
from inspection.actions.models import (
    OPEN_STATUSES,
    OWING_STATUSES,
    ActionEvent,
    ActionStatus,
    CorrectiveAction,
    Priority,
)
from inspection.actions.repository import overdue_clause
from inspection.actions.rules import days_overdue, escalation_level, local_today
from inspection.audit import recorder as audit
from inspection.audit.recorder import actor_of
from inspection.db.session import lock as lock_rows
from inspection.errors import Conflict, Forbidden, InvalidTransition, NotFound, Rejected
from inspection.evidence.models import Evidence
from inspection.findings import repository as findings_repository
from inspection.findings.models import Finding, FindingStatus
from inspection.kit.concurrency import check_version
from inspection.kit.pagination import Page, SortKey, keyset_page
from inspection.notifications import repository as notifications
from inspection.plans.models import Criterion, Plan, TeamMember, TeamRole
from inspection.settings import Settings
from inspection.units.models import Grant, Unit, User
from inspection.units.roles import Role
from inspection.units.tree import in_subtree

_TRANSITIONS: dict[str, list[str]] = {
    ActionStatus.OPEN.value: ["start", "extension", "cancel"],
    ActionStatus.IN_PROGRESS.value: ["respond", "extension", "cancel"],
    ActionStatus.SUBMITTED.value: ["verify", "cancel"],
    ActionStatus.CLOSED.value: [],
    ActionStatus.CANCELLED.value: [],
}


def allowed(action: CorrectiveAction) -> list[str]:
    """The transitions the action's status allows (whoever may make them)."""
    moves = list(_TRANSITIONS[action.status])
    if action.pending_due_date is not None and action.status in OPEN_STATUSES:
        moves.append("extension/decide")
    return moves


@dataclass(frozen=True, slots=True)
class _Context:
    action: CorrectiveAction
    finding: Finding
    plan: Plan


class ActionService:
    """Corrective actions as the signed-in user may see and move them."""

    def __init__(
        self, session: AsyncSession, principal: Principal, settings: Settings, now: datetime
    ) -> None:
        self.session = session
        self.principal = principal
        self.settings = settings
        self.now = now
        self.today = local_today(now, settings.zone)

    # --- reading ---------------------------------------------------------------------------

    def shape(self, action: CorrectiveAction) -> schemas.Action:
        """The API shape, with the derived deadline fields."""
        days = days_overdue(action, self.today)
        pending = None
        if action.pending_due_date is not None and action.pending_reason is not None:
            pending = schemas.PendingExtension(action.pending_due_date, action.pending_reason)
        return schemas.Action(
            id=action.id,
            finding_id=action.finding_id,
            visit_id=action.visit_id,
            plan_id=action.plan_id,
            unit_id=action.unit_id,
            assignee_id=action.assignee_id,
            requirement=action.requirement,
            priority=Priority(action.priority),
            due_date=action.due_date,
            original_due_date=action.original_due_date,
            status=ActionStatus(action.status),
            overdue=days > 0,
            days_overdue=days,
            escalation_level=escalation_level(days, self.settings.escalation_days),
            rounds=action.rounds,
            extensions_approved=action.extensions_approved,
            allowed_transitions=allowed(action),
            created_by=action.created_by,
            created_at=action.created_at,
            updated_at=action.updated_at,
            version=action.version,
            pending_extension=pending,
            response=action.response,
            submitted_at=action.submitted_at,
            closed_at=action.closed_at,
            cancelled_at=action.cancelled_at,
            cancel_reason=action.cancel_reason,
        )

    async def _visible(self, action_id: UUID, *, lock: bool = False) -> CorrectiveAction:
        statement = select(CorrectiveAction).where(
            CorrectiveAction.id == action_id, actions_repository.readable(self.principal)
        )
        action = await self.session.scalar(statement)
        if action is None:
            raise NotFound(f"corrective action {action_id} not found")
        if lock:  # transitions of one action are decided one at a time
            await lock_rows(self.session, action)
        return action

    async def get(self, action_id: UUID) -> schemas.Action:
        """One action with its timeline, oldest event first."""
        action = await self._visible(action_id)
        events = await self.session.scalars(
            select(ActionEvent)
            .where(ActionEvent.action_id == action_id)
            .order_by(ActionEvent.at, ActionEvent.id)
        )
        result = self.shape(action)
        result.timeline = [
            schemas.Event(e.id, e.kind, e.at, e.actor_id, e.actor, e.data) for e in events
        ]
        return result

    async def list_actions(
        self,
        *,
        finding: UUID | None,
        unit: UUID | None,
        under: UUID | None,
        status: ActionStatus | None,
        overdue: bool | None,
        assignee_me: bool,
        due_before: date | None,
        cursor: str | None,
        limit: int,
    ) -> Page[schemas.Action]:
        """Actions the user may see, soonest due first."""
        statement = select(CorrectiveAction).where(actions_repository.readable(self.principal))
        if finding is not None:
            statement = statement.where(CorrectiveAction.finding_id == finding)
        if unit is not None:
            statement = statement.where(CorrectiveAction.unit_id == unit)
        if under is not None:
            statement = statement.where(
                await in_subtree(self.session, CorrectiveAction.unit_id, under)
            )
        if status is not None:
            statement = statement.where(CorrectiveAction.status == status.value)
        if overdue is not None:
            clause = overdue_clause(self.today)
            statement = statement.where(clause if overdue else ~clause)
        if assignee_me:
            statement = statement.where(CorrectiveAction.assignee_id == self.principal.user_id)
        if due_before is not None:
            statement = statement.where(CorrectiveAction.due_date < due_before)
        keys = [SortKey(CorrectiveAction.due_date), SortKey(CorrectiveAction.id)]
        rows, next_cursor = await keyset_page(self.session, statement, keys, cursor, limit)
        return Page(items=[self.shape(a) for a in rows], next_cursor=next_cursor)

    # --- who is who ------------------------------------------------------------------------

    def _is_planner_for(self, unit_path: str) -> bool:
        paths = self.principal.scope_paths([Role.PLANNER])
        return paths is None or any(unit_path.startswith(p) for p in paths)

    async def _unit(self, unit_id: UUID) -> Unit:
        unit = await self.session.get(Unit, unit_id)
        if unit is None:
            raise NotFound(f"unit {unit_id} not found")
        return unit

    async def _team_role(self, plan_id: UUID) -> TeamRole | None:
        role = await self.session.scalar(
            select(TeamMember.role).where(
                TeamMember.plan_id == plan_id, TeamMember.user_id == self.principal.user_id
            )
        )
        return TeamRole(role) if role else None

    async def _may_verify(self, plan: Plan) -> bool:
        """An inspector of the original team, or a planner over the plan's unit."""
        if await self._team_role(plan.id) is not None:
            return True
        return self._is_planner_for((await self._unit(plan.unit_id)).path)

    async def _require_planner(self, plan: Plan, what: str) -> None:
        if not self._is_planner_for((await self._unit(plan.unit_id)).path):
            raise Forbidden(f"only a planner over the plan's unit may {what}")

    def _require_assignee(self, action: CorrectiveAction, what: str) -> None:
        if action.assignee_id != self.principal.user_id:
            raise Forbidden(f"only the assignee may {what}")

    async def holders(self, role: Role, unit_id: UUID, *, exact: bool = False) -> set[UUID]:
        """Active users holding `role` on the unit (or, unless `exact`, above it / globally)."""
        unit = await self._unit(unit_id)
        if exact:
            covering: ColumnElement[bool] = Grant.unit_id == unit_id
        else:
            covering = or_(
                Grant.unit_id.is_(None),
                Grant.unit_id.in_(select(Unit.id).where(literal(unit.path).startswith(Unit.path))),
            )
        rows = await self.session.scalars(
            select(Grant.user_id)
            .join(User, User.id == Grant.user_id)
            .where(Grant.role == role.value, covering, User.is_active.is_(True))
        )
        return set(rows)

    # --- creating --------------------------------------------------------------------------

    async def create(self, finding_id: UUID, data: schemas.ActionCreate) -> schemas.Action:
        """A new action on a submitted finding (the team lead or a planner)."""
        finding = await self.session.scalar(
            select(Finding).where(
                Finding.id == finding_id, findings_repository.readable(self.principal)
            )
        )
        if finding is None:
            raise NotFound(f"finding {finding_id} not found")
        plan = await self.session.get(Plan, finding.plan_id)
        assert plan is not None
        await lock_rows(self.session, plan, finding)
        lead = await self._team_role(plan.id) == TeamRole.LEAD
        if not lead and not self._is_planner_for((await self._unit(plan.unit_id)).path):
            raise Forbidden("only the team lead or a planner assigns corrective actions")
        if finding.status not in (FindingStatus.SUBMITTED.value, FindingStatus.CLOSED.value):
            raise InvalidTransition(finding.status, "assign corrective actions")
        visited = await self._unit(finding.unit_id)
        unit = await self.session.get(Unit, data.unit_id)
        if unit is None or not unit.path.startswith(visited.path):
            raise Rejected.field("unit_id", "must be the inspected unit or a unit inside it")
        assignee = await self.session.scalar(
            select(User.id).where(User.id == data.assignee_id, scopes.heads_concerned(unit.path))
        )
        if assignee is None:
            raise Rejected.field(
                "assignee_id",
                "must be an active head of the unit concerned: the nearest unit at or above "
                "the responsible unit that has a unit head",
            )
        if data.due_date < self.today:
            raise Rejected.field("due_date", "is in the past")
        action = CorrectiveAction(
            finding_id=finding.id,
            visit_id=finding.visit_id,
            plan_id=plan.id,
            unit_id=unit.id,
            assignee_id=data.assignee_id,
            requirement=data.requirement.strip(),
            priority=data.priority.value,
            due_date=data.due_date,
            original_due_date=data.due_date,
            status=ActionStatus.OPEN.value,
            rounds=0,
            extensions_approved=0,
            escalated_level=0,
            created_by=self.principal.user_id,
            # On the service's clock, as its closing time is: the days it took to close
            # (reports) are then measured on one clock.
            created_at=self.now,
            updated_at=self.now,
        )
        self.session.add(action)
        await self.session.flush()
        ctx = _Context(action, finding, plan)
        await self.record_event(
            ctx,
            "created",
            {
                "requirement": action.requirement,
                "unit_id": str(unit.id),
                "assignee_id": str(data.assignee_id),
                "due_date": data.due_date.isoformat(),
                "priority": action.priority,
            },
            notify={data.assignee_id},
            title=f"Yêu cầu khắc phục mới, hạn {data.due_date:%d/%m/%Y}",
        )
        await self._sync_finding(finding, plan)
        return self.shape(action)

    # --- transitions -----------------------------------------------------------------------

    async def _context(self, action_id: UUID) -> _Context:
        return await self.context_of(await self._visible(action_id, lock=True))

    def _check(self, ctx: _Context, expected_version: int | None, move: str) -> None:
        """Version first (428/412), then whether the status allows the move (409)."""
        check_version(ctx.action.version, expected_version, "corrective action")
        if move not in allowed(ctx.action):
            raise InvalidTransition(ctx.action.status, move, allowed(ctx.action))

    async def start(self, action_id: UUID, expected_version: int | None) -> schemas.Action:
        """The assignee starts work."""
        ctx = await self._context(action_id)
        self._require_assignee(ctx.action, "start the action")
        self._check(ctx, expected_version, "start")
        ctx.action.status = ActionStatus.IN_PROGRESS.value
        await self.record_event(
            ctx, "started", {}, notify={ctx.action.created_by}, title="Đơn vị đã bắt đầu khắc phục"
        )
        return self.shape(ctx.action)

    async def respond(
        self, action_id: UUID, data: schemas.Response, expected_version: int | None
    ) -> schemas.Action:
        """The assignee reports what was done; evidence when the criterion requires it."""
        ctx = await self._context(action_id)
        self._require_assignee(ctx.action, "respond")
        self._check(ctx, expected_version, "respond")
        evidence_ids = list(dict.fromkeys(data.evidence_ids))
        if evidence_ids:
            found = set(
                await self.session.scalars(
                    select(Evidence.id).where(
                        Evidence.id.in_(evidence_ids), Evidence.action_id == ctx.action.id
                    )
                )
            )
            missing = [str(e) for e in evidence_ids if e not in found]
            if missing:
                raise Rejected.field(
                    "evidence_ids", f"not evidence of this action: {', '.join(missing)}"
                )
        elif await self._evidence_required(ctx):
            raise Rejected.field(
                "evidence_ids",
                "the criterion requires evidence: upload it to the action first "
                "(PUT /api/v1/actions/{id}/evidence/{evidence_id})",
            )
        action = ctx.action
        action.status = ActionStatus.SUBMITTED.value
        action.response = data.text.strip()
        action.submitted_at = self.now
        await self.record_event(
            ctx,
            "responded",
            {
                "text": action.response,
                "evidence_ids": [str(e) for e in evidence_ids],
                "round": action.rounds + 1,
            },
            notify=await self._verifiers(ctx),
            title="Đơn vị đã báo cáo kết quả khắc phục",
        )
        return self.shape(action)

    async def _evidence_required(self, ctx: _Context) -> bool:
        code = ctx.finding.criterion_code
        if code is None:
            return False
        required = await self.session.scalar(
            select(Criterion.evidence_required).where(
                Criterion.checklist_id == ctx.plan.checklist_id, Criterion.code == code
            )
        )
        return bool(required)

    async def _verifiers(self, ctx: _Context) -> set[UUID]:
        team = set(
            await self.session.scalars(
                select(TeamMember.user_id).where(TeamMember.plan_id == ctx.plan.id)
            )
        )
        return team | {ctx.action.created_by}

    async def verify(
        self, action_id: UUID, data: schemas.Verification, expected_version: int | None
    ) -> schemas.Action:
        """Accepted: closed. Returned with a reason: back to in progress, one more round."""
        ctx = await self._context(action_id)
        if not await self._may_verify(ctx.plan):
            raise Forbidden("only an inspector of the original team or a planner verifies")
        self._check(ctx, expected_version, "verify")
        action = ctx.action
        if data.outcome == "returned":
            if not data.reason or not data.reason.strip():
                raise Rejected.field("reason", "a returned response needs a reason")
            action.status = ActionStatus.IN_PROGRESS.value
            action.rounds += 1
            details = {"outcome": "returned", "reason": data.reason.strip(), "round": action.rounds}
            title = "Kết quả khắc phục bị trả lại"
        else:
            action.status = ActionStatus.CLOSED.value
            action.closed_at = self.now
            details = {"outcome": "accepted", "reason": (data.reason or "").strip() or None}
            title = "Kết quả khắc phục đã được chấp nhận"
        await self.record_event(ctx, "verified", details, notify={action.assignee_id}, title=title)
        await self._sync_finding(ctx.finding, ctx.plan)
        return self.shape(action)

    async def request_extension(
        self, action_id: UUID, data: schemas.ExtensionRequest, expected_version: int | None
    ) -> schemas.Action:
        """The assignee asks for a later due date; the clock keeps running until a decision."""
        ctx = await self._context(action_id)
        self._require_assignee(ctx.action, "ask for an extension")
        self._check(ctx, expected_version, "extension")
        action = ctx.action
        if action.pending_due_date is not None:
            raise Conflict("an extension request is already waiting for a decision")
        if action.extensions_approved >= self.settings.max_extensions:
            raise Conflict(
                f"at most {self.settings.max_extensions} extensions may be approved "
                "(INSPECTION_MAX_EXTENSIONS)",
                extensions_approved=action.extensions_approved,
            )
        if data.due_date <= action.due_date:
            raise Rejected.field("due_date", "must be later than the current due date")
        action.pending_due_date, action.pending_reason = data.due_date, data.reason.strip()
        planners = await self.holders(Role.PLANNER, ctx.plan.unit_id)
        await self.record_event(
            ctx,
            "extension_requested",
            {
                "due_date": data.due_date.isoformat(),
                "reason": action.pending_reason,
                "current_due_date": action.due_date.isoformat(),
            },
            notify=planners | {action.created_by},
            title=f"Đề nghị gia hạn đến {data.due_date:%d/%m/%Y}",
        )
        return self.shape(action)

    async def decide_extension(
        self, action_id: UUID, data: schemas.ExtensionDecision, expected_version: int | None
    ) -> schemas.Action:
        """A planner approves (the due date moves; the old one stays in the timeline) or refuses."""
        ctx = await self._context(action_id)
        await self._require_planner(ctx.plan, "decide on extensions")
        self._check(ctx, expected_version, "extension/decide")
        action = ctx.action
        assert action.pending_due_date is not None
        details: dict[str, Any] = {
            "approved": data.approve,
            "requested_due_date": action.pending_due_date.isoformat(),
            "note": data.note,
        }
        if data.approve:
            if action.extensions_approved >= self.settings.max_extensions:
                raise Conflict(f"at most {self.settings.max_extensions} extensions may be approved")
            details["previous_due_date"] = action.due_date.isoformat()
            action.due_date = action.pending_due_date
            action.extensions_approved += 1
            # A new deadline re-arms escalation from its own overdue days.
            action.escalated_level = 0
        action.pending_due_date, action.pending_reason = None, None
        await self.record_event(
            ctx,
            "extension_decided",
            details,
            notify={action.assignee_id},
            title="Đề nghị gia hạn được chấp thuận"
            if data.approve
            else "Đề nghị gia hạn bị từ chối",
        )
        return self.shape(action)

    async def cancel(
        self, action_id: UUID, data: schemas.Cancellation, expected_version: int | None
    ) -> schemas.Action:
        """A planner cancels an action that is no longer needed."""
        ctx = await self._context(action_id)
        await self._require_planner(ctx.plan, "cancel corrective actions")
        self._check(ctx, expected_version, "cancel")
        action = ctx.action
        action.status = ActionStatus.CANCELLED.value
        action.cancelled_at, action.cancel_reason = self.now, data.reason.strip()
        action.pending_due_date, action.pending_reason = None, None
        await self.record_event(
            ctx,
            "cancelled",
            {"reason": action.cancel_reason},
            notify={action.assignee_id},
            title="Yêu cầu khắc phục đã bị huỷ",
        )
        await self._sync_finding(ctx.finding, ctx.plan)
        return self.shape(action)

    async def comment(self, action_id: UUID, data: schemas.CommentIn) -> schemas.Event:
        """Anyone who sees the action may comment; the assignee and its author are told."""
        action = await self._visible(action_id)
        event = await self.record_event(
            await self.context_of(action),
            "comment",
            {"text": data.text.strip()},
            notify={action.assignee_id, action.created_by},
            title="Ý kiến mới về yêu cầu khắc phục",
            audited=False,
            changes_action=False,
        )
        return schemas.Event(
            event.id, event.kind, event.at, event.actor_id, event.actor, event.data
        )

    # --- evidence of a response ------------------------------------------------------------

    async def lock_for_evidence(self, action_id: UUID) -> tuple[UUID, UUID]:
        """The action's plan unit and plan, if the caller may attach evidence to it now: the
        assignee, before the response is submitted."""
        action = await self._visible(action_id, lock=True)
        self._require_assignee(action, "attach evidence")
        if action.status not in OWING_STATUSES:
            raise InvalidTransition(action.status, "add evidence", allowed(action))
        plan = await self.session.get(Plan, action.plan_id)
        assert plan is not None
        return plan.unit_id, plan.id

    # --- bookkeeping -----------------------------------------------------------------------

    async def context_of(self, action: CorrectiveAction) -> _Context:
        """The action with its finding and plan (for jobs that already hold the action)."""
        finding = await self.session.get(Finding, action.finding_id)
        plan = await self.session.get(Plan, action.plan_id)
        assert finding is not None
        assert plan is not None
        return _Context(action, finding, plan)

    async def record_event(
        self,
        ctx: _Context,
        kind: str,
        details: dict[str, Any],
        *,
        notify: set[UUID],
        title: str,
        audited: bool = True,
        actor: audit.Actor | None = None,
        key: str | None = None,
        changes_action: bool = True,
    ) -> ActionEvent:
        """The timeline event, its audit entry and its announcement, in this transaction.

        An event that `changes_action` touches the action row (its `updated_at`, hence its
        version and ETag); a comment does not, so comments never race a transition's `If-Match`
        nor each other."""
        who = actor or actor_of(self.principal)
        action = ctx.action
        if changes_action:
            action.updated_at = self.now
        event = ActionEvent(
            action_id=action.id,
            kind=kind,
            at=self.now,
            actor_id=who.id,
            actor=who.name,
            data=details,
        )
        self.session.add(event)
        await self.session.flush()
        if audited:
            await audit.record(
                self.session,
                who,
                "corrective_action",
                action.id,
                kind,
                audit.jsonable(details) | {"status": action.status},
                unit_id=ctx.plan.unit_id,
                plan_id=ctx.plan.id,
            )
        await notifications.announce(
            self.session,
            self.settings,
            key=key or f"event:{event.id}",
            kind=kind,
            title=title,
            recipients=notify - ({who.id} if who.id else set()),
            data={
                "action_id": str(action.id),
                "finding_id": str(action.finding_id),
                "unit_id": str(action.unit_id),
                "status": action.status,
                "actor": who.name,
                **audit.jsonable(details),
            },
            action_id=action.id,
            now=self.now,
        )
        return event

    async def _sync_finding(self, finding: Finding, plan: Plan) -> None:
        """Closed once every action is closed or cancelled; reopened when one is open again."""
        still_open = await self.session.scalar(
            select(func.count())
            .select_from(CorrectiveAction)
            .where(
                CorrectiveAction.finding_id == finding.id,
                CorrectiveAction.status.in_(OPEN_STATUSES),
            )
        )
        before = finding.status
        if still_open == 0 and before == FindingStatus.SUBMITTED.value:
            finding.status = FindingStatus.CLOSED.value
        elif still_open and before == FindingStatus.CLOSED.value:
            finding.status = FindingStatus.SUBMITTED.value
        if finding.status != before:
            finding.updated_at = self.now
            await self.session.flush()
            await audit.record(
                self.session,
                actor_of(self.principal),
                "finding",
                finding.id,
                "close" if finding.status == FindingStatus.CLOSED.value else "reopen",
                {"status": {"before": before, "after": finding.status}},
                unit_id=plan.unit_id,
                plan_id=plan.id,
            )
