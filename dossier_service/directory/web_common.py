"""What the directory's pages share: their state, HTML responses, forms and CSRF.

CSRF is the dossier's one scheme (:mod:`dossier_service.auth`): a logged-in person's forms
carry the token bound to their session; the forms filled in without a session (account
request, activation) carry a signed nonce equal to a cookie (double submit).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import secrets
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

import jinja2
from aiohttp import web

from deployment.conventions import PARIS
from deployment.incidents import new_reference
from dossier_service.auth import (
    CSRF_FIELD,
    FORM_CSRF_COOKIE,
    form_csrf_matches,
    form_csrf_token,
)
from dossier_service.config import DossierConfig

from .account_requests import AccountRequests, HomeserverAdmin
from .database import Connection
from .search import Directory, SearchResult
from .structure_rows import WithoutRpps, search_without_rpps
from .structures import StructureHit, StructureResult, search_structures, structure
from .web_security import RateLimiter

log = logging.getLogger("dossier_service.directory.web")
T = TypeVar("T")
MAX_FORM_BYTES = 16 * 1024


class Viewer(Protocol):
    @property
    def user_id(self) -> str: ...

    @property
    def is_admin(self) -> bool: ...

    @property
    def csrf(self) -> str | None: ...  # the session's CSRF token; None: no cookie session


Authenticate = Callable[[web.Request], Awaitable[Viewer | None]]
AdminApiFactory = Callable[[], AbstractAsyncContextManager[HomeserverAdmin]]


@dataclass
class DirectoryState:
    config: DossierConfig
    searchers: queue.SimpleQueue[Directory]  # one read connection each, used by one thread
    write_conn: Connection
    requests: AccountRequests
    limiter: RateLimiter
    templates: jinja2.Environment
    authenticate: Authenticate
    admin_api: AdminApiFactory | None

    async def search(self, text: str, **kw: Any) -> SearchResult:
        def run() -> SearchResult:
            directory = self.searchers.get()
            try:
                return directory.search(text, **kw)
            finally:
                self.searchers.put(directory)

        return await asyncio.to_thread(run)

    async def search_structures(self, text: str, **kw: Any) -> StructureResult:
        def run() -> StructureResult:
            directory = self.searchers.get()
            try:
                return search_structures(directory.conn, text, **kw)
            finally:
                self.searchers.put(directory)

        return await asyncio.to_thread(run)

    async def read(self, work: Callable[[Connection], T]) -> T:
        """``work`` on a search connection, in a worker thread."""

        def run() -> T:
            directory = self.searchers.get()
            try:
                return work(directory.conn)
            finally:
                self.searchers.put(directory)

        return await asyncio.to_thread(run)

    async def structure(self, finess: str) -> StructureHit | None:
        return await self.read(lambda conn: structure(conn, finess))

    async def without_rpps(self, text: str, limit: int = 20) -> list[WithoutRpps]:
        """Members without RPPS found by name, role, structure or city (issue 18)."""
        return await self.read(lambda conn: search_without_rpps(conn, text, limit=limit))

    async def is_empty(self) -> bool:
        """No professional imported yet (the page then says how to import)."""

        def run() -> bool:
            directory = self.searchers.get()
            try:
                row = directory.conn.execute("SELECT 1 FROM annuaire_professional LIMIT 1")
                return bool(row.fetchone() is None)
            finally:
                self.searchers.put(directory)

        return await asyncio.to_thread(run)


STATE = web.AppKey("directory_state", DirectoryState)


def error(status: int, errcode: str, message: str) -> web.Response:
    return web.json_response({"errcode": errcode, "error": message}, status=status)


def internal(request: web.Request) -> str:
    ref = new_reference()
    log.exception("directory: internal error ref=%s path=%s", ref, request.path)
    return ref


def frame_origin(config: DossierConfig) -> str:
    """CSP frame-ancestors: the pages work as an Element widget."""
    return f"'self' {config.element_origin}" if config.element_origin else "'self'"


def html(
    state: DirectoryState,
    name: str,
    status: int = 200,
    cookies: dict[str, str] | None = None,
    **ctx: Any,
) -> web.Response:
    body = state.templates.get_template(name).render(**ctx)
    resp = web.Response(text=body, status=status, content_type="text/html", charset="utf-8")
    resp.headers["Content-Security-Policy"] = (
        "default-src 'self'; style-src 'self' 'unsafe-inline'; script-src 'none'; "
        f"form-action 'self'; frame-ancestors {frame_origin(state.config)}"
    )
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Referrer-Policy"] = "no-referrer"
    for key, value in (cookies or {}).items():
        resp.set_cookie(
            key,
            value,
            httponly=True,
            samesite="Strict",
            secure=state.config.public_url.startswith("https"),
            path="/annuaire",
        )
    return resp


def message(state: DirectoryState, status: int, title: str, text: str) -> web.Response:
    return html(state, "message.html", status, titre=title, message=text)


def form_csrf(request: web.Request, state: DirectoryState) -> tuple[str, dict[str, str]]:
    """The token of a form without a session, and the cookie to set when it is new."""
    key = state.config.session_key
    cookie = request.cookies.get(FORM_CSRF_COOKIE)
    if cookie and form_csrf_matches(key, cookie, cookie):
        return cookie, {}
    token = form_csrf_token(key)
    return token, {FORM_CSRF_COOKIE: token}


async def read_form(request: web.Request) -> dict[str, str]:
    if request.content_length is not None and request.content_length > MAX_FORM_BYTES:
        raise web.HTTPRequestEntityTooLarge(MAX_FORM_BYTES, request.content_length)
    data = await request.post()
    return {k: str(v) for k, v in data.items() if isinstance(v, str)}


def expired(
    request: web.Request, state: DirectoryState, form: dict[str, str], viewer: Viewer | None
) -> web.Response | None:
    """The refusal of a posted form whose CSRF token does not match, else None: a logged-in
    person's session token, or the anonymous form's cookie."""
    posted = form.get(CSRF_FIELD)
    if viewer is not None:
        good = viewer.csrf is None or (
            bool(posted) and secrets.compare_digest(viewer.csrf, str(posted))
        )
    else:
        good = form_csrf_matches(
            state.config.session_key, request.cookies.get(FORM_CSRF_COOKIE), posted
        )
    if good:
        return None
    return message(
        state,
        403,
        "Formulaire expiré",
        "Le formulaire a expiré : rechargez la page et recommencez.",
    )


async def posted_request(
    request: web.Request, state: DirectoryState
) -> dict[str, str] | web.Response:
    """The form of a public account request (either kind), or its refusal: too many requests
    from this address (429, with Retry-After), or an expired CSRF token."""
    ip = request.remote or "inconnu"
    if not state.limiter.allow(ip):
        resp = message(
            state,
            429,
            "Trop de demandes",
            "Trop de demandes depuis votre adresse : réessayez plus tard.",
        )
        resp.headers["Retry-After"] = str(state.limiter.retry_after(ip))
        return resp
    form = await read_form(request)
    if (refused := expired(request, state, form, None)) is not None:
        return refused
    return form


def request_recorded(state: DirectoryState, checked_by: str) -> web.Response:
    """The page after a public account request was queued."""
    return message(
        state,
        201,
        "Demande envoyée",
        f"Votre demande de compte a été enregistrée. {checked_by} la vérifiera et vous "
        "recevrez un lien d'activation.",
    )


def paris_time(value: str | datetime | None) -> str:
    """UTC stored, Europe/Paris shown: "25/11/2026 18:04"."""
    if not value:
        return ""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.astimezone(PARIS).strftime("%d/%m/%Y %H:%M")
