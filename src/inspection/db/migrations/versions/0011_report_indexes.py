"""Index for reports: visits by check-in time (a visit counts in the period of its check-in).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 23:40:00
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("visits", schema=None) as batch_op:
        batch_op.create_index("ix_visits_checked_in_at", ["checked_in_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("visits", schema=None) as batch_op:
        batch_op.drop_index("ix_visits_checked_in_at")
