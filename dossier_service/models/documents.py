"""Documents of a file: metadata here, content stored outside the database by SHA-256."""

from datetime import datetime

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field

from dossier_service.models.types import FileRow, UTCDateTime, utcnow


class Document(FileRow, table=True):
    __tablename__ = "documents"
    __table_args__ = (Index("ix_documents_patient_id", "patient_id"),)

    category: str = Field(max_length=100)
    filename: str = Field(max_length=255)
    sha256: str = Field(max_length=64, index=True)
    size: int
    mime_type: str = Field(max_length=100)
    restricted_to_roles: list[str] | None = Field(default=None, sa_column=Column(JSON))
    description: str = Field(default="", max_length=1000)
    uploaded_by: str = Field(max_length=255)
    uploaded_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
