"""session revocations (issue 12: logout and deactivated accounts end dossier sessions)

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import dossier_service.models.types

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "session_revocations",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("user_id", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("nonce_sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column(
            "revoked_at", dossier_service.models.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "expires_at", dossier_service.models.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
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
