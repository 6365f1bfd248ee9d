"""Shared agendas: day / week / month / list views, new appointments, and the secret
iCalendar subscription of each professional (RFC 5545, rendered by ``dossier_service.ical``)."""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote

from aiohttp import web
from pydantic import ValidationError

from deployment.conventions import MATRIX_USER_ID, PARIS
from dossier_service import bounded
from dossier_service.api.agenda import event_access
from dossier_service.api.context import open_file
from dossier_service.ical import (
    RecurrenceError,
    normalise_rrule,
    paris_day_bounds,
)
from dossier_service.models.agenda import AgendaFeedToken
from dossier_service.policy import Action
from dossier_service.schemas import EventIn, EventUpdate
from dossier_service.services import agenda as agenda_service
from dossier_service.services import patients as patients_service
from dossier_service.services.errors import ServiceError
from dossier_service.web.agenda_view import VIEWS, build_agenda, weekday_headers
from dossier_service.web.pagectx import (
    PageInputError,
    french_validation,
    optional,
    page_context,
    parse_day,
    parse_local_datetime,
    posted_form,
    text,
)
from dossier_service.web.pages_login import PAGES
from dossier_service.web.rendering import display_name

routes = web.RouteTableDef()
FEED_PAST_DAYS = 90
FEED_FUTURE_DAYS = 400
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{20,100}$")


async def _render(
    request: web.Request,
    *,
    feed_url: str | None = None,
    error: str | None = None,
    status: int = 200,
) -> web.Response:
    ctx = page_context(request)
    today = ctx.today()
    view = request.query.get("vue", "semaine")
    view = view if view in VIEWS else "semaine"
    try:
        anchor = (
            bounded.parse_day(request.query.get("date", "")) if request.query.get("date") else today
        )
    except ValueError:
        anchor = today
    member = request.query.get("membre", "").strip()
    if member and not re.match(MATRIX_USER_ID, member):
        member = ""
    who = member or ctx.principal.user_id
    type_filter = request.query.get("type", "")
    page_probe = build_agenda(view, anchor, [], today=today)
    start = paris_day_bounds(page_probe.start)[0]
    end = paris_day_bounds(page_probe.end)[0]
    async with ctx.db.transaction() as session:
        events = await agenda_service.list_events(session, user_id=who, start=start, end=end)
        visible, _ = await patients_service.list_patients(
            session, principal=ctx.principal, limit=500
        )
        names = {p.id: display_name(p) for p in visible}
        # a patient's name is shown only to those who may open the file
        attendees = await agenda_service.attendees_of(session, event_ids=[e.id for e in events])
        feed = await session.get(AgendaFeedToken, ctx.principal.user_id)
        await ctx.audit(session, action="read", resource="page:agenda", patient_id=None)
    if type_filter:
        events = [e for e in events if e.type == type_filter]
    shown: list[Any] = list(events)
    if who != ctx.principal.user_id:
        shown = [_masked(e) if e.patient_id and e.patient_id not in names else e for e in events]
    page = build_agenda(view, anchor, shown, today=today)
    scope = ""
    if member:
        scope += f"&membre={quote(member, safe='')}"
    if type_filter:
        scope += f"&type={quote(type_filter, safe='')}"
    return await request.app[PAGES].render(
        request,
        "agenda.html",
        {
            "nav": "agenda",
            "page": page,
            "weekday_headers": weekday_headers(),
            "event_types": ctx.config.event_types,
            "type_filter": type_filter,
            "member_filter": member,
            "scope_q": scope,
            "patient_names": names,
            "patient_choices": sorted(names.items(), key=lambda kv: kv[1]),
            "attendees": attendees,
            "feed_url": feed_url,
            "me": ctx.principal.user_id,
            "has_feed": feed is not None,
            "error": error,
            "notice": "Rendez-vous ajouté." if request.query.get("ok") == "rdv" else None,
        },
        status=status,
    )


