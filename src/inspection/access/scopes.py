"""Subtrees of the unit tree as SQL: the units, people and report units a principal covers, and
"the unit concerned" by a matter (whose heads answer for it)."""

from __future__ import annotations

from collections.abc import Iterable
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

from inspection.access.principal import ALL_ROLES, ORGANISER_ROLES, PEOPLE_ROLES, Principal
from inspection.units.models import Grant, Unit, User
from inspection.units.roles import Role


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


def organises(principal: Principal, unit_column: QueryableAttribute[UUID]) -> ColumnElement[bool]:
    paths = principal.scope_paths(ORGANISER_ROLES)
    if paths is None:
        return true()
    if not paths:
        return false()
    return unit_column.in_(select(Unit.id).where(subtree_filter(principal, ORGANISER_ROLES)))


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


# --- reports -----------------------------------------------------------------------------------
#
# A report covers a part of the unit tree the reader may see (`units_in_scope`), and inside it
# every record goes through its own predicate (`access.seal.visits_in_scope`,
# `findings.repository.readable`, `actions.repository.readable`). The sealed unannounced visit
# therefore adds nothing to a unit head's report: not a count, not a unit, not an action. The
# helpers here only say which units a report covers.


def report_roots(principal: Principal) -> ColumnElement[bool]:
    """SQL for `Unit`: the tops of what a user may see, one per covered subtree: the default scope
    of a report without `under` (the root units for a system-wide grant)."""
    paths = principal.scope_paths()
    if paths is None:
        return Unit.parent_id.is_(None)
    if not paths:
        return false()
    return Unit.path.in_(paths)


def report_units(principal: Principal, root_path: str | None) -> ColumnElement[bool]:
    """SQL for `Unit`: the units a report covers: those the user may see, inside the subtree at
    `root_path` when the report names one (`under`; its path as a literal prefix, so the path
    index serves it). The caller checks that the root itself is visible (`units_in_scope`)."""
    visible = units_in_scope(principal)
    if root_path is None:
        return visible
    return and_(visible, Unit.path.startswith(root_path))
