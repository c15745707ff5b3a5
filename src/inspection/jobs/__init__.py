"""`inspection jobs run`: one pass of every background job, each living beside the domain it
serves: escalations and due-soon reminders (`actions.jobs`), webhook deliveries
(`notifications.webhooks`).

Meant for cron or any scheduler, as often as you like (every 5 to 15 minutes is typical): every
job raises or sends each thing exactly once, however often and however many runners run it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import httpx

from inspection.actions.jobs import escalate, remind
from inspection.db.engine import Database
from inspection.notifications.webhooks import deliver_webhooks
from inspection.settings import Settings


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
    escalations = await escalate(database, settings, now)
    reminders = await remind(database, settings, now)
    deliveries = await deliver_webhooks(database, settings, now, http=http)
    return JobReport(
        escalations,
        reminders,
        deliveries.delivered,
        deliveries.failed_attempts,
        deliveries.given_up,
    )
