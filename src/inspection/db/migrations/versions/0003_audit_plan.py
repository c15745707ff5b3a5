"""Audit entries belong to a plan

Entries about plans and visits carry the plan's id, so that the audit log shows them only to
those who see the plan in full.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 19:44:48.329955
"""

from __future__ import annotations

import advanced_alchemy.types
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ALTER TABLE (no batch copy) on both databases: rebuilding audit_entries would drop
    # its append-only triggers on SQLite.
    op.add_column(
        "audit_entries",
        sa.Column("plan_id", advanced_alchemy.types.guid.GUID(length=16), nullable=True),
    )
    op.create_index(op.f("ix_audit_entries_plan_id"), "audit_entries", ["plan_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_audit_entries_plan_id"), table_name="audit_entries")
    op.drop_column("audit_entries", "plan_id")
