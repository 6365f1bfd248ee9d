"""Login with the Matrix identity ("Se connecter avec votre compte Matrix"), logout, and the
entry point of the Element widget.

The login page gets an OpenID token from the homeserver (password login in the page, or the
widget API inside Element) and posts it to ``/connexion/openid``; the token is checked with the
homeserver (``auth.verify_openid_token``) and exchanged for the session cookie. Before a
session exists, CSRF protection is a signed, short-lived token of the login page echoed in
the ``X-CSRF-Token`` header (a custom header on a JSON body: a cross-site page cannot send
it without a CORS preflight, which is never granted), plus an Origin check. No cookie is
needed before the session, so the login also works inside Element's iframe.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time

from aiohttp import web
from pydantic import ValidationError

from dossier_service import appkeys, auth
from dossier_service.api.context import open_file
from dossier_service.policy import Action
from dossier_service.schemas import OpenIdLoginIn
from dossier_service.services import journal, sessions
from dossier_service.services import patients as patients_service
from dossier_service.web.pagectx import check_csrf, page_context, safe_next
from dossier_service.web.rendering import Pages

routes = web.RouteTableDef()
PAGES = web.AppKey("dossier_pages", Pages)
LOGIN_TOKEN_LIFETIME = 1800


def login_token(key: str, *, now: float | None = None) -> str:
    """A signed token for the login page: ``issued.nonce.signature``."""
    issued = str(int(time.time() if now is None else now))
    nonce = secrets.token_urlsafe(12)
    mac = hmac.new(key.encode(), f"connexion|{issued}|{nonce}".encode(), hashlib.sha256)
    return f"{issued}.{nonce}.{mac.hexdigest()}"


def login_token_valid(key: str, token: str, *, now: float | None = None) -> bool:
    parts = token.split(".") if 0 < len(token) <= 200 else []
    if len(parts) != 3 or not parts[0].isdigit():
        return False
    issued, nonce, signature = parts
    mac = hmac.new(key.encode(), f"connexion|{issued}|{nonce}".encode(), hashlib.sha256)
    age = (time.time() if now is None else now) - int(issued)
    return hmac.compare_digest(mac.hexdigest(), signature) and 0 <= age <= LOGIN_TOKEN_LIFETIME


def _json_error(status: int, errcode: str, message: str) -> web.Response:
    return web.json_response({"errcode": errcode, "error": message}, status=status)


@routes.get("/")
async def home(request: web.Request) -> web.StreamResponse:
    raise web.HTTPSeeOther("/patients")


@routes.get("/connexion")
async def login_page(request: web.Request) -> web.StreamResponse:
    config = request.app[appkeys.CONFIG]
    token = login_token(config.session_key)
    widget_id = request.query.get("widgetId", "")
    if len(widget_id) > 200:
        widget_id = ""
    return await request.app[PAGES].render(
        request,
        "login.html",
        {
            "csrf_token": token,
            "homeserver_url": config.browser_homeserver_url,  # the browser logs in there
            "server_name": config.server_name,
            "next_url": safe_next(request.query.get("suite")),
            "element_origin": config.element_origin,
            "widget_id": widget_id,
            "widget": bool(widget_id),
        },
    )


def _same_origin(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    if origin is None:
        return True  # not sent by every client on same-origin requests; the token still is
    return origin == f"{request.scheme}://{request.host}"


@routes.post("/connexion/openid")
async def login_exchange(request: web.Request) -> web.StreamResponse:
    config = request.app[appkeys.CONFIG]
    given = request.headers.get(auth.CSRF_HEADER, "")
    if not login_token_valid(config.session_key, given) or not _same_origin(request):
        return _json_error(403, "M_FORBIDDEN", "Page de connexion expirée : rechargez-la.")
    raw = await request.content.read(4097)
    if len(raw) > 4096:
        return _json_error(413, "M_TOO_LARGE", "Requête trop volumineuse.")
    try:
        body = json.loads(raw or b"{}")
        login = OpenIdLoginIn.model_validate(
            {k: body[k] for k in ("access_token", "matrix_server_name", "expires_in") if k in body}
        )
    except (ValueError, TypeError, ValidationError):
        return _json_error(400, "M_BAD_JSON", "Jeton d'identité Matrix manquant ou invalide.")
    if login.matrix_server_name and login.matrix_server_name != config.server_name:
        return _json_error(403, "M_FORBIDDEN", "Ce compte n'appartient pas à ce serveur.")
    try:
        user_id = await auth.verify_openid_token(
            request.app[appkeys.HTTP],
            homeserver_url=config.homeserver_url,
            access_token=login.access_token,
            server_name=config.server_name,
        )
    except auth.AuthError as exc:
        return _json_error(exc.status, exc.errcode, exc.message)
    session = auth.issue_session(
        config.session_key, user_id, lifetime=config.session_lifetime_seconds
    )
    async with request.app[appkeys.DATABASE].transaction() as db_session:
        await journal.audit_own_act(
            db_session, user_id, action="login", resource="page:session", remote=request.remote
        )
    suite = body.get("suite") if isinstance(body, dict) else None
    response = web.json_response(
        {"user_id": user_id, "redirect": safe_next(suite if isinstance(suite, str) else None)}
    )
    auth.set_session_cookie(response, session, config)
    return response


async def end_presented_session(request: web.Request) -> None:
    """Logout from the pages: the presented session ends on the server, for good (the API's
    ``POST /api/v1/logout`` does the same as a declared operation)."""
    presented = auth.presented_session(request, request.app[appkeys.CONFIG])
    if presented is None or request.get(auth.REVOKED):
        return
    async with request.app[appkeys.DATABASE].transaction() as db:
        await sessions.end_session(db, presented)
        await sessions.purge_expired(db)
        await journal.audit_own_act(
            db, presented.user_id, action="logout", resource="session", remote=request.remote
        )


@routes.post("/deconnexion")
async def logout(request: web.Request) -> web.StreamResponse:
    ctx = page_context(request)
    form = await request.post()
    check_csrf(ctx, form.get(auth.CSRF_FIELD))
    await end_presented_session(request)
    response = web.HTTPSeeOther("/connexion")
    auth.clear_session_cookie(response)
    raise response


@routes.get("/widget")
async def widget_entry(request: web.Request) -> web.StreamResponse:
    """Element opens ``/widget?roomId=$matrix_room_id&widgetId=$matrix_widget_id``."""
    room_id = request.query.get("roomId", "")[:255]
    widget_id = request.query.get("widgetId", "")[:200]
    try:
        ctx = page_context(request)
    except web.HTTPSeeOther:
        from urllib.parse import urlencode

        raise web.HTTPSeeOther(
            "/connexion?" + urlencode({"suite": request.path_qs, "widgetId": widget_id})
        ) from None
    async with ctx.db.transaction() as session:
        patient = (
            await patients_service.patient_by_room(session, room_id=room_id) if room_id else None
        )
        if patient is None:
            raise web.HTTPSeeOther("/patients?widget=1")
        await open_file(session, ctx, patient.id, Action.READ, "page:widget")
    raise web.HTTPSeeOther(f"/patients/{patient.id}?widget=1")
