"""Tasks and their assignees (people or a structure)."""

from datetime import date, datetime

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, SQLModel

from dossier_service.models.types import UTCDateTime, new_id, utcnow

TASK_STATES = ("à faire", "en cours", "fait", "annulé")
OPEN_STATES = frozenset({"à faire", "en cours"})
TASK_LEVELS = ("basse", "normale", "haute", "urgente")


class Task(SQLModel, table=True):
    __tablename__ = "tasks"
    __table_args__ = (Index("ix_tasks_state_due", "state", "due_date"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    patient_id: str | None = Field(
        default=None, foreign_key="patients.id", max_length=40, index=True
    )
    type: str = Field(max_length=100)
    subtypes: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    level: str = Field(default="normale", max_length=20)
    label: str = Field(max_length=500)
    due_date: date | None = None
    state: str = Field(default="à faire", max_length=20)
    comment: str = Field(default="", max_length=4000)
    form_id: str | None = Field(default=None, max_length=100)
    document_ids: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_by: str = Field(max_length=255)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)

    def is_overdue(self, today: date) -> bool:
        return self.state in OPEN_STATES and self.due_date is not None and self.due_date < today


class TaskAssignee(SQLModel, table=True):
    """``kind`` is "personne" (a Matrix user id) or "structure" (a structure name)."""

    __tablename__ = "task_assignees"

    task_id: str = Field(foreign_key="tasks.id", primary_key=True, max_length=36)
    kind: str = Field(primary_key=True, max_length=20)
    ref: str = Field(primary_key=True, max_length=255, index=True)
