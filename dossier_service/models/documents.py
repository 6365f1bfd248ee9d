"""Documents of a file: metadata here, content stored outside the database by SHA-256."""

from datetime import datetime

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from dossier_service.models.types import UTCDateTime, new_id, utcnow


class Document(SQLModel, table=True):
    __tablename__ = "documents"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    patient_id: str = Field(foreign_key="patients.id", max_length=40, index=True)
    category: str = Field(max_length=100)
    filename: str = Field(max_length=255)
    sha256: str = Field(max_length=64, index=True)
    size: int
    mime_type: str = Field(max_length=100)
    restricted_to_roles: list[str] | None = Field(default=None, sa_column=Column(JSON))
    description: str = Field(default="", max_length=1000)
    uploaded_by: str = Field(max_length=255)
    uploaded_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
