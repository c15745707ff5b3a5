"""Who may see and do what. The one place that decides visibility.

A grant (role, unit) covers the unit's whole subtree; a grant without a unit covers the whole
system. Every list, get, count, report and export filters with the SQL predicates built here, so
a leak is a bug in one module, not in twenty handlers. Things a caller may not see answer 404.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from uuid import UUID

from sqlalchemy import (
    ColumnElement,
    ScalarSelect,
    and_,
    exists,
    false,
    func,
    literal,
    or_,
    select,
    true,
)
from sqlalchemy.orm import InstrumentedAttribute, QueryableAttribute, aliased

from inspection.actions.models import CorrectiveAction
from inspection.audit.models import AuditEntry
from inspection.findings.models import Finding, FindingStatus
from inspection.plans.models import Plan, PlanKind, TeamMember, Visit, VisitStatus
from inspection.units.models import Grant, Role, Unit, User

ALL_ROLES: frozenset[Role] = frozenset(Role)
# Roles whose holders look after people in their units (compose teams, read reports, administer).
PEOPLE_ROLES: frozenset[Role] = frozenset({Role.ADMIN, Role.PLANNER, Role.LEADER})
AUDIT_ROLES: frozenset[Role] = frozenset({Role.ADMIN, Role.LEADER})
# The inspection side, which reads checklist templates. Not unit heads: a template's `frozen`
# flag and version change the moment any plan uses it, a hint of an unannounced plan.
CHECKLIST_READER_ROLES: frozenset[Role] = frozenset(
    {Role.ADMIN, Role.PLANNER, Role.INSPECTOR, Role.LEADER}
)
# Roles that organise and oversee inspections of the units they cover.
ORGANISER_ROLES: frozenset[Role] = frozenset({Role.PLANNER, Role.LEADER})


@dataclass(frozen=True, slots=True)
class GrantScope:
    """One grant as access control needs it: the role and the covered unit's path."""

    role: Role
    unit_id: UUID | None
    unit_path: str | None  # None: the whole system


@dataclass(frozen=True, slots=True)
class Principal:
    """The signed-in user and their grants, loaded fresh on every request."""

    user_id: UUID
    username: str
    full_name: str
    unit_id: UUID | None
    grants: tuple[GrantScope, ...]

    def roles(self) -> set[Role]:
        """Every role the user holds anywhere."""
        return {g.role for g in self.grants}

    def has_role(self, *roles: Role) -> bool:
        """Whether the user holds any of `roles` on some unit."""
        return any(g.role in roles for g in self.grants)

    def is_global(self, roles: Iterable[Role] = ALL_ROLES) -> bool:
        """Whether one of `roles` is granted system-wide."""
        wanted = set(roles)
        return any(g.role in wanted and g.unit_path is None for g in self.grants)

    def scope_paths(self, roles: Iterable[Role] = ALL_ROLES) -> list[str] | None:
        """Paths of the subtrees covered by `roles`: None means everything, [] means nothing.

        Paths nested inside another covered path are dropped: they add nothing to the predicate.
        """
        wanted = set(roles)
        if self.is_global(wanted):
            return None
        paths = sorted({g.unit_path for g in self.grants if g.role in wanted and g.unit_path})
        kept: list[str] = []
        for path in paths:
            if not any(path.startswith(outer) for outer in kept):
                kept.append(path)
        return kept

    def covers(self, unit_path: str | None, roles: Iterable[Role] = ALL_ROLES) -> bool:
        """Whether `roles` reach the unit at `unit_path` (None: a system-wide thing)."""
        paths = self.scope_paths(roles)
        if paths is None:
            return True
        if unit_path is None:
            return False
        return any(unit_path.startswith(p) for p in paths)


def subtree_filter(
    principal: Principal,
    roles: Iterable[Role] = ALL_ROLES,
    path_column: InstrumentedAttribute[str] = Unit.path,
) -> ColumnElement[bool]:
    """SQL: the unit whose path is in `path_column` lies in a subtree that `roles` cover."""
    paths = principal.scope_paths(roles)
    if paths is None:
        return true()
    if not paths:
        return false()
    return or_(*(path_column.startswith(p) for p in paths))


def units_in_scope(principal: Principal, roles: Iterable[Role] = ALL_ROLES) -> ColumnElement[bool]:
    """SQL for `Unit`: the units a user may see. Any grant shows its subtree and nothing above."""
    return subtree_filter(principal, roles)


