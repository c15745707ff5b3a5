"""`inspection jobs run`: escalations, due-soon reminders and webhook deliveries.

Meant for cron or any scheduler, as often as you like (every 5 to 15 minutes is typical): each
escalation level and each reminder is raised exactly once — the action row remembers what was
raised (`escalated_level`, `reminded_for`) and every notification has a unique key — so running
twice, or two runners at once, sends nothing twice. Webhook deliveries are claimed with a lease
before the HTTP call, so two runners never post the same delivery at the same time, and no
database transaction stays open while a receiver answers.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

import httpx
import msgspec
from sqlalchemy import select, update

from inspection import access
from inspection.access import Principal
from inspection.actions.models import OWING_STATUSES, CorrectiveAction
from inspection.actions.service import (
    ActionService,
    days_overdue,
    escalation_level,
    local_today,
    overdue_clause,
)
from inspection.audit.service import SYSTEM
from inspection.db.engine import Database
from inspection.db.session import transaction
from inspection.notifications.models import WebhookDelivery
from inspection.notifications.service import announce
from inspection.settings import Settings
from inspection.units.models import Role, Unit

log = logging.getLogger("inspection.jobs")

SYSTEM_PRINCIPAL = Principal(UUID(int=0), "system", "system", None, ())
WEBHOOK_TIMEOUT = 10.0
WEBHOOK_LEASE = timedelta(minutes=5)
WEBHOOK_BATCH = 100
MAX_BACKOFF = timedelta(hours=6)


@dataclass
class JobReport:
    """What one run did."""

    escalations: int = 0
    reminders: int = 0
    delivered: int = 0
    failed_attempts: int = 0
    given_up: int = 0


async def run_jobs(
    database: Database,
    settings: Settings,
    now: datetime,
    *,
    http: httpx.AsyncClient | None = None,
) -> JobReport:
    """One pass of every job."""
    report = JobReport()
    await escalate(database, settings, now, report)
    await remind(database, settings, now, report)
    await deliver_webhooks(database, settings, now, report, http=http)
    return report


def _level_title(level: int, days: int) -> str:
    return f"Quá hạn {days} ngày: cảnh báo cấp {level}"


async def escalate(
    database: Database, settings: Settings, now: datetime, report: JobReport
) -> None:
    """Raise each escalation level an overdue action has reached and not yet raised."""
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
                report.escalations += 1
            action.escalated_level = level


async def _escalation_recipients(
    service: ActionService, action: CorrectiveAction, level: int
) -> set[UUID]:
    """Level 1: the assignee. Level 2: the assignee's superiors (the heads of
    `access.superior_unit`) and the planners over that unit. Level 3 and beyond: the leaders
    over the action's unit."""
    if level == 1:
        return {action.assignee_id}
    if level == 2:
        unit = await service.session.get(Unit, action.unit_id)
        assert unit is not None
        superior = await service.session.scalar(
            select(access.superior_unit(unit.path, action.assignee_id))
        )
        if superior is None:  # the assignee heads the top of the tree: the planners decide
            return await service.holders(Role.PLANNER, action.unit_id)
        heads = await service.holders(Role.UNIT_HEAD, superior, exact=True)
        return heads | await service.holders(Role.PLANNER, superior)
    return await service.holders(Role.LEADER, action.unit_id)


async def remind(database: Database, settings: Settings, now: datetime, report: JobReport) -> None:
    """Tell the assignee once when the due date is `due_soon_days` away or less."""
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
            await announce(
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
            report.reminders += 1


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """`X-Inspection-Signature`: `t=<unix time>,v1=<hex HMAC-SHA256 of "t.body">`. Receivers
    recompute it with the shared secret and reject old timestamps (replays)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


async def deliver_webhooks(
    database: Database,
    settings: Settings,
    now: datetime,
    report: JobReport,
    *,
    http: httpx.AsyncClient | None = None,
) -> None:
    """POST every due delivery; failures are retried later with exponential backoff."""
    if not settings.webhook_url or not settings.webhook_secret:
        return
    async with database.read_session() as session:
        due = list(
            await session.scalars(
                select(WebhookDelivery.id)
                .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now)
                .order_by(WebhookDelivery.created_at, WebhookDelivery.id)
                .limit(WEBHOOK_BATCH)
            )
        )
    client = http or httpx.AsyncClient(timeout=WEBHOOK_TIMEOUT)
    try:
        for delivery_id in due:
            await _deliver_one(database, settings, now, report, client, delivery_id)
    finally:
        if http is None:
            await client.aclose()


async def _deliver_one(
    database: Database,
    settings: Settings,
    now: datetime,
    report: JobReport,
    client: httpx.AsyncClient,
    delivery_id: UUID,
) -> None:
    assert settings.webhook_url is not None
    assert settings.webhook_secret is not None
    async with transaction(database) as session:
        # Claim: whoever moves the lease forward owns this attempt.
        claimed = await session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.id == delivery_id,
                WebhookDelivery.status == "pending",
                WebhookDelivery.next_attempt_at <= now,
            )
            .values(next_attempt_at=now + WEBHOOK_LEASE)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            return
        delivery = await session.get(WebhookDelivery, delivery_id)
        assert delivery is not None
        kind, payload = delivery.kind, delivery.payload
    body = msgspec.json.encode(payload)
    timestamp = int(now.timestamp())
    status: int | None = None
    error: str | None = None
    try:
        response = await client.post(
            settings.webhook_url,
            content=body,
            headers={
                "Content-Type": "application/json",
                "X-Inspection-Event": kind,
                "X-Inspection-Delivery": str(delivery_id),
                "X-Inspection-Signature": signature(settings.webhook_secret, timestamp, body),
            },
        )
        status = response.status_code
        if not 200 <= status < 300:
            error = f"HTTP {status}: {response.text[:200]}"
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"[:500]
    async with transaction(database) as session:
        delivery = await session.get(WebhookDelivery, delivery_id)
        assert delivery is not None
        delivery.attempts += 1
        delivery.last_status, delivery.last_error = status, error
        if error is None:
            delivery.status, delivery.delivered_at = "delivered", now
            report.delivered += 1
        elif delivery.attempts >= settings.webhook_max_attempts:
            delivery.status = "failed"
            report.given_up += 1
            log.error(
                "webhook delivery %s given up after %s attempts", delivery_id, delivery.attempts
            )
        else:
            backoff = min(timedelta(minutes=2 ** (delivery.attempts - 1)), MAX_BACKOFF)
            delivery.next_attempt_at = now + backoff
            report.failed_attempts += 1
            log.warning("webhook delivery %s failed (%s); retry in %s", delivery_id, error, backoff)
