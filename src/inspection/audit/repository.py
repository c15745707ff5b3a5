"""What of the audit log a principal may read, built from `inspection.access`."""

from __future__ import annotations

from sqlalchemy import (
    ColumnElement,
    and_,
    false,
    or_,
    select,
    true,
)

from inspection.access import scopes, seal
from inspection.access.principal import AUDIT_ROLES, Principal
from inspection.audit.models import AuditEntry
from inspection.plans.models import Plan
from inspection.units.models import Unit


def readable(principal: Principal) -> ColumnElement[bool]:
    """SQL for `AuditEntry`: admins and leaders see changes to things in their subtrees; only
    system-wide admins and leaders see system-wide changes (entries without a unit). Entries that
    belong to a plan are shown only to those who see the plan in full (its organisers and team):
    an admin who also heads an inspected unit must not read an unannounced plan there."""
    paths = principal.scope_paths(AUDIT_ROLES)
    if paths is None:
        return true()
    if not paths:
        return false()
    in_units = AuditEntry.unit_id.in_(
        select(Unit.id).where(scopes.subtree_filter(principal, AUDIT_ROLES))
    )
    plan_allowed = or_(
        AuditEntry.plan_id.is_(None),
        AuditEntry.plan_id.in_(select(Plan.id).where(seal.plans_in_full(principal))),
    )
    return and_(in_units, plan_allowed)