def _masked(event: Any) -> SimpleNamespace:
    """Someone else's appointment about a file the viewer cannot open: only "busy"."""
    return SimpleNamespace(
        id=event.id,
        type=event.type,
        title="Occupé",
        starts_at=event.starts_at,
        ends_at=event.ends_at,
        rrule=event.rrule,
        location="",
        description="",
        patient_id=None,
        cancelled=event.cancelled,
        owner=None,
    )


@routes.get("/agenda")
async def agenda_page(request: web.Request) -> web.StreamResponse:
    return await _render(request)


def _rrule_from(form: Any) -> str | None:
    base = text(form, "recurrence")
    if not base:
        return None
    until = parse_day(text(form, "until"))
    rule = base + (f";UNTIL={until.isoformat()}" if until else "")
    try:
        return normalise_rrule(rule)
    except RecurrenceError as exc:
        raise PageInputError(str(exc)) from None


@routes.post("/agenda/evenements")
async def create_event(request: web.Request) -> web.StreamResponse:
    ctx = page_context(request)
    form = await posted_form(request, ctx)
    try:
        attendees = [a.strip() for a in text(form, "attendees").split(",") if a.strip()]
        data = EventIn.model_validate(
            {
                "type": text(form, "type"),
                "title": text(form, "title"),
                "patient_id": optional(form, "patient_id"),
                "starts_at": parse_local_datetime(text(form, "starts_at"), "début"),
                "ends_at": parse_local_datetime(text(form, "ends_at"), "fin"),
                "rrule": _rrule_from(form),
                "location": text(form, "location"),
                "attendees": attendees,
            },
            strict=False,
        )
        async with ctx.db.transaction() as session:
            patient = None
            if data.patient_id:
                patient = (
                    await open_file(session, ctx, data.patient_id, Action.WRITE, "page:agenda")
                ).patient
            await agenda_service.create_event(
                session,
                principal=ctx.principal,
                data=data,
                patient=patient,
                event_types=ctx.config.event_types,
            )
            await ctx.audit(
                session, action="create", resource="page:agenda", patient_id=data.patient_id
            )
    except ValidationError as exc:
        return await _render(request, error=french_validation(exc), status=400)
    except PageInputError as exc:
        return await _render(request, error=exc.message, status=400)
    except ServiceError as exc:
        return await _render(request, error=exc.message, status=exc.status)
    raise web.HTTPSeeOther("/agenda?ok=rdv")


@routes.post("/agenda/evenements/{eid}/annulation")
async def cancel_event(request: web.Request) -> web.StreamResponse:
    """The owner (or an admin) cancels an appointment; it stays visible, struck through."""
    ctx = page_context(request)
    await posted_form(request, ctx)
    try:
        async with ctx.db.transaction() as session:
            # the API's rule: the patient's file access first, then only the owner writes
            event = await event_access(session, ctx, request.match_info["eid"][:36], Action.WRITE)
            await agenda_service.update_event(
                session,
                principal=ctx.principal,
                event=event,
                data=EventUpdate(cancelled=True),
                event_types=ctx.config.event_types,
            )
            await ctx.audit(
                session, action="update", resource="page:agenda", patient_id=event.patient_id
            )
    except ServiceError as exc:
        if exc.status == 404:
            raise web.HTTPNotFound() from None
        return await _render(request, error=exc.message, status=exc.status)
    day = event.starts_at.astimezone(PARIS).date().isoformat()
    raise web.HTTPSeeOther(f"/agenda?vue=jour&date={day}")


@routes.post("/agenda/abonnement")
async def rotate_feed(request: web.Request) -> web.StreamResponse:
    ctx = page_context(request)
    await posted_form(request, ctx)
    async with ctx.db.transaction() as session:
        secret = await agenda_service.rotate_feed_token(session, user_id=ctx.principal.user_id)
        await ctx.audit(session, action="update", resource="page:agenda.feed", patient_id=None)
    url = f"{ctx.config.public_url}/agenda/{secret}.ics"  # served by agenda_feed.py
    return await _render(request, feed_url=url)
