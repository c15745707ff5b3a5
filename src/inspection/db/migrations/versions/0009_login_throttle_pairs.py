"""login_throttle: counters per username and per username + client address

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 23:30:00.000000

Wrong passwords were counted per username only, and the count locked the username for everyone:
six requests from a stranger locked out `admin`. Counters are now keyed (`u:<username>` for the
growing delay of a username, `p:<hash of username and address>` for the lock of one address),
with the username beside them so a password reset lifts them all. The counters are short-lived
bookkeeping, so the table is recreated empty; live counts are forgotten once, at the upgrade.
"""

from __future__ import annotations

import advanced_alchemy.types
import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def _timestamp(name: str, *, nullable: bool) -> sa.Column[object]:
    return sa.Column(
        name, advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=nullable
    )


def upgrade() -> None:
    op.drop_table("login_throttle")
    op.create_table(
        "login_throttle",
        sa.Column("key", sa.String(length=80), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        _timestamp("last_failure_at", nullable=False),
        _timestamp("blocked_until", nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_login_throttle")),
    )
    op.create_index(
        op.f("ix_login_throttle_username"), "login_throttle", ["username"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_login_throttle_username"), table_name="login_throttle")
    op.drop_table("login_throttle")
    op.create_table(
        "login_throttle",
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        _timestamp("first_failure_at", nullable=False),
        _timestamp("locked_until", nullable=True),
        sa.PrimaryKeyConstraint("username", name=op.f("pk_login_throttle")),
    )
