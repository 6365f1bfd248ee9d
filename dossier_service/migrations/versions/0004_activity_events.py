"""activity events and extraction reports (issue 18: the activity extraction)

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import dossier_service.models.types

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "activity_events",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("patient_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("ref", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("of_ref", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=True),
        sa.Column("flag_kind", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("at", dossier_service.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("day", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
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
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("requested_by", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("scope_kind", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("structure_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("scope_label", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("title", sqlmodel.sql.sqltypes.AutoString(length=400), nullable=False),
        sa.Column("xlsx_sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("csv_sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column(
            "requested_at", dossier_service.models.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "claimed_at", dossier_service.models.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column(
            "done_at", dossier_service.models.types.UTCDateTime(timezone=True), nullable=True
        ),
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
