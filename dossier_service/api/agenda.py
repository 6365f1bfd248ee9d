"""Shared agendas: events over /api/v1/agenda, and the secret iCalendar feed /agenda/<s>.ics."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from aiohttp import web
from sqlmodel.ext.asyncio.session import AsyncSession

from dossier_service import appkeys, bounded, ical
from dossier_service.api.context import (
    Ctx,
    context,
    open_file,
    parse_model,
    query_datetime,
    read_raw,
)
from dossier_service.api.errors import ApiError, Denied
from dossier_service.api.runner import idempotency_key, run
from dossier_service.api.serialize import dump
from dossier_service.models.agenda import AgendaEvent
from dossier_service.models.types import utcnow
from dossier_service.policy import Action, Principal
from dossier_service.schemas import EventIn, EventUpdate
from dossier_service.services import agenda, journal

routes = web.RouteTableDef()
_SECRET = re.compile(r"^[A-Za-z0-9_\-]{20,100}$")


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


@routes.get("/api/v1/agenda/events")
async def list_events(request: web.Request) -> web.Response:
    ctx = context(request)
    start = query_datetime(request, "from")
    end = query_datetime(request, "to")
    if start and end and (end <= start or end - start > timedelta(days=400)):
        raise ApiError("M_INVALID_PARAM", "Période invalide (400 jours au plus).")
    patient_id = request.query.get("patient_id") or None
    user = request.query.get("user") or None
    if user and user != ctx.principal.user_id and not ctx.principal.privileged:
        raise ApiError("M_FORBIDDEN")

    async def work(session: AsyncSession) -> tuple[int, Any]:
        if patient_id:
            await open_file(session, ctx, patient_id, Action.READ, "agenda")
        who = (
            None
            if patient_id
            else (user or (None if ctx.principal.kind == "service" else ctx.principal.user_id))
        )
        await ctx.audit(session, action="read", resource="agenda", patient_id=patient_id)
        events = await agenda.list_events(
            session, user_id=who, start=start, end=end, patient_id=patient_id
        )
        attendees = await agenda.attendees_of(session, event_ids=[e.id for e in events])
        items = []
        for e in events:
            occ = (
                ical.occurrences(e.starts_at, e.ends_at, e.rrule, start, end)
                if (start and end)
                else None
            )
            if occ == []:
                continue
            items.append(dump_event(e, attendees[e.id], occ))
        return 200, {"items": items}

    return await run(ctx, work)


@routes.post("/api/v1/agenda/events")
async def create_event(request: web.Request) -> web.Response:
    ctx = context(request)
    raw = await read_raw(request)
    data = parse_model(EventIn, raw)

    async def work(session: AsyncSession) -> tuple[int, Any]:
        patient = None
        if data.patient_id:
            patient = (
                await open_file(session, ctx, data.patient_id, Action.WRITE, "agenda")
            ).patient
        event = await agenda.create_event(
            session,
            principal=ctx.principal,
            data=data,
            patient=patient,
            event_types=ctx.config.event_types,
        )
        await ctx.audit(
            session, action="create", resource=f"agenda/{event.id}", patient_id=data.patient_id
        )
        return 201, dump_event(event, list(dict.fromkeys(data.attendees)))

    return await run(ctx, work, key=idempotency_key(request), raw=raw)


@routes.get("/api/v1/agenda/events/{event_id}")
async def get_event(request: web.Request) -> web.Response:
    ctx = context(request)

    async def work(session: AsyncSession) -> tuple[int, Any]:
        event = await event_access(session, ctx, request.match_info["event_id"], Action.READ)
        await ctx.audit(
            session, action="read", resource=f"agenda/{event.id}", patient_id=event.patient_id
        )
        return 200, dump_event(
            event, (await agenda.attendees_of(session, event_ids=[event.id]))[event.id]
        )

    return await run(ctx, work)


@routes.patch("/api/v1/agenda/events/{event_id}")
async def update_event(request: web.Request) -> web.Response:
    ctx = context(request)
    data = parse_model(EventUpdate, await read_raw(request))

    async def work(session: AsyncSession) -> tuple[int, Any]:
        event = await event_access(session, ctx, request.match_info["event_id"], Action.WRITE)
        await ctx.audit(
            session, action="update", resource=f"agenda/{event.id}", patient_id=event.patient_id
        )
        event = await agenda.update_event(
            session,
            principal=ctx.principal,
            event=event,
            data=data,
            event_types=ctx.config.event_types,
        )
        return 200, dump_event(
            event, (await agenda.attendees_of(session, event_ids=[event.id]))[event.id]
        )

    return await run(ctx, work)


def _person(request: web.Request, refusal: str) -> Ctx:
    """The caller, who must be a person (not the bot's service token)."""
    ctx = context(request)
    if ctx.principal.kind != "user":
        raise ApiError("M_FORBIDDEN", refusal)
    return ctx


@routes.delete("/api/v1/agenda/events/{event_id}/attendees/me")
async def decline_event(request: web.Request) -> web.Response:
    """Leave an event you were added to (always possible, even without access to its file)."""
    ctx = _person(request, "Seule une personne peut se retirer d'un événement.")

    async def work(session: AsyncSession) -> tuple[int, Any]:
        event_id = request.match_info["event_id"]
        event = await session.get(AgendaEvent, event_id) if len(event_id) <= 36 else None
        if event is None or not await agenda.withdraw(
            session, event=event, user_id=ctx.principal.user_id
        ):
            raise Denied(status=404, patient_id=None, resource="agenda", action="update")
        # no notebook entry and no patient id in the audit row: she may have lost the access
        await ctx.audit(session, action="update", resource=f"agenda/{event.id}", patient_id=None)
        return 200, {}

    return await run(ctx, work)


@routes.post("/api/v1/agenda/feed")
async def rotate_feed(request: web.Request) -> web.Response:
    """A (new) secret address for the caller's iCalendar feed; the previous one stops."""
    ctx = _person(request, "Seule une personne peut créer son flux d'agenda.")

    async def work(session: AsyncSession) -> tuple[int, Any]:
        secret = await agenda.rotate_feed_token(session, user_id=ctx.principal.user_id)
        await ctx.audit(session, action="update", resource="agenda.feed", patient_id=None)
        return 201, {"url": f"{ctx.config.public_url}/agenda/{secret}.ics"}

    return await run(ctx, work)


@routes.get("/agenda/{secret}.ics")
async def feed(request: web.Request) -> web.Response:
    """The subscribed calendar: no login (phones cannot), the secret in the URL is the key."""
    secret = request.match_info["secret"]
    if not _SECRET.match(secret):
        raise web.HTTPNotFound()
    db = request.app[appkeys.DATABASE]
    now = utcnow()
    async with db.transaction() as session:
        user_id = await agenda.user_for_feed(session, secret=secret)
        if user_id is None:
            raise web.HTTPNotFound()
        events = await agenda.list_events(
            session, user_id=user_id, start=now - timedelta(days=180), end=None, limit=2000
        )
        await journal.audit(
            session,
            principal=Principal(user_id=user_id),
            action="read",
            resource="agenda.feed",
            patient_id=None,
            remote=request.remote or "",
        )
    # rows written before dates were bounded (year 9999) are left out rather than break it
    events = [e for e in events if bounded.in_bounds(e.starts_at) and bounded.in_bounds(e.ends_at)]
    calendar = ical.render_calendar(
        [
            ical.CalendarEvent(
                uid=f"{e.id}@cercle",
                summary=f"{e.type} — {e.title}",
                start=e.starts_at,
                end=e.ends_at,
                description=e.description,
                location=e.location,
                categories=(e.type,),
                rrule=e.rrule,
                cancelled=e.cancelled,
                last_modified=e.updated_at,
            )
            for e in events
        ],
        name=f"Cercle — {user_id}",
        now=now,
    )
    return web.Response(
        text=calendar,
        content_type="text/calendar",
        charset="utf-8",
        headers={"Cache-Control": "private, max-age=300", "Referrer-Policy": "no-referrer"},
    )
