"""Shared agendas: events with attendees and recurrence; the secret feed token."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import or_
from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from dossier_service.ical import RecurrenceError, normalise_rrule
from dossier_service.models.agenda import AgendaAttendee, AgendaEvent, AgendaFeedToken
from dossier_service.models.circle import CircleMember
from dossier_service.models.patient import Patient
from dossier_service.models.types import utcnow
from dossier_service.policy import Principal
from dossier_service.schemas import EventIn, EventUpdate
from dossier_service.services import journal
from dossier_service.services.circle import files_with_access
from dossier_service.services.errors import InvalidInput
from dossier_service.services.patch import apply_patch
from dossier_service.services.text import fr_datetime


def _check(event: AgendaEvent, types: Sequence[str]) -> None:
    if event.type not in types:
        raise InvalidInput("Type d'événement inconnu.", field="type")
    if event.ends_at <= event.starts_at:
        raise InvalidInput("La fin de l'événement doit suivre son début.", field="ends_at")
    if event.rrule:
        try:
            event.rrule = normalise_rrule(event.rrule)
        except RecurrenceError as exc:
            raise InvalidInput(str(exc), field="rrule") from exc


async def attendees_of(session: AsyncSession, *, event_ids: Sequence[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {e: [] for e in event_ids}
    if event_ids:
        rows = await session.exec(
            select(AgendaAttendee).where(col(AgendaAttendee.event_id).in_(event_ids))
        )
        for row in rows.all():
            out[row.event_id].append(row.user_id)
    return out


async def check_attendees(
    session: AsyncSession, *, owner: str, patient_id: str | None, users: Sequence[str]
) -> None:
    """Nobody is put in someone's agenda without a relation: for a patient's event, each
    attendee is a current member of that care circle with access; otherwise each shares a
    current care circle with the owner."""
    others = sorted(set(users) - {owner})
    if not others:
        return
    if patient_id is not None:
        files = select(CircleMember.patient_id).where(CircleMember.patient_id == patient_id)
    else:
        files = files_with_access(owner)
    rows = await session.exec(
        select(CircleMember.matrix_user_id).where(
            col(CircleMember.matrix_user_id).in_(others),
            col(CircleMember.patient_id).in_(files),
            col(CircleMember.ended_at).is_(None),
            col(CircleMember.has_access).is_(True),
        )
    )
    unrelated = set(others) - {u for u in rows.all() if u}
    if unrelated:
        where = "du cercle de soins de ce patient" if patient_id else "d'un de vos cercles de soins"
        raise InvalidInput(
            f"Participant(s) sans lien avec vous : ajoutez seulement des membres {where}.",
            field="attendees",
        )


async def withdraw(session: AsyncSession, *, event: AgendaEvent, user_id: str) -> bool:
    """An attendee leaves an event (she can always do so); False when she was not in it."""
    result = await session.exec(
        delete(AgendaAttendee).where(
            col(AgendaAttendee.event_id) == event.id, col(AgendaAttendee.user_id) == user_id
        )
    )
    return bool(result.rowcount)


async def _set_attendees(session: AsyncSession, event: AgendaEvent, users: Sequence[str]) -> None:
    await session.exec(delete(AgendaAttendee).where(col(AgendaAttendee.event_id) == event.id))
    for user in dict.fromkeys(users):
        session.add(AgendaAttendee(event_id=event.id, user_id=user))


async def create_event(
    session: AsyncSession,
    *,
    principal: Principal,
    data: EventIn,
    patient: Patient | None,
    event_types: Sequence[str],
) -> AgendaEvent:
    owner = data.owner if (data.owner and principal.privileged) else principal.author
    event = AgendaEvent(owner=owner, **data.model_dump(exclude={"attendees", "owner"}))
    _check(event, event_types)
    await check_attendees(session, owner=owner, patient_id=event.patient_id, users=data.attendees)
    session.add(event)
    await session.flush()
    await _set_attendees(session, event, data.attendees)
    if patient is not None:
        await journal.note(
            session,
            principal,
            patient,
            f"Ajout à l'agenda : {event.type} le {fr_datetime(event.starts_at)}",
        )
    await session.flush()
    return event


async def update_event(
    session: AsyncSession,
    *,
    principal: Principal,
    event: AgendaEvent,
    data: EventUpdate,
    event_types: Sequence[str],
) -> AgendaEvent:
    apply_patch(event, data, clearable={"rrule"}, exclude={"attendees"})
    _check(event, event_types)
    event.updated_at = utcnow()
    session.add(event)
    if data.attendees is not None:
        before = set((await attendees_of(session, event_ids=[event.id]))[event.id])
        added = [u for u in data.attendees if u not in before]
        await check_attendees(session, owner=event.owner, patient_id=event.patient_id, users=added)
        await _set_attendees(session, event, data.attendees)
    if event.patient_id is not None:
        verb = "Annulation" if data.cancelled else "Modification"
        await journal.notebook_event(
            session,
            patient_id=event.patient_id,
            author=principal.author,
            text=f"{verb} à l'agenda : {event.type} le {fr_datetime(event.starts_at)}",
        )
    await session.flush()
    return event


async def list_events(
    session: AsyncSession,
    *,
    user_id: str | None,
    start: datetime | None,
    end: datetime | None,
    patient_id: str | None = None,
    limit: int = 500,
) -> list[AgendaEvent]:
    """Events owned by or attended by ``user_id`` (or of ``patient_id``) that may overlap
    [start, end); recurring ones are returned once (expand with ``ical.occurrences``)."""
    query = select(AgendaEvent)
    if user_id is not None:
        attending = select(AgendaAttendee.event_id).where(AgendaAttendee.user_id == user_id)
        query = query.where(
            or_(col(AgendaEvent.owner) == user_id, col(AgendaEvent.id).in_(attending)),
            # a patient's events only while the person has access to that file
            or_(
                col(AgendaEvent.patient_id).is_(None),
                col(AgendaEvent.patient_id).in_(files_with_access(user_id)),
            ),
        )
    if patient_id is not None:
        query = query.where(AgendaEvent.patient_id == patient_id)
    if end is not None:
        query = query.where(AgendaEvent.starts_at < end)
    if start is not None:
        query = query.where(
            or_(col(AgendaEvent.rrule).is_not(None), col(AgendaEvent.ends_at) > start)
        )
    rows = await session.exec(query.order_by(col(AgendaEvent.starts_at)).limit(limit))
    return list(rows.all())


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


async def rotate_feed_token(session: AsyncSession, *, user_id: str) -> str:
    """A new secret for the user's iCalendar feed (the old URL stops working)."""
    secret = secrets.token_urlsafe(32)
    row = await session.get(AgendaFeedToken, user_id)
    if row is None:
        row = AgendaFeedToken(user_id=user_id, token_sha256=_hash(secret))
    else:
        row.token_sha256 = _hash(secret)
        row.created_at = utcnow()
    session.add(row)
    await session.flush()
    return secret


async def user_for_feed(session: AsyncSession, *, secret: str) -> str | None:
    if not secret or len(secret) > 100:
        return None
    rows = await session.exec(
        select(AgendaFeedToken).where(AgendaFeedToken.token_sha256 == _hash(secret))
    )
    row = rows.first()
    return row.user_id if row else None
