"""HTTP side of the directory, mounted into the dossier service by :func:`setup`.

- ``GET /api/v1/annuaire?q=…`` JSON search (paginated, Matrix-shaped errors), logged-in
  professionals and the bot's service token;
- ``GET /annuaire`` the search page;
- ``GET|POST /annuaire/demande`` the public "Demander un compte" page (no login, CSRF,
  rate limited per IP, strict validation);
- ``GET /annuaire/admin/demandes`` and ``POST …/{id}/approuver|refuser`` for admins;
- ``GET|POST /annuaire/activation/{token}`` the one-time page that sets the password.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import secrets
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import jinja2
from aiohttp import web

from deployment.conventions import PARIS

from .account_requests import AccountRequests, HomeserverAdmin, RequestError
from .request_form import LABELS, validate
from .search import MAX_PER_PAGE, Directory, SearchResult
from .settings import DirectorySettings
from .store import connect
from .web_security import RateLimiter, csrf_valid, new_csrf_token

log = logging.getLogger(__name__)
TEMPLATES = Path(__file__).parent / "templates"
CSRF_COOKIE = "annuaire_csrf"
MAX_FORM_BYTES = 16 * 1024
SEARCH_CONNECTIONS = 4  # searches run in worker threads, each with its own connection


class Viewer(Protocol):
    @property
    def user_id(self) -> str: ...

    @property
    def is_admin(self) -> bool: ...


Authenticate = Callable[[web.Request], Awaitable[Viewer | None]]
AdminApiFactory = Callable[[], AbstractAsyncContextManager[HomeserverAdmin]]


@dataclass
class DirectoryState:
    settings: DirectorySettings
    searchers: queue.SimpleQueue[Directory]  # one read connection each, used by one thread
    write_conn: sqlite3.Connection
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

    async def is_empty(self) -> bool:
        """No professional imported yet (the page then says how to import)."""

        def run() -> bool:
            directory = self.searchers.get()
            try:
                return (
                    directory.conn.execute("SELECT 1 FROM professional LIMIT 1").fetchone() is None
                )
            finally:
                self.searchers.put(directory)

        return await asyncio.to_thread(run)


STATE = web.AppKey("directory_state", DirectoryState)


def _error(status: int, errcode: str, message: str, **headers: str) -> web.Response:
    return web.json_response(
        {"errcode": errcode, "error": message}, status=status, headers=headers or None
    )


def _internal(request: web.Request) -> str:
    ref = secrets.token_hex(4).upper()
    log.exception("directory: internal error ref=%s path=%s", ref, request.path)
    return ref


def _html(
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
        f"form-action 'self'; frame-ancestors {state.settings.frame_origin}"
    )
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Referrer-Policy"] = "no-referrer"
    for key, value in (cookies or {}).items():
        resp.set_cookie(
            key,
            value,
            httponly=True,
            samesite="Strict",
            secure=state.settings.public_url.startswith("https"),
            path="/annuaire",
        )
    return resp


def _csrf(request: web.Request, state: DirectoryState) -> tuple[str, dict[str, str]]:
    cookie = request.cookies.get(CSRF_COOKIE)
    if cookie and csrf_valid(state.settings.csrf_key, cookie, cookie):
        return cookie, {}
    token = new_csrf_token(state.settings.csrf_key)
    return token, {CSRF_COOKIE: token}


async def _form(request: web.Request) -> dict[str, str]:
    if request.content_length is not None and request.content_length > MAX_FORM_BYTES:
        raise web.HTTPRequestEntityTooLarge(MAX_FORM_BYTES, request.content_length)
    data = await request.post()
    return {k: str(v) for k, v in data.items() if isinstance(v, str)}


def _expired(
    request: web.Request, state: DirectoryState, form: dict[str, str]
) -> web.Response | None:
    """The refusal of a posted form whose CSRF token does not match its cookie, else None."""
    if csrf_valid(
        state.settings.csrf_key, request.cookies.get(CSRF_COOKIE), form.get("csrf_token")
    ):
        return None
    return _html(
        state,
        "message.html",
        403,
        titre="Formulaire expiré",
        message="Le formulaire a expiré : rechargez la page et recommencez.",
    )


def _int(value: str | None, default: int, low: int, high: int) -> int:
    try:
        return min(max(int(value or default), low), high)
    except ValueError:
        return default


# --- search ---------------------------------------------------------------------------------
async def api_search(request: web.Request) -> web.Response:
    state = request.app[STATE]
    viewer = await state.authenticate(request)
    if viewer is None:
        return _error(401, "M_MISSING_TOKEN", "Connexion requise.")
    q = request.query.get("q", "")
    if len(q) > 200:
        return _error(400, "M_INVALID_PARAM", "Requête trop longue (200 caractères au maximum).")
    try:
        result = await state.search(
            q,
            profession=request.query.get("profession"),
            specialty=request.query.get("specialite"),
            dept=request.query.get("departement"),
            mode=request.query.get("mode"),
            page=_int(request.query.get("page"), 1, 1, 50),
            per_page=_int(request.query.get("par_page"), 20, 1, MAX_PER_PAGE),
        )
    except Exception:
        return _error(500, "M_UNKNOWN", f"Erreur interne (réf. {_internal(request)}).")
    return web.json_response(result.as_json())


async def search_page(request: web.Request) -> web.Response:
    state = request.app[STATE]
    viewer = await state.authenticate(request)
    if viewer is None:
        return _html(
            state,
            "message.html",
            401,
            titre="Connexion requise",
            message="Connectez-vous au dossier avec votre compte Matrix pour consulter l'annuaire.",
        )
    q = request.query.get("q", "")[:200]
    filters = {
        k: request.query.get(k, "")[:40]
        for k in ("profession", "specialite", "departement", "mode")
    }
    page = _int(request.query.get("page"), 1, 1, 50)
    result = None
    if q or any(filters.values()):
        result = await state.search(
            q,
            profession=filters["profession"] or None,
            specialty=filters["specialite"] or None,
            dept=filters["departement"] or None,
            mode=filters["mode"] or None,
            page=page,
        )
    empty = result is not None and result.total == 0 and await state.is_empty()
    return _html(
        state, "recherche.html", q=q, filters=filters, result=result, directory_empty=empty
    )


# --- public account request -----------------------------------------------------------------
async def request_form(request: web.Request) -> web.Response:
    state = request.app[STATE]
    token, cookies = _csrf(request, state)
    return _html(
        state, "demande.html", cookies=cookies, csrf=token, values={}, errors={}, labels=LABELS
    )


async def request_submit(request: web.Request) -> web.Response:
    state = request.app[STATE]
    ip = request.remote or "inconnu"
    if not state.limiter.allow(ip):
        resp = _html(
            state,
            "message.html",
            429,
            titre="Trop de demandes",
            message="Trop de demandes depuis votre adresse : réessayez plus tard.",
        )
        resp.headers["Retry-After"] = str(state.limiter.retry_after(ip))
        return resp
    form = await _form(request)
    if (expired := _expired(request, state, form)) is not None:
        return expired
    parsed, errors = validate(form)
    if parsed is None:
        token, cookies = _csrf(request, state)
        return _html(
            state,
            "demande.html",
            400,
            cookies=cookies,
            csrf=token,
            values=form,
            errors=errors,
            labels=LABELS,
        )
    try:
        created = state.requests.submit(parsed).id
    except Exception:
        ref = _internal(request)
        return _html(
            state, "message.html", 500, titre="Erreur", message=f"Erreur interne (réf. {ref})."
        )
    log.info("directory: account request %s queued", created)
    return _html(
        state,
        "message.html",
        201,
        titre="Demande envoyée",
        message="Votre demande de compte a été enregistrée. Un administrateur "
        "la vérifiera et vous recevrez un lien d'activation.",
    )


# --- admin ----------------------------------------------------------------------------------
async def _admin(request: web.Request) -> Viewer | web.Response:
    state = request.app[STATE]
    viewer = await state.authenticate(request)
    if viewer is None:
        return _html(
            state,
            "message.html",
            401,
            titre="Connexion requise",
            message="Connectez-vous avec un compte administrateur.",
        )
    if not viewer.is_admin:
        return _html(
            state,
            "message.html",
            403,
            titre="Accès refusé",
            message="Page réservée aux administrateurs.",
        )
    return viewer


async def admin_requests(request: web.Request) -> web.Response:
    state = request.app[STATE]
    viewer = await _admin(request)
    if isinstance(viewer, web.Response):
        return viewer
    token, cookies = _csrf(request, state)
    status = request.query.get("statut") or None
    return _html(
        state,
        "admin_demandes.html",
        cookies=cookies,
        csrf=token,
        demandes=state.requests.list(status),
        statut=status or "",
        approval=None,
        info=None,
    )


async def admin_decide(request: web.Request) -> web.Response:
    state = request.app[STATE]
    viewer = await _admin(request)
    if isinstance(viewer, web.Response):
        return viewer
    form = await _form(request)
    if (expired := _expired(request, state, form)) is not None:
        return expired
    rid = _int(request.match_info["id"], 0, 0, 2**62)
    approval = None
    info = None
    try:
        if request.match_info["action"] == "refuser":
            state.requests.refuse(rid, reason=form.get("motif", ""), actor=viewer.user_id)
            info = f"Demande {rid} refusée."
        else:
            if state.admin_api is None:
                raise RequestError(
                    "M_UNKNOWN",
                    "Aucun accès administrateur au serveur Matrix n'est configuré.",
                    503,
                )
            async with state.admin_api() as api:
                approval = await state.requests.approve(rid, actor=viewer.user_id, api=api)
            info = f"Demande {rid} approuvée : compte {approval.mxid}."
            if state.settings.smtp is not None:
                info += " " + await _email_link(request, state, approval, viewer.user_id)
    except RequestError as exc:
        info = exc.message
    except Exception:
        info = f"Erreur interne (réf. {_internal(request)})."
    token, cookies = _csrf(request, state)
    return _html(
        state,
        "admin_demandes.html",
        cookies=cookies,
        csrf=token,
        demandes=state.requests.list(None),
        statut="",
        info=info,
        approval=approval,
        activation_url=approval.activation_url(state.settings.public_url) if approval else None,
    )


async def _email_link(
    request: web.Request, state: DirectoryState, approval: Any, actor: str
) -> str:
    try:
        to = await asyncio.to_thread(
            state.requests.email_activation,
            approval,
            smtp=state.settings.smtp,
            public_url=state.settings.public_url,
            actor=actor,
        )
    except Exception:
        ref = _internal(request)
        return (
            f"Envoi de l'e-mail impossible (réf. {ref}) : transmettez le lien "
            "ci-dessous au professionnel."
        )
    return f"Lien d'activation envoyé par e-mail à {to}."


# --- activation -----------------------------------------------------------------------------
async def activation_form(request: web.Request) -> web.Response:
    state = request.app[STATE]
    try:
        _, mxid = state.requests.activation(request.match_info["token"])
    except RequestError as exc:
        return _html(
            state, "message.html", exc.status, titre="Activation impossible", message=exc.message
        )
    token, cookies = _csrf(request, state)
    return _html(state, "activation.html", cookies=cookies, csrf=token, mxid=mxid, error=None)


async def activation_submit(request: web.Request) -> web.Response:
    state = request.app[STATE]
    ip = request.remote or "inconnu"
    if not state.limiter.allow("activation:" + ip):
        return _html(
            state,
            "message.html",
            429,
            titre="Trop de tentatives",
            message="Trop de tentatives : réessayez plus tard.",
        )
    form = await _form(request)
    if (expired := _expired(request, state, form)) is not None:
        return expired
    link = request.match_info["token"]
    mxid = ""
    password = form.get("mot_de_passe", "")
    try:
        _, mxid = state.requests.activation(link)
        if password != form.get("confirmation", ""):
            raise RequestError("M_INVALID_PARAM", "Les deux mots de passe diffèrent.")
        if state.admin_api is None:
            raise RequestError(
                "M_UNKNOWN", "Activation indisponible : serveur Matrix non configuré.", 503
            )
        async with state.admin_api() as api:
            await state.requests.activate(link, password, api=api)
    except RequestError as exc:
        if exc.errcode in ("M_WEAK_PASSWORD", "M_INVALID_PARAM"):
            token, cookies = _csrf(request, state)
            return _html(
                state,
                "activation.html",
                400,
                cookies=cookies,
                csrf=token,
                mxid=mxid,
                error=exc.message,
            )
        return _html(
            state, "message.html", exc.status, titre="Activation impossible", message=exc.message
        )
    except Exception:
        return _html(
            state,
            "message.html",
            500,
            titre="Erreur",
            message=f"Erreur interne (réf. {_internal(request)}).",
        )
    return _html(
        state,
        "message.html",
        200,
        titre="Compte activé",
        message=f"Votre compte {mxid} est activé : connectez-vous dans Element "
        "avec ce mot de passe.",
    )


def paris_time(value: str | datetime | None) -> str:
    """UTC stored, Europe/Paris shown: "25/11/2026 18:04"."""
    if not value:
        return ""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.astimezone(PARIS).strftime("%d/%m/%Y %H:%M")


# --- wiring ---------------------------------------------------------------------------------
def _default_admin_api(settings: DirectorySettings) -> AdminApiFactory | None:
    """The account gateway (never the Synapse admin token: this process serves the internet)."""
    if not settings.gateway_secret or settings.gateway_socket is None:
        return None
    socket, secret = settings.gateway_socket, settings.gateway_secret

    def factory() -> AbstractAsyncContextManager[HomeserverAdmin]:
        from homeserver.account_gateway.client import GatewayClient

        return GatewayClient(socket, secret)

    return factory


def setup(
    app: web.Application,
    settings: DirectorySettings,
    *,
    authenticate: Authenticate,
    admin_api: AdminApiFactory | None = None,
) -> None:
    """Mount the directory's routes on ``app`` (its connections live in ``cleanup_ctx``)."""

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        search_conns = [
            connect(settings.database, check_same_thread=False) for _ in range(SEARCH_CONNECTIONS)
        ]
        searchers: queue.SimpleQueue[Directory] = queue.SimpleQueue()
        for conn in search_conns:
            searchers.put(Directory(conn))
        write_conn = connect(settings.database, check_same_thread=False)
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
        env.filters["paris"] = paris_time
        env.globals["legal_url"] = settings.legal_url
        app[STATE] = DirectoryState(
            settings=settings,
            searchers=searchers,
            write_conn=write_conn,
            requests=AccountRequests(
                write_conn,
                Directory(write_conn),
                server_name=settings.server_name,
                activation_hours=settings.activation_hours,
            ),
            limiter=RateLimiter(settings.request_limit, settings.request_window_seconds),
            templates=env,
            authenticate=authenticate,
            admin_api=admin_api or _default_admin_api(settings),
        )
        yield
        for conn in search_conns:
            conn.close()
        write_conn.close()

    app.cleanup_ctx.append(lifecycle)
    app.router.add_get("/api/v1/annuaire", api_search)
    app.router.add_get("/annuaire", search_page)
    app.router.add_get("/annuaire/demande", request_form)
    app.router.add_post("/annuaire/demande", request_submit)
    app.router.add_get("/annuaire/admin/demandes", admin_requests)
    app.router.add_post(
        r"/annuaire/admin/demandes/{id:\d+}/{action:approuver|refuser}", admin_decide
    )
    app.router.add_get("/annuaire/activation/{token}", activation_form)
    app.router.add_post("/annuaire/activation/{token}", activation_submit)


def dossier_authenticator(config: Any) -> Authenticate:
    """Adapter to the dossier service's sessions (Matrix OpenID) and service token."""
    from dossier_service.auth import AuthError, authenticate

    async def run(request: web.Request) -> Viewer | None:
        try:
            principal, _session = authenticate(request, config)
        except AuthError:
            return None
        return _Principal(principal.user_id, bool(principal.is_admin))

    return run


@dataclass(frozen=True)
class _Principal:
    user_id: str
    is_admin: bool
