"""Column types and identifiers shared by every aggregate."""

import base64
import secrets
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Table
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware (SQLite forgets zones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: timestamps are stored in UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def table_of(model: Any) -> Table:
    """The Core table of a SQLModel table class (for plain INSERT/SELECT on hot paths)."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    """An opaque identifier for rows (UUID4, text so SQLite and PostgreSQL agree)."""
    return str(uuid.uuid4())


def new_patient_id() -> str:
    """A pseudonymous patient id, e.g. ``P-K3XQ7M2D9A4TB``: carries no identity."""
    raw = base64.b32encode(secrets.token_bytes(10)).decode("ascii").rstrip("=")
    return f"P-{raw}"


class FileRow(SQLModel):
    """The columns of a row of a patient's file, first in its table: its id and the file's.
    The table indexes ``patient_id`` itself (alone, or with the column it is read by)."""

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    patient_id: str = Field(foreign_key="patients.id", max_length=40)
