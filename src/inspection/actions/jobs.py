"""The jobs of corrective actions: escalations of overdue actions and due-soon reminders, each
raised exactly once — the action row remembers what was raised (`escalated_level`,
`reminded_for`) and every notification has a unique key — so running twice, or two runners at
once, sends nothing twice. Run by `inspection jobs run` (`inspection.jobs`)."""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID

from sqlalchemy import select

from inspection.access import scopes
from inspection.access.principal import Principal
from inspection.actions.models import OWING_STATUSES, CorrectiveAction
from inspection.actions.repository import overdue_clause
from inspection.actions.rules import days_overdue, escalation_level, local_today
from inspection.actions.service import ActionService
from inspection.audit.recorder import SYSTEM
from inspection.db.engine import Database
from inspection.db.session import transaction
from inspection.notifications import repository as notifications
from inspection.settings import Settings
from inspection.units.models import Unit
from inspection.units.roles import Role

SYSTEM_PRINCIPAL = Principal(UUID(int=0), "system", "system", None, ())


def _level_title(level: int, days: int) -> str:
    return f"Quá hạn {days} ngày: cảnh báo cấp {level}"


async def escalate(database: Database, settings: Settings, now: datetime) -> int:
    """Raise each escalation level an overdue action has reached and not yet raised; returns
    how many were raised."""
    raised = 0
    today = local_today(now, settings.zone)
    first = timedelta(days=settings.escalation_days[0])
    async with database.read_session() as session:
        candidates = list(
            await session.scalars(
                select(CorrectiveAction.id).where(
                    overdue_clause(today), CorrectiveAction.due_date <= today - first
                )
            )
        )
    for action_id in candidates:
        async with transaction(database) as session:
            action = await session.get(CorrectiveAction, action_id, with_for_update=True)
            if action is None or action.status not in OWING_STATUSES:
                continue
            days = days_overdue(action, today)
            level = escalation_level(days, settings.escalation_days)
            if level <= action.escalated_level:
                continue
            service = ActionService(session, SYSTEM_PRINCIPAL, settings, now)
            ctx = await service.context_of(action)
            for step in range(action.escalated_level + 1, level + 1):
                recipients = await _escalation_recipients(service, action, step)
                await service.record_event(
                    ctx,
                    "escalated",
                    {"level": step, "days_overdue": days, "due_date": action.due_date.isoformat()},
                    notify=recipients,
                    title=_level_title(step, days),
                    actor=SYSTEM,
                    key=f"escalation:{action.id}:{action.due_date.isoformat()}:{step}",
                )
                raised += 1
            action.escalated_level = level
    return raised


async def _escalation_recipients(
    service: ActionService, action: CorrectiveAction, level: int
) -> set[UUID]:
    """Level 1: the assignee. Level 2: the assignee's superiors (the heads of
    `access.scopes.superior_unit`) and the planners over that unit. Level 3 and beyond: the leaders
    over the action's unit."""
    if level == 1:
        return {action.assignee_id}
    if level == 2:
        unit = await service.session.get(Unit, action.unit_id)
        assert unit is not None
        superior = await service.session.scalar(
            select(scopes.superior_unit(unit.path, action.assignee_id))
        )
        if superior is None:  # the assignee heads the top of the tree: the planners decide
            return await service.holders(Role.PLANNER, action.unit_id)
        heads = await service.holders(Role.UNIT_HEAD, superior, exact=True)
        return heads | await service.holders(Role.PLANNER, superior)
    return await service.holders(Role.LEADER, action.unit_id)


async def remind(database: Database, settings: Settings, now: datetime) -> int:
    """Tell the assignee once when the due date is `due_soon_days` away or less; returns how
    many were told."""
    reminded = 0
    today = local_today(now, settings.zone)
    horizon = today + timedelta(days=settings.due_soon_days)
    async with transaction(database) as session:
        actions = list(
            await session.scalars(
                select(CorrectiveAction)
                .where(
                    CorrectiveAction.status.in_(OWING_STATUSES),
                    CorrectiveAction.due_date >= today,
                    CorrectiveAction.due_date <= horizon,
                    (CorrectiveAction.reminded_for.is_(None))
                    | (CorrectiveAction.reminded_for != CorrectiveAction.due_date),
                )
                .with_for_update()
            )
        )
        for action in actions:
            left = (action.due_date - today).days
            await notifications.announce(
                session,
                settings,
                key=f"due_soon:{action.id}:{action.due_date.isoformat()}",
                kind="due_soon",
                title=f"Còn {left} ngày đến hạn khắc phục ({action.due_date:%d/%m/%Y})",
                recipients={action.assignee_id},
                data={
                    "action_id": str(action.id),
                    "finding_id": str(action.finding_id),
                    "unit_id": str(action.unit_id),
                    "due_date": action.due_date.isoformat(),
                    "days_left": left,
                },
                action_id=action.id,
                now=now,
            )
            action.reminded_for = action.due_date
            reminded += 1
    return reminded
