"""activity events and extraction reports (issue 18: the activity extraction)

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

from dossier_service.migrations.columns import moment, text

revision: str = "0004"
down_revision: str | None = "0003"


def upgrade() -> None:
    op.create_table(
        "activity_events",
        text("id", 36),
        text("patient_id", 40),
        text("kind", 20),
        text("ref", 300),
        text("of_ref", 300, nullable=True),
        text("flag_kind", 20),
        moment("at"),
        text("day", 10),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["patient_id"], ["patients.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("kind", "ref", name="uq_activity_events_kind_ref"),
    )
    with op.batch_alter_table("activity_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_activity_events_kind_day", ["kind", "day", "patient_id"], unique=False
        )
        batch_op.create_index("ix_activity_events_of_ref", ["of_ref"], unique=False)
    op.create_table(
        "extraction_reports",
        text("id", 36),
        text("requested_by", 255),
        text("scope_kind", 20),
        text("structure_id", 64, nullable=True),
        text("scope_label", 300),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        text("status", 20),
        text("reason", 300),
        text("title", 400),
        text("xlsx_sha256", 64),
        text("csv_sha256", 64),
        moment("requested_at"),
        moment("claimed_at", nullable=True),
        moment("done_at", nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("extraction_reports", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_extraction_reports_requested_by"), ["requested_by"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("extraction_reports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_extraction_reports_requested_by"))
    op.drop_table("extraction_reports")
    with op.batch_alter_table("activity_events", schema=None) as batch_op:
        batch_op.drop_index("ix_activity_events_of_ref")
        batch_op.drop_index("ix_activity_events_kind_day")
    op.drop_table("activity_events")
