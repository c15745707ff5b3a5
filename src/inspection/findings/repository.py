"""What of findings a principal may read, built from `inspection.access`."""

from __future__ import annotations

from collections.abc import Collection
from uuid import UUID

from sqlalchemy import (
    ColumnElement,
    and_,
    exists,
    or_,
    select,
)

from inspection.access import scopes, seal
from inspection.access.principal import Principal
from inspection.findings.models import Finding, FindingStatus
from inspection.plans.models import Visit
from inspection.units.models import Unit
from inspection.units.roles import Role


def readable(
    principal: Principal, whole_plans: Collection[UUID] | None = None
) -> ColumnElement[bool]:
    """SQL for `Finding`: findings of visits the user may see; drafts only to those who see the
    plan whole (its organisers and team): unit heads see a finding once it is submitted.
    `whole_plans`: see `access.seal.in_whole_plan`."""
    visible_visit = exists(
        select(Visit.id).where(Visit.id == Finding.visit_id, seal.visits_in_scope(principal))
    )
    whole_plan = seal.in_whole_plan(principal, Finding.plan_id, whole_plans)
    submitted = and_(Finding.status != FindingStatus.DRAFT.value, Finding.submitted_at.is_not(None))
    return and_(visible_visit, or_(whole_plan, submitted))


def officials_readable(
    principal: Principal, whole_plans: Collection[UUID] | None = None
) -> ColumnElement[bool]:
    """SQL for `Finding`: whether the user may read the officials a finding names, the twin of
    `access.principal.may_see_officials`: those who see the plan whole (team, planners,
    leaders), and the head of the unit concerned by the finding's unit. To be combined with
    `readable`, which says whether the finding is visible at all; the heads above see the
    finding, not the names.
    `whole_plans`: see `access.seal.in_whole_plan`.
    """
    whole_plan = seal.in_whole_plan(principal, Finding.plan_id, whole_plans)
    headed = [g.unit_id for g in principal.grants if g.role == Role.UNIT_HEAD and g.unit_id]
    if not headed:
        return whole_plan
    concerned = exists(
        select(Unit.id).where(
            Unit.id == Finding.unit_id, scopes.unit_concerned(Unit.path).in_(headed)
        )
    )
    return or_(whole_plan, concerned)
