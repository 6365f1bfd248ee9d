"""FINESS structures in the directory (issue 18)

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

from dossier_service.migrations.columns import counter, unbounded

revision: str = "0005"
down_revision: str | None = "0004"

TOKEN = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "annuaire_structure",
        unbounded("finess"),
        unbounded("legal_finess"),
        unbounded("name"),
        unbounded("long_name"),
        unbounded("address"),
        unbounded("postcode"),
        unbounded("city"),
        unbounded("commune_code"),
        unbounded("dept"),
        unbounded("phone"),
        unbounded("category_code"),
        unbounded("category"),
        unbounded("aggregate"),
        unbounded("siret"),
        sa.Column("x", sa.Float(), nullable=True),
        sa.Column("y", sa.Float(), nullable=True),
        unbounded("sort_key"),
        sa.Column("content_hash", sa.LargeBinary(), nullable=False),
        sa.Column("seen_run", sa.Integer(), nullable=False),
        counter("active", "1"),
        unbounded("updated_at"),
        sa.PrimaryKeyConstraint("finess"),
    )
    with op.batch_alter_table("annuaire_structure", schema=None) as batch_op:
        batch_op.create_index("ix_annuaire_structure_siret", ["siret"], unique=False)
        batch_op.create_index("ix_annuaire_structure_legal", ["legal_finess"], unique=False)
    op.create_table(
        "annuaire_structure_key",
        unbounded("finess"),
        sa.Column("token", TOKEN, nullable=False),
        unbounded("dept"),
        unbounded("category_code"),
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
