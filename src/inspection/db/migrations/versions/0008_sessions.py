"""sessions: one row per refresh-token family, checked on every request

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 20:10:00.000000

Access tokens now name their session (`sid`); each request joins `sessions` by primary key in
the statement that loads the user, so a revoked session ends its access tokens at once. Existing
families get their row here (revoked when every token of the family is), and `refresh_tokens`
gains a foreign key to it so no token can exist without a session to check.
"""

from __future__ import annotations

import advanced_alchemy.types
import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sessions",
        sa.Column("id", advanced_alchemy.types.guid.GUID(length=16), nullable=False),
        sa.Column("user_id", advanced_alchemy.types.guid.GUID(length=16), nullable=False),
        sa.Column(
            "created_at", advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False
        ),
        sa.Column(
            "revoked_at", advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=True
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_sessions_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sessions")),
    )
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sessions_user_id"), ["user_id"], unique=False)

    # A family is one user's (rotation keeps the user), so grouping by both yields one row per
    # family. A reuse or a password change revokes every token of the family; a family with a
    # token left unrevoked is still live. Values are copied as stored, so this is the same SQL on
    # both databases.
    op.execute(
        "INSERT INTO sessions (id, user_id, created_at, revoked_at) "
        "SELECT family_id, user_id, MIN(issued_at), "
        "CASE WHEN COUNT(revoked_at) = COUNT(*) THEN MAX(revoked_at) END "
        "FROM refresh_tokens GROUP BY family_id, user_id"
    )
    with op.batch_alter_table("refresh_tokens", schema=None) as batch_op:
        batch_op.create_foreign_key(
            batch_op.f("fk_refresh_tokens_family_id_sessions"),
            "sessions",
            ["family_id"],
            ["id"],
            ondelete="CASCADE",
        )


def downgrade() -> None:
    # Revocations recorded only on a session (none today: a reuse marks the family's tokens too)
    # would be lost; the tokens' own `revoked_at` keeps refusing refreshes.
    with op.batch_alter_table("refresh_tokens", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_refresh_tokens_family_id_sessions"), type_="foreignkey"
        )

    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sessions_user_id"))

    op.drop_table("sessions")