def users_in_scope(principal: Principal) -> ColumnElement[bool]:
    """SQL for `User`: oneself always; admins, planners and leaders also see people whose home
    unit or any grant lies in their subtrees (to administer them, compose teams, read reports)."""
    paths = principal.scope_paths(PEOPLE_ROLES)
    if paths is None:
        return true()
    me = User.id == principal.user_id
    if not paths:
        return me
    in_scope = subtree_filter(principal, PEOPLE_ROLES)
    home = User.unit_id.in_(select(Unit.id).where(in_scope))
    granted = exists(
        select(Grant.id)
        .join(Unit, Grant.unit_id == Unit.id)
        .where(and_(Grant.user_id == User.id, in_scope))
    )
    return or_(me, home, granted)


def may_read_checklists(principal: Principal) -> bool:
    """Whether checklist templates exist for this user (404 otherwise)."""
    return principal.has_role(*CHECKLIST_READER_ROLES)


def may_read_audit(principal: Principal) -> bool:
    """Whether the audit log exists for this user (404 otherwise); what they read of it is
    `audit_in_scope`."""
    return principal.has_role(*AUDIT_ROLES)


def may_verify_audit(principal: Principal) -> bool:
    """The chain spans every unit: only system-wide admins and leaders verify it."""
    return principal.is_global(AUDIT_ROLES)


def audit_in_scope(principal: Principal) -> ColumnElement[bool]:
    """SQL for `AuditEntry`: admins and leaders see changes to things in their subtrees; only
    system-wide admins and leaders see system-wide changes (entries without a unit). Entries that
    belong to a plan are shown only to those who see the plan in full (its organisers and team):
    an admin who also heads an inspected unit must not read an unannounced plan there."""
    paths = principal.scope_paths(AUDIT_ROLES)
    if paths is None:
        return true()
    if not paths:
        return false()
    in_units = AuditEntry.unit_id.in_(select(Unit.id).where(subtree_filter(principal, AUDIT_ROLES)))
    plan_allowed = or_(
        AuditEntry.plan_id.is_(None),
        AuditEntry.plan_id.in_(select(Plan.id).where(plans_in_full(principal))),
    )
    return and_(in_units, plan_allowed)


# Aliases, so that a predicate used inside a query over the same table does not correlate to the
# outer row. Built once: constructing an alias adapts every column, which cost about 1 ms per
# request when done in each call (measured with bench/findings_put.py).
_PLAN = aliased(Plan)
_VISIT = aliased(Visit)


def _on_team(principal: Principal, plan_id: QueryableAttribute[UUID]) -> ColumnElement[bool]:
    return exists(
        select(TeamMember.id).where(
            TeamMember.plan_id == plan_id, TeamMember.user_id == principal.user_id
        )
    )


def _organises(principal: Principal, unit_column: QueryableAttribute[UUID]) -> ColumnElement[bool]:
    paths = principal.scope_paths(ORGANISER_ROLES)
    if paths is None:
        return true()
    if not paths:
        return false()
    return unit_column.in_(select(Unit.id).where(subtree_filter(principal, ORGANISER_ROLES)))


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
        .where(plan.id == Visit.plan_id, _organises(principal, plan.unit_id))
        .correlate_except(plan)
    )
    clauses = [_organises(principal, Visit.unit_id), organised, _on_team(principal, Visit.plan_id)]
    if principal.has_role(Role.UNIT_HEAD):
        head_units = subtree_filter(principal, [Role.UNIT_HEAD])
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
        .where(visit.plan_id == Plan.id, _organises(principal, visit.unit_id))
        .correlate_except(visit)
    )
    return or_(_organises(principal, Plan.unit_id), organised_target, _on_team(principal, Plan.id))


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


def findings_in_scope(principal: Principal) -> ColumnElement[bool]:
    """SQL for `Finding`: findings of visits the user may see; drafts only to those who see the
    plan whole (its organisers and team): unit heads see a finding once it is submitted."""
    visible_visit = exists(
        select(Visit.id).where(Visit.id == Finding.visit_id, visits_in_scope(principal))
    )
    whole_plan = Finding.plan_id.in_(select(Plan.id).where(plans_in_full(principal)))
    submitted = and_(Finding.status != FindingStatus.DRAFT.value, Finding.submitted_at.is_not(None))
    return and_(visible_visit, or_(whole_plan, submitted))


# Aliases for `unit_concerned`, which is used inside queries over units, grants and users.
_HEADED_UNIT = aliased(Unit)
_HEAD_GRANT = aliased(Grant)
_HEAD_USER = aliased(User)


