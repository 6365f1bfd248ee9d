"""FINESS structures in the directory (issue 18)

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TOKEN = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "annuaire_structure",
        sa.Column("finess", sa.Text(), nullable=False),
        sa.Column("legal_finess", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("long_name", sa.Text(), nullable=False),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("postcode", sa.Text(), nullable=False),
        sa.Column("city", sa.Text(), nullable=False),
        sa.Column("commune_code", sa.Text(), nullable=False),
        sa.Column("dept", sa.Text(), nullable=False),
        sa.Column("phone", sa.Text(), nullable=False),
        sa.Column("category_code", sa.Text(), nullable=False),
        sa.Column("category", sa.Text(), nullable=False),
        sa.Column("aggregate", sa.Text(), nullable=False),
        sa.Column("siret", sa.Text(), nullable=False),
        sa.Column("x", sa.Float(), nullable=True),
        sa.Column("y", sa.Float(), nullable=True),
        sa.Column("sort_key", sa.Text(), nullable=False),
        sa.Column("content_hash", sa.LargeBinary(), nullable=False),
        sa.Column("seen_run", sa.Integer(), nullable=False),
        sa.Column("active", sa.Integer(), server_default="1", nullable=False),
        sa.Column("updated_at", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("finess"),
    )
    with op.batch_alter_table("annuaire_structure", schema=None) as batch_op:
        batch_op.create_index("ix_annuaire_structure_siret", ["siret"], unique=False)
        batch_op.create_index("ix_annuaire_structure_legal", ["legal_finess"], unique=False)
    op.create_table(
        "annuaire_structure_key",
        sa.Column("finess", sa.Text(), nullable=False),
        sa.Column("token", TOKEN, nullable=False),
        sa.Column("dept", sa.Text(), nullable=False),
        sa.Column("category_code", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("finess", "token"),
        sqlite_with_rowid=False,
    )
    with op.batch_alter_table("annuaire_structure_key", schema=None) as batch_op:
        batch_op.create_index(
            "ix_annuaire_structure_key_token",
            ["token", "dept", "category_code", "finess"],
            unique=False,
        )


def downgrade() -> None:
    op.drop_table("annuaire_structure_key")
    op.drop_table("annuaire_structure")
