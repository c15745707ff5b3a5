"""The principal: the signed-in user with their grants, loaded fresh on every request, and the
decisions that need nothing but the grants. No model is imported here."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from uuid import UUID

from inspection.units.roles import Role

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


def may_read_checklists(principal: Principal) -> bool:
    """Whether checklist templates exist for this user (404 otherwise)."""
    return principal.has_role(*CHECKLIST_READER_ROLES)


def may_read_audit(principal: Principal) -> bool:
    """Whether the audit log exists for this user (404 otherwise); what they read of it is
    `audit.repository.readable`."""
    return principal.has_role(*AUDIT_ROLES)


def may_verify_audit(principal: Principal) -> bool:
    """The chain spans every unit: only system-wide admins and leaders verify it."""
    return principal.is_global(AUDIT_ROLES)


def may_see_officials(
    principal: Principal, concerned_unit_id: UUID | None, sees_plan_in_full: bool
) -> bool:
    """The officials named in a finding are personal data: the team, planners and leaders (who
    see the plan whole) and the head of the unit concerned (`access.scopes.unit_concerned` of the
    finding's unit) see them; nobody else does, not the heads above."""
    return sees_plan_in_full or (
        concerned_unit_id is not None
        and any(
            g.role == Role.UNIT_HEAD and g.unit_id == concerned_unit_id for g in principal.grants
        )
    )


def may_decide_discipline(principal: Principal, official_unit_path: str) -> bool:
    """Leaders and planners covering the official's unit decide (or record the decision of the
    competent authority) and extend the processing time."""
    return principal.covers(official_unit_path, ORGANISER_ROLES)
