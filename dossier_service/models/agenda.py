"""Shared agendas: events, attendees, and the secret iCalendar feed token per professional."""

from datetime import datetime

from sqlmodel import Field, SQLModel

from dossier_service.models.types import UTCDateTime, new_id, utcnow


class AgendaEvent(SQLModel, table=True):
    __tablename__ = "agenda_events"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    type: str = Field(max_length=100)
    title: str = Field(max_length=300)
    owner: str = Field(max_length=255, index=True)
    patient_id: str | None = Field(
        default=None, foreign_key="patients.id", max_length=40, index=True
    )
    starts_at: datetime = Field(sa_type=UTCDateTime, index=True)
    ends_at: datetime = Field(sa_type=UTCDateTime)
    rrule: str | None = Field(default=None, max_length=500)
    location: str = Field(default="", max_length=500)
    description: str = Field(default="", max_length=4000)
    cancelled: bool = False
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class AgendaAttendee(SQLModel, table=True):
    __tablename__ = "agenda_attendees"

    event_id: str = Field(foreign_key="agenda_events.id", primary_key=True, max_length=36)
    user_id: str = Field(primary_key=True, max_length=255, index=True)


class AgendaFeedToken(SQLModel, table=True):
    """Only the SHA-256 of the secret is stored; the secret is shown once, at creation."""

    __tablename__ = "agenda_feed_tokens"

    user_id: str = Field(primary_key=True, max_length=255)
    token_sha256: str = Field(max_length=64, unique=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