def unit_concerned(
    unit_path: QueryableAttribute[str] | ColumnElement[str] | str,
) -> ScalarSelect[UUID]:
    """SQL: the id of the unit whose heads are "the head of the unit concerned" by something
    about the unit at `unit_path` (a finding, a corrective action): the nearest unit at or above
    it that has an active unit head, or NULL when none has.

    A one-stop shop usually has no head of its own: the commune's head answers for it. The
    heads further up (the district, the province) are not concerned: they oversee, and reach the
    matter through escalation. One definition, used for the officials named in a finding and for
    who may be assigned a corrective action.
    """
    path = literal(unit_path) if isinstance(unit_path, str) else unit_path
    return _nearest_headed_unit(path)


def _nearest_headed_unit(
    path: QueryableAttribute[str] | ColumnElement[str], *also: ColumnElement[bool]
) -> ScalarSelect[UUID]:
    """SQL: the deepest unit at or above `path` with an active unit head (and `also` true)."""
    headed, grant, user = _HEADED_UNIT, _HEAD_GRANT, _HEAD_USER
    return (
        select(headed.id)
        .join(grant, grant.unit_id == headed.id)
        .join(user, user.id == grant.user_id)
        .where(
            grant.role == Role.UNIT_HEAD.value,
            user.is_active.is_(True),
            path.startswith(headed.path),
            *also,
        )
        .order_by(func.length(headed.path).desc())
        .limit(1)
        .scalar_subquery()
    )


def heads_concerned(unit_path: str) -> ColumnElement[bool]:
    """SQL for `User`: the active heads of the unit concerned by the unit at `unit_path`."""
    return and_(
        User.is_active.is_(True),
        User.id.in_(
            select(Grant.user_id).where(
                Grant.role == Role.UNIT_HEAD.value, Grant.unit_id == unit_concerned(unit_path)
            )
        ),
    )


_ASSIGNEE_UNIT = aliased(Unit)
_ASSIGNEE_GRANT = aliased(Grant)


def superior_unit(unit_path: str, assignee_id: UUID) -> ScalarSelect[UUID]:
    """SQL: the unit whose heads are the superiors of `assignee_id` for a matter about the unit
    at `unit_path` (escalation level 2), or NULL at the top of the tree.

    Walking up from the unit, the first unit with an active unit head that lies above every unit
    on the way the assignee heads: a one-stop shop's action assigned to the commune's head goes
    to the district's head (not back to the commune's), and an action a district head took on
    while a commune had no head never escalates down to the commune's head appointed since.
    """
    headed, user = _HEADED_UNIT, _HEAD_USER
    own, own_grant = _ASSIGNEE_UNIT, _ASSIGNEE_GRANT
    path = literal(unit_path)
    # `headed` is at or below a unit on the way that the assignee heads: not their superior.
    under_the_assignee = exists(
        select(own_grant.id)
        .join(own, own.id == own_grant.unit_id)
        .where(
            own_grant.user_id == assignee_id,
            own_grant.role == Role.UNIT_HEAD.value,
            path.startswith(own.path),
            headed.path.startswith(own.path),
        )
        .correlate(headed)
    )
    return _nearest_headed_unit(path, user.id != assignee_id, ~under_the_assignee)


def may_see_officials(
    principal: Principal, concerned_unit_id: UUID | None, sees_plan_in_full: bool
) -> bool:
    """The officials named in a finding are personal data: the team, planners and leaders (who
    see the plan whole) and the head of the unit concerned (`unit_concerned` of the finding's
    unit) see them; nobody else does, not the heads above."""
    return sees_plan_in_full or (
        concerned_unit_id is not None
        and any(
            g.role == Role.UNIT_HEAD and g.unit_id == concerned_unit_id for g in principal.grants
        )
    )


def actions_in_scope(principal: Principal) -> ColumnElement[bool]:
    """SQL for `CorrectiveAction`: actions of findings the user may see, and, for unit heads,
    every action of a unit in their subtree (a sub-unit's head answers for it without seeing the
    whole visit). An action exists only for a submitted finding of a checked-in visit, so nothing
    of an unannounced visit can surface here before its check-in."""
    clauses = [
        CorrectiveAction.finding_id.in_(select(Finding.id).where(findings_in_scope(principal)))
    ]
    if principal.has_role(Role.UNIT_HEAD):
        heads = select(Unit.id).where(subtree_filter(principal, [Role.UNIT_HEAD]))
        clauses.append(CorrectiveAction.unit_id.in_(heads))
    return or_(*clauses)
