"""structure members, and circle members through a structure (issue 18)

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

from dossier_service.migrations.columns import moment, text, unbounded

revision: str = "0006"
down_revision: str | None = "0005"


def upgrade() -> None:
    op.create_table(
        "structure_members",
        text("id", 36),
        text("finess", 9),
        text("matrix_user_id", 255),
        text("display_name", 300),
        text("role", 20),
        text("source", 20),
        sa.Column("without_rpps", sa.Boolean(), nullable=False),
        text("added_by", 255),
        moment("added_at"),
        text("ended_by", 255, nullable=True),
        moment("ended_at", nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("structure_members", schema=None) as batch_op:
        batch_op.create_index("ix_structure_members_finess", ["finess", "ended_at"], unique=False)
        batch_op.create_index(
            "ix_structure_members_user", ["matrix_user_id", "ended_at"], unique=False
        )
    with op.batch_alter_table("circle_members", schema=None) as batch_op:
        batch_op.add_column(text("via_member_id", 36, nullable=True))
        batch_op.create_index("ix_circle_members_via", ["via_member_id"], unique=False)
    with op.batch_alter_table("annuaire_activity", schema=None) as batch_op:
        batch_op.add_column(unbounded("siret", default=""))
        batch_op.add_column(unbounded("finess", default=""))
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
