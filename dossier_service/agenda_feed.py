"""The subscribed calendar: ``GET /agenda/<secret>.ics``, outside /api/v1 (no login: phones
cannot; the secret in the URL is the key). Its read is audited like any other."""

from __future__ import annotations

import re
from datetime import timedelta

from aiohttp import web

from dossier_service import appkeys, bounded, ical
from dossier_service.models.types import utcnow
from dossier_service.services import agenda, journal

routes = web.RouteTableDef()
_SECRET = re.compile(r"^[A-Za-z0-9_\-]{20,100}$")


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
        await journal.audit_own_act(
            session, user_id, action="read", resource="agenda.feed", remote=request.remote
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
