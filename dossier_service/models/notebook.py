"""The liaison notebook (cahier de liaison / fil d'actualité)."""

from datetime import datetime

from sqlalchemy import Index
from sqlmodel import Field

from dossier_service.models.types import FileRow, UTCDateTime, utcnow

# "evenement": written automatically by a change; the others are written by people.
ENTRY_KINDS = ("evenement", "note", "transmission", "signalement")


class NotebookEntry(FileRow, table=True):
    __tablename__ = "notebook_entries"
    __table_args__ = (Index("ix_notebook_entries_patient", "patient_id", "created_at"),)

    kind: str = Field(max_length=20)
    text: str = Field(max_length=8000)
    author: str = Field(max_length=255)
    source: str = Field(default="web", max_length=20)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
