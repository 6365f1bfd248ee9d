"""structure members, and circle members through a structure (issue 18)

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import dossier_service.models.types

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "structure_members",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("finess", sqlmodel.sql.sqltypes.AutoString(length=9), nullable=False),
        sa.Column("matrix_user_id", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("display_name", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("role", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("without_rpps", sa.Boolean(), nullable=False),
        sa.Column("added_by", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column(
            "added_at", dossier_service.models.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("ended_by", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
        sa.Column(
            "ended_at", dossier_service.models.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("structure_members", schema=None) as batch_op:
        batch_op.create_index("ix_structure_members_finess", ["finess", "ended_at"], unique=False)
        batch_op.create_index(
            "ix_structure_members_user", ["matrix_user_id", "ended_at"], unique=False
        )
    with op.batch_alter_table("circle_members", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("via_member_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=True)
        )
        batch_op.create_index("ix_circle_members_via", ["via_member_id"], unique=False)
    with op.batch_alter_table("annuaire_activity", schema=None) as batch_op:
        batch_op.add_column(sa.Column("siret", sa.Text(), server_default="", nullable=False))
        batch_op.add_column(sa.Column("finess", sa.Text(), server_default="", nullable=False))
        batch_op.create_index("ix_annuaire_activity_finess", ["finess"], unique=False)
        batch_op.create_index("ix_annuaire_activity_siret", ["siret"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("annuaire_activity", schema=None) as batch_op:
        batch_op.drop_index("ix_annuaire_activity_siret")
        batch_op.drop_index("ix_annuaire_activity_finess")
        batch_op.drop_column("finess")
        batch_op.drop_column("siret")
    with op.batch_alter_table("circle_members", schema=None) as batch_op:
        batch_op.drop_index("ix_circle_members_via")
        batch_op.drop_column("via_member_id")
    op.drop_table("structure_members")
