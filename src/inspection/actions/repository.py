"""What of corrective actions a principal may read, built from `inspection.access`."""

from __future__ import annotations

from collections.abc import Collection
from datetime import date
from uuid import UUID

from sqlalchemy import (
    ColumnElement,
    and_,
    exists,
    or_,
    select,
)
from sqlalchemy.orm import QueryableAttribute

from inspection.access import scopes
from inspection.access.principal import Principal
from inspection.actions.models import OWING_STATUSES, CorrectiveAction
from inspection.findings import repository as findings_repository
from inspection.findings.models import Finding
from inspection.units.models import Unit
from inspection.units.roles import Role


def readable(principal: Principal) -> ColumnElement[bool]:
    """SQL for `CorrectiveAction`: actions of findings the user may see, and, for unit heads,
    every action of a unit in their subtree (a sub-unit's head answers for it without seeing the
    whole visit). An action exists only for a submitted finding of a checked-in visit, so nothing
    of an unannounced visit can surface here before its check-in.

    Written for the planner (same rows as `finding_id IN (SELECT id FROM findings WHERE …)`):
    the finding is looked up by its primary key (`EXISTS … WHERE findings.id = finding_id`), and a
    unit head's clause, a small hashed list of units, comes first so it decides most rows before
    the finding is read. With `IN` inside the `OR`, PostgreSQL could not hash a million visible
    findings within `work_mem` and scanned them for every action: a unit head's summary at
    1,000,000 findings ran past the reports' 60 s statement timeout (bench/reports.py)."""
    visible_finding = exists(
        select(Finding.id)
        .where(Finding.id == CorrectiveAction.finding_id, findings_repository.readable(principal))
        .correlate_except(Finding)
    )
    clauses: list[ColumnElement[bool]] = [visible_finding]
    if principal.has_role(Role.UNIT_HEAD):
        heads = select(Unit.id).where(scopes.subtree_filter(principal, [Role.UNIT_HEAD]))
        clauses.insert(0, CorrectiveAction.unit_id.in_(heads))
    return or_(*clauses)


def readable_with_joined_finding(
    principal: Principal, whole_plans: Collection[UUID] | None = None
) -> ColumnElement[bool]:
    """SQL for `CorrectiveAction` joined to its own finding as `Finding` (the `findings` table
    itself, `Finding.id == CorrectiveAction.finding_id`): `readable`, with the finding's clause
    (`findings.repository.readable`) read from the joined row instead of a subquery over every
    finding. The same rows, since the join picks exactly the action's finding.

    For queries that join the finding anyway (the reports count an action with its finding's
    period and status): the planner would otherwise match the join against a semi-join over all
    visible findings, hashed from the whole table for every report (bench/reports.py: 2 s for a
    district's 30,000 actions at 1,000,000 findings). `whole_plans`: see
    `access.seal.in_whole_plan`."""
    clauses = [findings_repository.readable(principal, whole_plans)]
    if principal.has_role(Role.UNIT_HEAD):
        heads = select(Unit.id).where(scopes.subtree_filter(principal, [Role.UNIT_HEAD]))
        clauses.insert(0, CorrectiveAction.unit_id.in_(heads))
    return or_(*clauses)


def of_readable_finding(
    finding_id: QueryableAttribute[UUID] | ColumnElement[UUID],
) -> ColumnElement[bool]:
    """SQL for `CorrectiveAction`: the actions of a finding the caller already sees through
    `findings.repository.readable` (the findings register counts them per row). Every action of
    a visible finding is visible (`readable`'s first clause), so nothing more is needed, and nesting
    `readable` in a query over findings would correlate its inner `Finding`."""
    return CorrectiveAction.finding_id == finding_id


def overdue_clause(today: date) -> ColumnElement[bool]:
    """SQL twin of `days_overdue(...) > 0`, with the same `today`."""
    return and_(CorrectiveAction.status.in_(OWING_STATUSES), CorrectiveAction.due_date < today)
