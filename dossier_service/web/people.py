"""People as the pages show them: « NOM Prénom — profession », the Matrix id on hover.

Raw Matrix ids (``@marie.dupont:cercle.localhost``) mean little to a nurse. The names and
professions the care circles hold (entered on the page, or the Matrix display name the bot
passed on) are read for the people a page shows (:class:`People`), so the synchronous
templates can show ``person(user_id)`` anywhere: header, circle, tasks, notebook, agenda,
documents. An id nobody named is shown as it is.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web
from markupsafe import Markup, escape
from sqlmodel import col, select

from dossier_service.models.circle import CircleMember

if TYPE_CHECKING:
    from dossier_service.db import Database


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
    """The names of the people the pages show, read for those people only.

    A template asks ``person(user_id)`` while it renders (synchronously); a name this process
    does not know yet is noted, and :meth:`Pages.render` reads the noted ones in one indexed
    query (``matrix_user_id IN (…)``) and renders the page again. What was read is kept until
    a change can have made it stale — any POST of a page, a circle changed by another process
    (PostgreSQL notices), or ``ttl`` seconds (the bot's API writes) — and at most ``capacity``
    people. Reading every care circle of the platform into memory, as before, stalled every
    request for ~0.5–1 s each time it ran (40,000 circle rows for 10,000 patients; on SQLite
    the query runs in the event loop's thread), every 30 s and after every change.
    """

    def __init__(self, ttl: float = 30.0, capacity: int = 20_000) -> None:
        self.ttl = ttl
        self.capacity = capacity
        self.known: dict[str, Person | None] = {}  # None: read, nobody named her
        # what html() made of a known person (a file page names the same few a hundred times)
        self._shown: dict[tuple[str, bool], Markup] = {}
        self._since = time.monotonic()
        self._missing: ContextVar[set[str] | None] = ContextVar("people_missing", default=None)

    def forget(self) -> None:
        """Read again when next shown (a circle just changed)."""
        self.known.clear()
        self._shown.clear()
        self._since = time.monotonic()

    def expire(self) -> None:
        """At the start of a page: what was read ``ttl`` seconds ago or more is read again."""
        if time.monotonic() - self._since >= self.ttl or len(self.known) > self.capacity:
            self.forget()

    @contextmanager
    def noting_missing(self) -> Iterator[set[str]]:
        """Within: the ids asked for and not known yet are added to the yielded set."""
        missing: set[str] = set()
        token = self._missing.set(missing)
        try:
            yield missing
        finally:
            self._missing.reset(token)

    async def load(self, db: Database, user_ids: Iterable[str]) -> None:
        """Read these people's names and professions from the care circles."""
        wanted = sorted(set(user_ids))
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            query = (
                select(
                    CircleMember.matrix_user_id,
                    CircleMember.display_name,
                    CircleMember.profession,
                    CircleMember.specialty,
                )
                .where(col(CircleMember.matrix_user_id).in_(chunk))
                .order_by(col(CircleMember.added_at))
            )
            async with db.sessions() as session:
                rows = (await session.exec(query)).all()
            found = people_from((str(r[0]), r[1] or "", r[2] or "", r[3] or "") for r in rows)
            for user_id in chunk:
                self.known[user_id] = found.get(user_id)
                self._shown.pop((user_id, True), None)
                self._shown.pop((user_id, False), None)

    def _person(self, user_id: str) -> Person | None:
        if user_id in self.known:
            return self.known[user_id]
        missing = self._missing.get()
        if missing is not None:
            missing.add(user_id)
        return None

    def name(self, user_id: str | None) -> str:
        if not user_id:
            return ""
        person = self._person(user_id)
        return person.name if person else user_id

    def html(self, user_id: str | None, *, profession: bool = True) -> Markup:
        """``<span title="@id">NOM Prénom — profession</span>``; the id alone when unknown."""
        if not user_id:
            return Markup("—")
        shown = self._shown.get((user_id, profession))
        if shown is not None:
            return shown
        person = self._person(user_id)
        # escape() and an f-string, not Markup.format: that one runs string.Formatter in
        # Python, ~20 µs a call, and a file page names a hundred people
        if person is None:
            shown = Markup(f'<span class="personne">{escape(user_id)}</span>')
        else:
            text = person.label() if profession else person.name
            shown = Markup(
                f'<span class="personne" title="{escape(user_id)}">{escape(text)}</span>'
            )
        if user_id in self.known:  # read: what it shows stays until forgotten or read again
            self._shown[(user_id, profession)] = shown
        return shown


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
            people.expire()
    return await handler(request)
