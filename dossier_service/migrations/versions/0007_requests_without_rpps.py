"""account requests without RPPS: a FINESS structure and a social role; the search text
of a structure's members without RPPS (issue 18)

Revision ID: 0007
Revises: 0006
"""

from alembic import op

from dossier_service.migrations.columns import unbounded

revision: str = "0007"
down_revision: str | None = "0006"


def upgrade() -> None:
    with op.batch_alter_table("annuaire_account_request", schema=None) as batch_op:
        batch_op.add_column(unbounded("finess", nullable=True))
        batch_op.add_column(unbounded("social_role", nullable=True))
        batch_op.create_index("ix_annuaire_request_finess", ["finess", "status"], unique=False)
    with op.batch_alter_table("structure_members", schema=None) as batch_op:
        batch_op.add_column(unbounded("search_text", default=""))


def downgrade() -> None:
    with op.batch_alter_table("structure_members", schema=None) as batch_op:
        batch_op.drop_column("search_text")
    with op.batch_alter_table("annuaire_account_request", schema=None) as batch_op:
        batch_op.drop_index("ix_annuaire_request_finess")
        batch_op.drop_column("social_role")
        batch_op.drop_column("finess")
