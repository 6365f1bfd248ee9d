"""session revocations (issue 12: logout and deactivated accounts end dossier sessions)

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from dossier_service.migrations.columns import moment, text

revision: str = "0002"
down_revision: str | None = "0001"


def upgrade() -> None:
    op.create_table(
        "session_revocations",
        text("id", 36),
        text("user_id", 255),
        text("nonce_sha256", 64, nullable=True),
        moment("revoked_at"),
        moment("expires_at", nullable=True),
        text("reason", 40),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("session_revocations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_session_revocations_nonce_sha256"), ["nonce_sha256"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_session_revocations_user_id"), ["user_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("session_revocations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_session_revocations_user_id"))
        batch_op.drop_index(batch_op.f("ix_session_revocations_nonce_sha256"))
    op.drop_table("session_revocations")
