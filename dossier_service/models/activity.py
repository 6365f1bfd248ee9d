"""Activity facts reported by the bot, for the activity extraction (issue 18): counts and
timestamps only, never content.

- ``messages``: the number of messages of a patient room on a Paris day (``ref`` =
  ``<room>|<day>``; the bot sends the day's running total, so a replay overwrites, never adds);
- ``signalement``: a flag raised (``ref`` = the command's event id, ``flag_kind``);
- ``prise_en_compte``: a flag acknowledged (``ref`` = the acknowledgement's event id,
  ``of_ref`` = the raised flag's ``ref``);
- ``export``: a PDF export of the conversation (``ref`` = the command's event id).
"""

from datetime import datetime

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from dossier_service.models.types import UTCDateTime, new_id

ACTIVITY_KINDS = ("messages", "signalement", "prise_en_compte", "export")


class ActivityEvent(SQLModel, table=True):
    __tablename__ = "activity_events"
    __table_args__ = (
        UniqueConstraint("kind", "ref", name="uq_activity_events_kind_ref"),
        Index("ix_activity_events_kind_day", "kind", "day", "patient_id"),
        Index("ix_activity_events_of_ref", "of_ref"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    patient_id: str = Field(foreign_key="patients.id", max_length=40)
    kind: str = Field(max_length=20)
    ref: str = Field(max_length=300)
    of_ref: str | None = Field(default=None, max_length=300)
    flag_kind: str = Field(default="", max_length=20)
    at: datetime = Field(sa_type=UTCDateTime)
    day: str = Field(max_length=10)  # Paris day, YYYY-MM-DD
    count: int = Field(default=1)
