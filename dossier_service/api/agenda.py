"""Shared agendas: events over /api/v1/agenda (the secret iCalendar feed is agenda_feed.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import BaseModel
from sqlmodel.ext.asyncio.session import AsyncSession

from dossier_service import ical
from dossier_service.api.context import Ctx, open_file
from dossier_service.api.errors import ApiError, Denied
from dossier_service.api.operation import (
    READ_NAMED_FILE,
    WRITE_NAMED_FILE,
    Audit,
    Call,
    Operations,
    Param,
    person,
    row_access,
)
from dossier_service.api.serialize import dump
from dossier_service.models.agenda import AgendaEvent
from dossier_service.policy import Action
from dossier_service.schemas import EventIn, EventUpdate
from dossier_service.services import agenda

operations = Operations()
EVENTS = "/api/v1/agenda/events"
EVENT = EVENTS + "/{event_id}"


def dump_event(
    event: AgendaEvent, attendees: list[str], occurrences: list[Any] | None = None
) -> dict[str, Any]:
    body = {**dump(event), "attendees": attendees}
    if occurrences is not None:
        body["occurrences"] = [
            {"starts_at": s.isoformat(), "ends_at": e.isoformat()} for s, e in occurrences
        ]
    return body


async def event_access(
    session: AsyncSession, ctx: Ctx, event_id: str, action: Action
) -> AgendaEvent:
    """The event if the caller may ``action`` it. A patient's event needs current access to
    that file for every read and write, its owner's included (a member removed from the care
    circle loses the file's appointments); then only its owner writes it, and its
    attendees and the file's circle read it."""
    event = await session.get(AgendaEvent, event_id) if len(event_id) <= 36 else None
    if event is None:
        raise Denied(status=404, patient_id=None, resource="agenda", action=action.value)
    if event.patient_id is not None:
        await open_file(session, ctx, event.patient_id, action, f"agenda/{event.id}")
    me = ctx.principal.author if ctx.principal.kind == "service" else ctx.principal.user_id
    if ctx.principal.privileged or event.owner == me:
        return event
    if action is Action.READ:
        if event.patient_id is not None:
            return event
        attendees = (await agenda.attendees_of(session, event_ids=[event.id]))[event.id]
        if me in attendees:
            return event
    raise Denied(status=404, patient_id=event.patient_id, resource="agenda", action=action.value)


async def _event_row(call: Call, session: AsyncSession, action: Action) -> None:
    event = await event_access(session, call.ctx, call.path("event_id"), action)
    call.row = event
    call.audit_as(f"agenda/{event.id}", patient_id=event.patient_id)


READ_EVENT = row_access("event", _event_row, Action.READ)
WRITE_EVENT = row_access("event", _event_row, Action.WRITE)


async def _attendees(session: AsyncSession, event: AgendaEvent) -> list[str]:
    return (await agenda.attendees_of(session, event_ids=[event.id]))[event.id]


async def _check_period(call: Call) -> None:
    start, end, user = call.query["from"], call.query["to"], call.query["user"]
    if start and end and (end <= start or end - start > timedelta(days=400)):
        raise ApiError("M_INVALID_PARAM", "Période invalide (400 jours au plus).")
    if user and user != call.me.user_id and not call.me.privileged:
        raise ApiError("M_FORBIDDEN")
    return None


@operations.get(
    EVENTS,
    access=READ_NAMED_FILE,
    audit=Audit("read", "agenda"),
    query=(
        Param("from", "datetime"),
        Param("to", "datetime"),
        Param("patient_id"),
        Param("user"),
    ),
    before=_check_period,
)
async def list_events(call: Call, session: AsyncSession) -> tuple[int, Any]:
    start, end, patient_id, user = (call.query[k] for k in ("from", "to", "patient_id", "user"))
    who = None if patient_id else (user or (None if call.me.kind == "service" else call.me.user_id))
    events = await agenda.list_events(
        session, user_id=who, start=start, end=end, patient_id=patient_id
    )
    attendees = await agenda.attendees_of(session, event_ids=[e.id for e in events])
    items = []
    for e in events:
        occ = (
            ical.occurrences(e.starts_at, e.ends_at, e.rrule, start, end) if start and end else None
        )
        if occ == []:
            continue
        items.append(dump_event(e, attendees[e.id], occ))
    return 200, {"items": items}


@operations.post(
    EVENTS, access=WRITE_NAMED_FILE, audit=Audit("create", "agenda"), body=EventIn, idempotent=True
)
async def create_event(call: Call, session: AsyncSession) -> tuple[int, Any]:
    data = call.data(EventIn)
    event = await call.on_file(
        agenda.create_event, session, data=data, event_types=call.ctx.config.event_types
    )
    call.audit_as(f"agenda/{event.id}")
    return 201, dump_event(event, list(dict.fromkeys(data.attendees)))


@operations.get(EVENT, access=READ_EVENT, audit=Audit("read", "agenda"))
async def get_event(call: Call, session: AsyncSession) -> tuple[int, Any]:
    return 200, dump_event(call.row, await _attendees(session, call.row))


@operations.patch(EVENT, access=WRITE_EVENT, audit=Audit("update", "agenda"), body=EventUpdate)
async def update_event(call: Call, session: AsyncSession) -> tuple[int, Any]:
    event = await agenda.update_event(
        session,
        principal=call.me,
        event=call.row,
        data=call.data(EventUpdate),
        event_types=call.ctx.config.event_types,
    )
    return 200, dump_event(event, await _attendees(session, event))


@operations.delete(
    EVENT + "/attendees/me",
    access=person("Seule une personne peut se retirer d'un événement."),
    audit=Audit("update", "agenda"),
)
async def decline_event(call: Call, session: AsyncSession) -> tuple[int, Any]:
    """Leave an event you were added to (always possible, even without access to its file)."""
    event_id = call.path("event_id")
    event = await session.get(AgendaEvent, event_id) if len(event_id) <= 36 else None
    if event is None or not await agenda.withdraw(session, event=event, user_id=call.me.user_id):
        raise Denied(status=404, patient_id=None, resource="agenda", action="update")
    # no notebook entry and no patient id in the audit row: she may have lost the access
    call.audit_as(f"agenda/{event.id}")
    return 200, {}


class FeedAddress(BaseModel):
    url: str  # https://…/agenda/<secret>.ics


@operations.post(
    "/api/v1/agenda/feed",
    access=person("Seule une personne peut créer son flux d'agenda."),
    audit=Audit("update", "agenda.feed"),
    response=FeedAddress,
)
async def rotate_feed(call: Call, session: AsyncSession) -> tuple[int, Any]:
    """A (new) secret address for the caller's iCalendar feed; the previous one stops."""
    secret = await agenda.rotate_feed_token(session, user_id=call.me.user_id)
    return 201, {"url": f"{call.ctx.config.public_url}/agenda/{secret}.ics"}
