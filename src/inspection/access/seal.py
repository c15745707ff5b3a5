"""Plans and visits a principal may know about, and the seal of unannounced visits.

An unannounced visit does not exist for the inspected unit's heads until the team checks in: not
in lists, counts, filters, reports, audit views or error messages. Everything that shows a plan
or a visit, or anything recorded during one, goes through the predicates here.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from uuid import UUID

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    exists,
    false,
    or_,
    select,
    true,
)
from sqlalchemy.orm import QueryableAttribute, aliased

from inspection.access import scopes
from inspection.access.principal import ORGANISER_ROLES, Principal
from inspection.plans.models import Plan, PlanKind, TeamMember, Visit, VisitStatus
from inspection.units.models import Unit
from inspection.units.roles import Role

# Aliases, so that a predicate used inside a query over the same table does not correlate to the
# outer row. Built once: constructing an alias adapts every column, which cost about 1 ms per
# request when done in each call (measured with bench/findings_put.py).
_PLAN = aliased(Plan)
_VISIT = aliased(Visit)


def on_team(principal: Principal, plan_id: QueryableAttribute[UUID]) -> ColumnElement[bool]:
    return exists(
        select(TeamMember.id).where(
            TeamMember.plan_id == plan_id, TeamMember.user_id == principal.user_id
        )
    )


def visits_in_scope(principal: Principal) -> ColumnElement[bool]:
    """SQL for `Visit`: the visits a user may know about.

    - planners and leaders: visits to units they cover, and every visit of plans their units
      organise;
    - the plan's team;
    - heads of the visited unit or of a unit above it: once the plan is approved if it is
      scheduled (the unit is told in advance); if it is unannounced, nothing at all until this
      visit is checked in, and then this visit only. Before that the visit does not exist for
      them: not in lists, counts, filters, reports, audit views or error messages.
    """
    plan = _PLAN
    organised = exists(
        select(plan.id)
        .where(plan.id == Visit.plan_id, scopes.organises(principal, plan.unit_id))
        .correlate_except(plan)
    )
    clauses = [
        scopes.organises(principal, Visit.unit_id),
        organised,
        on_team(principal, Visit.plan_id),
    ]
    if principal.has_role(Role.UNIT_HEAD):
        head_units = scopes.subtree_filter(principal, [Role.UNIT_HEAD])
        announced = exists(
            select(plan.id)
            .where(
                plan.id == Visit.plan_id,
                plan.approved_at.is_not(None),
                or_(plan.kind == PlanKind.SCHEDULED.value, Visit.checked_in_at.is_not(None)),
            )
            .correlate_except(plan)
        )
        clauses.append(and_(Visit.unit_id.in_(select(Unit.id).where(head_units)), announced))
    return or_(*clauses)


def plans_in_full(principal: Principal) -> ColumnElement[bool]:
    """SQL for `Plan`: plans a user sees whole (all targets, the period): organisers of the plan's
    unit or of one of its targets, and the team."""
    visit = _VISIT
    organised_target = exists(
        select(visit.id)
        .where(visit.plan_id == Plan.id, scopes.organises(principal, visit.unit_id))
        .correlate_except(visit)
    )
    return or_(
        scopes.organises(principal, Plan.unit_id), organised_target, on_team(principal, Plan.id)
    )


def period_known(kind: str, sees_plan_in_full: bool) -> bool:
    """Whether a viewer may know a plan's period: always for a scheduled plan (the units are
    told in advance); for an unannounced one only if they see it whole, since it would tell a
    unit head when the neighbouring units get visited. `periods_known` is the SQL twin."""
    return sees_plan_in_full or kind == PlanKind.SCHEDULED.value


def plan_text_withheld(principal: Principal) -> ColumnElement[bool]:
    """SQL for `Plan`: whether the plan's free text (title, legal basis, focus) is withheld from
    a unit head who sees the plan only through its visits: while the plan is unannounced and any
    of its visits, theirs or not, is still to be checked in.

    The text is written by the planner and may name any target ("… xã La Hiên"). Withholding it
    only until the viewer's own visits are checked in would still hand a neighbouring head the
    name of a target that is sealed; so a unit head reads the text once no visit of the plan is
    sealed any more (checked in or cancelled). Those who see the plan whole are not affected:
    `PlanView.of` decides with `plans_in_full`."""
    if not principal.has_role(Role.UNIT_HEAD):
        return false()
    visit = _VISIT
    sealed = exists(
        select(visit.id)
        .where(
            visit.plan_id == Plan.id,
            visit.checked_in_at.is_(None),
            visit.status != VisitStatus.CANCELLED.value,
        )
        .correlate_except(visit)
    )
    return and_(Plan.kind == PlanKind.UNANNOUNCED.value, sealed)


@dataclass(frozen=True, slots=True)
class PlanView:
    """What one viewer may read of a plan, beyond the visits `visits_in_scope` shows them.

    Built from two SQL columns selected with the plan: `plans_in_full` and `plan_text_withheld`.
    """

    full: bool  # every target, the team, the period
    text: bool  # title, legal basis and focus
    period: bool

    @classmethod
    def of(cls, kind: str, full: bool, text_withheld: bool) -> PlanView:
        """The view for a plan of `kind` from the two columns."""
        return cls(
            full=full,
            text=full or not text_withheld,
            period=period_known(kind, full),
        )

    @classmethod
    def whole(cls) -> PlanView:
        """The team's and organisers' view."""
        return cls(full=True, text=True, period=True)


def plan_view_columns(principal: Principal) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    """The two labelled columns `PlanView.of` reads, to add to a select over `Plan`."""
    return (
        plans_in_full(principal).label("full"),
        plan_text_withheld(principal).label("text_withheld"),
    )


def periods_known(principal: Principal) -> ColumnElement[bool]:
    """SQL for `Plan`: `period_known` for every plan (filters must not reveal a hidden period)."""
    return or_(plans_in_full(principal), Plan.kind == PlanKind.SCHEDULED.value)


def plans_in_scope(principal: Principal) -> ColumnElement[bool]:
    """SQL for `Plan`: plans a user may know about: seen whole, or through a visit they may see
    (a unit head then sees only those visits, and not the period of an unannounced plan)."""
    through_visit = exists(
        select(Visit.id).where(Visit.plan_id == Plan.id, visits_in_scope(principal))
    )
    return or_(plans_in_full(principal), through_visit)


# Past this many plans seen whole, `in_whole_plan` keeps the subquery rather than a list of ids.
WHOLE_PLANS_LIST_LIMIT = 2000


def whole_plans_statement(principal: Principal) -> Select[tuple[UUID]] | None:
    """The ids of the plans a user sees whole (`plans_in_full`), for a caller that runs many
    statements over findings in one transaction (the reports) to read once and pass on as
    `whole_plans`; None when the user sees every plan whole (a system-wide organiser). At most
    `WHOLE_PLANS_LIST_LIMIT` + 1 rows: more than the limit means "use the subquery"."""
    if principal.scope_paths(ORGANISER_ROLES) is None:
        return None
    return select(Plan.id).where(plans_in_full(principal)).limit(WHOLE_PLANS_LIST_LIMIT + 1)


def in_whole_plan(
    principal: Principal,
    plan_id: QueryableAttribute[UUID],
    whole_plans: Collection[UUID] | None = None,
) -> ColumnElement[bool]:
    """SQL: the row's plan is one the user sees whole (`plans_in_full`).

    `whole_plans`, the ids `whole_plans_statement` read in the same transaction, makes it a list
    of literals. As `plan_id IN (SELECT … plans_in_full)` the clause is a hashed subplan whose
    start-up PostgreSQL charges to every probe of a nested loop, so a district's actions joined
    to their findings scanned all of them (1.1 s at 1,000,000 findings, 0.25 s with the list:
    bench/reports.py). A system-wide organiser sees every plan whole: no clause at all."""
    if principal.scope_paths(ORGANISER_ROLES) is None:
        return true()
    if whole_plans is not None and len(whole_plans) <= WHOLE_PLANS_LIST_LIMIT:
        return plan_id.in_(list(whole_plans))
    return plan_id.in_(select(Plan.id).where(plans_in_full(principal)))
