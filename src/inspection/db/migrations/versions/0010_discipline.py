"""discipline_proposals: officials proposed for discipline on a finding, and the decision

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 23:22:50.607926

One new table; nothing existing changes. The official's folded name sits beside the name
(`official_name_folded`) with the unit, indexed together: repeat offences are counted by unit and
folded name.
"""

from __future__ import annotations

import advanced_alchemy.types
import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "discipline_proposals",
        sa.Column("id", advanced_alchemy.types.guid.GUID(length=16), nullable=False),
        sa.Column("finding_id", advanced_alchemy.types.guid.GUID(length=16), nullable=False),
        sa.Column("visit_id", advanced_alchemy.types.guid.GUID(length=16), nullable=False),
        sa.Column("plan_id", advanced_alchemy.types.guid.GUID(length=16), nullable=False),
        sa.Column("unit_id", advanced_alchemy.types.guid.GUID(length=16), nullable=False),
        sa.Column("official_name", sa.String(length=255), nullable=False),
        sa.Column("official_name_folded", sa.String(length=255), nullable=False),
        sa.Column("official_position", sa.String(length=255), nullable=True),
        sa.Column("official_status", sa.String(length=32), nullable=False),
        sa.Column("holds_management_post", sa.Boolean(), nullable=False),
        sa.Column("violation", sa.Text(), nullable=False),
        sa.Column("violation_date", sa.Date(), nullable=False),
        sa.Column("detected_date", sa.Date(), nullable=False),
        sa.Column("proposed_measure", sa.String(length=32), nullable=False),
        sa.Column("legal_basis", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("extended", sa.Boolean(), nullable=False),
        sa.Column("extension_reason", sa.Text(), nullable=True),
        sa.Column("decided_measure", sa.String(length=32), nullable=True),
        sa.Column("decision_number", sa.String(length=64), nullable=True),
        sa.Column("decision_date", sa.Date(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column(
            "closed_at", advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=True
        ),
        sa.Column("closed_by", advanced_alchemy.types.guid.GUID(length=16), nullable=True),
        sa.Column("proposed_by", advanced_alchemy.types.guid.GUID(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column(
            "created_at", advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False
        ),
        sa.Column(
            "updated_at", advanced_alchemy.types.datetime.DateTimeUTC(timezone=True), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["finding_id"],
            ["findings.id"],
            name=op.f("fk_discipline_proposals_finding_id_findings"),
        ),
        sa.ForeignKeyConstraint(
            ["plan_id"], ["plans.id"], name=op.f("fk_discipline_proposals_plan_id_plans")
        ),
        sa.ForeignKeyConstraint(
            ["proposed_by"], ["users.id"], name=op.f("fk_discipline_proposals_proposed_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["units.id"], name=op.f("fk_discipline_proposals_unit_id_units")
        ),
        sa.ForeignKeyConstraint(
            ["visit_id"], ["visits.id"], name=op.f("fk_discipline_proposals_visit_id_visits")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_discipline_proposals")),
    )
    with op.batch_alter_table("discipline_proposals", schema=None) as batch_op:
        batch_op.create_index(
            "ix_discipline_proposals_detected", ["detected_date", "id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_discipline_proposals_finding_id"), ["finding_id"], unique=False
        )
        batch_op.create_index(
            "ix_discipline_proposals_official", ["unit_id", "official_name_folded"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_discipline_proposals_plan_id"), ["plan_id"], unique=False
        )
        batch_op.create_index("ix_discipline_proposals_status", ["status"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_discipline_proposals_visit_id"), ["visit_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("discipline_proposals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_discipline_proposals_visit_id"))
        batch_op.drop_index("ix_discipline_proposals_status")
        batch_op.drop_index(batch_op.f("ix_discipline_proposals_plan_id"))
        batch_op.drop_index("ix_discipline_proposals_official")
        batch_op.drop_index(batch_op.f("ix_discipline_proposals_finding_id"))
        batch_op.drop_index("ix_discipline_proposals_detected")

    op.drop_table("discipline_proposals")
