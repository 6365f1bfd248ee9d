"""People as the pages show them: « NOM Prénom — profession », the Matrix id on hover.

Raw Matrix ids (``@marie.dupont:cercle.localhost``) mean little to a nurse. The names and
professions the care circles hold (entered on the page, or the Matrix display name the bot
passed on) are read once every ``ttl`` seconds into memory by a page middleware, so the
synchronous templates can show ``person(user_id)`` anywhere: header, circle, tasks,
notebook, agenda, documents. An id nobody named is shown as it is.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from aiohttp import web
from markupsafe import Markup, escape
from sqlmodel import col, select

from dossier_service import appkeys
from dossier_service.models.circle import CircleMember


@dataclass(frozen=True)
class Person:
    name: str
    profession: str = ""

    def label(self) -> str:
        return f"{self.name} — {self.profession}" if self.profession else self.name


def people_from(rows: Iterable[tuple[str, str, str, str]]) -> dict[str, Person]:
    """Pure: (matrix id, display name, profession, specialty) rows, oldest first → the
    latest name that is not the id itself, with the latest profession known."""
    found: dict[str, Person] = {}
    for user_id, name, profession, specialty in rows:
        known = found.get(user_id)
        name = name.strip()
        if not name or name == user_id:
            name = known.name if known else ""
        job = " — ".join(filter(None, [profession.strip(), specialty.strip()]))
        job = job or (known.profession if known else "")
        if name:
            found[user_id] = Person(name, job)
    return found


class People:
    """The names known to the care circles, refreshed at most every ``ttl`` seconds."""

    def __init__(self, ttl: float = 30.0) -> None:
        self.ttl = ttl
        self.known: dict[str, Person] = {}
        self._loaded_at = -1e9

    async def refresh(self, app: web.Application) -> None:
        if time.monotonic() - self._loaded_at < self.ttl:
            return
        query = (
            select(
                CircleMember.matrix_user_id,
                CircleMember.display_name,
                CircleMember.profession,
                CircleMember.specialty,
            )
            .where(col(CircleMember.matrix_user_id).is_not(None))
            .order_by(col(CircleMember.added_at))
        )
        async with app[appkeys.DATABASE].transaction() as session:
            rows = (await session.exec(query)).all()
        self.known = people_from((str(r[0]), r[1] or "", r[2] or "", r[3] or "") for r in rows)
        self._loaded_at = time.monotonic()

    def forget(self) -> None:
        """Read again at the next page (a circle just changed)."""
        self._loaded_at = -1e9

    def name(self, user_id: str | None) -> str:
        if not user_id:
            return ""
        person = self.known.get(user_id)
        return person.name if person else user_id

    def html(self, user_id: str | None, *, profession: bool = True) -> Markup:
        """``<span title="@id">NOM Prénom — profession</span>``; the id alone when unknown."""
        if not user_id:
            return Markup("—")
        person = self.known.get(user_id)
        if person is None:
            return Markup('<span class="personne">{}</span>').format(user_id)
        text = person.label() if profession else person.name
        return Markup('<span class="personne" title="{}">{}</span>').format(user_id, escape(text))


PEOPLE = web.AppKey("dossier_people", People)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def people_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Pages (not the API, not static files) see fresh names; a POST forgets them."""
    path = request.path
    if not path.startswith(("/api/", "/static/")):
        people = request.app[PEOPLE]
        if request.method == "POST":
            people.forget()
        else:
            await people.refresh(request.app)
    return await handler(request)
