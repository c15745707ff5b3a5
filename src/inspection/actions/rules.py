"""The pure rules of corrective actions: when an action is overdue and how far it escalates.
No query, no session: the jobs, the reports and the demo history use the same rules."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from zoneinfo import ZoneInfo

from inspection.actions.models import OWING_STATUSES, CorrectiveAction


def local_today(now: datetime, zone: ZoneInfo) -> date:
    """The calendar date in the configured zone: a due date falls due when it ends."""
    return now.astimezone(zone).date()


def days_overdue(action: CorrectiveAction, today: date) -> int:
    """Whole days past the due date while the unit still owes work; 0 otherwise."""
    if action.status not in OWING_STATUSES or action.due_date >= today:
        return 0
    return (today - action.due_date).days


def escalation_level(days: int, thresholds: Sequence[int]) -> int:
    """How many escalation thresholds `days` overdue has reached (0: none)."""
    return sum(1 for threshold in thresholds if days >= threshold)
