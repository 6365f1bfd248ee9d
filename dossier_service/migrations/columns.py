"""The columns, indexes and tables the migrations write, each said once (issue 14).

Each helper emits what Alembic generated for it, statement for statement: changing one
changes the DDL of every migration that calls it, which a migration already applied must
never do. Check the DDL is unchanged (``alembic upgrade head --sql`` on SQLite and
PostgreSQL, ``sqlite3 .schema`` after head) before changing one.
"""

from typing import Any

import sqlalchemy as sa
import sqlmodel
from alembic import op

import dossier_service.models.types


def text(name: str, length: int, *, nullable: bool = False) -> sa.Column[Any]:
    """A text of at most ``length`` characters (the models' ``str`` fields)."""
    return sa.Column(name, sqlmodel.sql.sqltypes.AutoString(length=length), nullable=nullable)


def unbounded(name: str, *, nullable: bool = False, default: str | None = None) -> sa.Column[Any]:
    """A text of any length (the directory's tables)."""
    return sa.Column(name, sa.Text(), server_default=default, nullable=nullable)


def counter(name: str, default: str = "0") -> sa.Column[Any]:
    """An integer the database starts at ``default`` (the directory's counts and flags)."""
    return sa.Column(name, sa.Integer(), server_default=default, nullable=False)


def moment(name: str, *, nullable: bool = False) -> sa.Column[Any]:
    """A timestamp, stored in UTC."""
    return sa.Column(
        name, dossier_service.models.types.UTCDateTime(timezone=True), nullable=nullable
    )


def sequence(name: str) -> sa.Column[Any]:
    """A growing row number (64 bits; SQLite's INTEGER, which is its row id)."""
    return sa.Column(
        name,
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        autoincrement=True,
        nullable=False,
    )


def to_patient() -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["patient_id"], ["patients.id"])


def create_file_table(name: str, *columns: sa.Column[Any]) -> None:
    """A table of one part of a patient's file: its rows have an ``id`` and belong to one
    patient (``patient_id``), then ``columns``."""
    op.create_table(
        name,
        text("id", 36),
        text("patient_id", 40),
        *columns,
        to_patient(),
        sa.PrimaryKeyConstraint("id"),
    )


def create_indexes(table: str, *indexes: tuple[str, list[str]]) -> None:
    """Non-unique indexes on ``table``: (name, columns) each."""
    with op.batch_alter_table(table, schema=None) as batch_op:
        for name, columns in indexes:
            batch_op.create_index(batch_op.f(name), columns, unique=False)


def drop_table(name: str, *indexes: str) -> None:
    """``indexes`` first, then the table."""
    if indexes:
        with op.batch_alter_table(name, schema=None) as batch_op:
            for index in indexes:
                batch_op.drop_index(batch_op.f(index))
    op.drop_table(name)
