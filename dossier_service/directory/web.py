"""HTTP side of the directory, mounted into the dossier service by :func:`setup`.

- ``GET /api/v1/annuaire?q=…`` JSON search (paginated, Matrix-shaped errors), logged-in
  professionals and the bot's service token;
- ``GET /annuaire`` the search page;
- the account pages (:mod:`.web_accounts`): ``GET|POST /annuaire/demande``,
  ``GET /annuaire/admin/demandes`` and ``POST …/{id}/approuver|refuser``,
  ``GET|POST /annuaire/activation/{token}``;
- the requests without RPPS (:mod:`.web_social`): ``GET|POST /annuaire/demande-sans-rpps``,
  ``GET /api/v1/annuaire/demandes``, ``POST /api/v1/annuaire/demandes/{id}/…``.

The directory's tables are in the dossier's database (``DossierConfig.database_url``);
searches run in worker threads, each with its own connection.
"""

from __future__ import annotations

import queue
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from dossier_service.bounded import bounded_int
from dossier_service.config import DossierConfig

from . import web_accounts, web_social
from .account_requests import AccountRequests, HomeserverAdmin
from .database import connect
from .search import MAX_PER_PAGE, Directory
from .web_common import (
    STATE,
    AdminApiFactory,
    Authenticate,
    DirectoryState,
    Viewer,
    error,
    html,
    internal,
    message,
    paris_time,
)
from .web_security import RateLimiter

TEMPLATES = Path(__file__).parent / "templates"
KINDS = ("tous", "professionnels", "structures")
SEARCH_CONNECTIONS = 4  # searches run in worker threads, each with its own connection

__all__ = ["STATE", "Viewer", "dossier_authenticator", "setup"]


async def api_search(request: web.Request) -> web.Response:
    state = request.app[STATE]
    viewer = await state.authenticate(request)
    if viewer is None:
        return error(401, "M_MISSING_TOKEN", "Connexion requise.")
    q = request.query.get("q", "")
    if len(q) > 200:
        return error(400, "M_INVALID_PARAM", "Requête trop longue (200 caractères au maximum).")
    kind = request.query.get("type", "tous")
    if kind not in KINDS:
        return error(400, "M_INVALID_PARAM", "Type inconnu : professionnels, structures ou tous.")
    page = bounded_int(request.query.get("page"), 1, 1, 50)
    per_page = bounded_int(request.query.get("par_page"), 20, 1, MAX_PER_PAGE)
    dept = request.query.get("departement")
    try:
        body: dict[str, Any] = {"type": kind}
        if kind == "structures":
            body.update({"resultats": [], "total": 0})
        else:
            result = await state.search(
                q,
                profession=request.query.get("profession"),
                specialty=request.query.get("specialite"),
                dept=dept,
                mode=request.query.get("mode"),
                page=page,
                per_page=per_page,
            )
            body.update(result.as_json())
            # professionals without RPPS (issue 18): members of a structure, marked so
            body["sans_rpps"] = (
                [h.as_json() for h in await state.without_rpps(q, per_page)] if page == 1 else []
            )
        if kind != "professionnels":
            structures = await state.search_structures(
                q,
                dept=dept,
                category=request.query.get("categorie"),
                page=page,
                per_page=per_page,
            )
            body["structures"] = structures.as_json()
    except Exception:
        return error(500, "M_UNKNOWN", f"Erreur interne (réf. {internal(request)}).")
    return web.json_response(body)


async def search_page(request: web.Request) -> web.Response:
    state = request.app[STATE]
    viewer = await state.authenticate(request)
    if viewer is None:
        return message(
            state,
            401,
            "Connexion requise",
            "Connectez-vous au dossier avec votre compte Matrix pour consulter l'annuaire.",
        )
    q = request.query.get("q", "")[:200]
    filters = {
        k: request.query.get(k, "")[:40]
        for k in ("profession", "specialite", "departement", "mode", "categorie")
    }
    kind = request.query.get("type", "tous")
    kind = kind if kind in KINDS else "tous"
    page = bounded_int(request.query.get("page"), 1, 1, 50)
    result = structures = None
    without_rpps: list[Any] = []
    if q or any(filters.values()):
        if kind != "structures" and page == 1:
            without_rpps = await state.without_rpps(q)
        if kind != "structures":
            result = await state.search(
                q,
                profession=filters["profession"] or None,
                specialty=filters["specialite"] or None,
                dept=filters["departement"] or None,
                mode=filters["mode"] or None,
                page=page,
            )
        if kind != "professionnels":
            structures = await state.search_structures(
                q,
                dept=filters["departement"] or None,
                category=filters["categorie"] or None,
                page=page,
            )
    empty = result is not None and result.total == 0 and await state.is_empty()
    return html(
        state,
        "recherche.html",
        q=q,
        filters=filters,
        kind=kind,
        result=result,
        structures=structures,
        directory_empty=empty,
        without_rpps=without_rpps,
    )


# --- wiring ---------------------------------------------------------------------------------
def _default_admin_api(config: DossierConfig) -> AdminApiFactory | None:
    """The account gateway (never the Synapse admin token: this process serves the internet)."""
    if not config.account_gateway_secret or config.account_gateway_socket is None:
        return None
    socket, secret = config.account_gateway_socket, config.account_gateway_secret

    def factory() -> AbstractAsyncContextManager[HomeserverAdmin]:
        from homeserver.account_gateway.client import GatewayClient

        return GatewayClient(socket, secret)

    return factory


def setup(
    app: web.Application,
    config: DossierConfig,
    *,
    authenticate: Authenticate | None = None,
    admin_api: AdminApiFactory | None = None,
) -> None:
    """Mount the directory's routes on ``app`` (its connections live in ``cleanup_ctx``).
    The schema is the dossier's (Alembic has run before the app starts)."""

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        url = config.database_url
        search_conns = [connect(url, check_same_thread=False) for _ in range(SEARCH_CONNECTIONS)]
        searchers: queue.SimpleQueue[Directory] = queue.SimpleQueue()
        for conn in search_conns:
            searchers.put(Directory(conn))
        write_conn = connect(url, check_same_thread=False)
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
        env.filters["paris"] = paris_time
        env.globals["legal_url"] = config.legal_url
        settings = config.directory
        app[STATE] = DirectoryState(
            config=config,
            searchers=searchers,
            write_conn=write_conn,
            requests=AccountRequests(
                write_conn,
                Directory(write_conn),
                server_name=config.server_name,
                activation_hours=settings.activation_hours,
            ),
            limiter=RateLimiter(settings.request_limit, settings.request_window_seconds),
            templates=env,
            authenticate=authenticate or dossier_authenticator(config),
            admin_api=admin_api or _default_admin_api(config),
        )
        yield
        for conn in search_conns:
            conn.close()
        write_conn.close()

    app.cleanup_ctx.append(lifecycle)
    app.router.add_get("/api/v1/annuaire", api_search)
    app.router.add_get("/annuaire", search_page)
    app.router.add_get("/annuaire/demande", web_accounts.request_form)
    app.router.add_post("/annuaire/demande", web_accounts.request_submit)
    app.router.add_get("/annuaire/admin/demandes", web_accounts.admin_requests)
    app.router.add_post(
        r"/annuaire/admin/demandes/{id:\d+}/{action:approuver|refuser}", web_accounts.admin_decide
    )
    web_social.setup_routes(app)
    app.router.add_get("/annuaire/activation/{token}", web_accounts.activation_form)
    app.router.add_post("/annuaire/activation/{token}", web_accounts.activation_submit)


def dossier_authenticator(config: DossierConfig) -> Authenticate:
    """The dossier's sessions (Matrix OpenID) and service token; a cookie session's forms
    carry its CSRF token."""
    from dossier_service.auth import AuthError, authenticate, csrf_token

    async def run(request: web.Request) -> Viewer | None:
        try:
            principal, session = authenticate(request, config)
        except AuthError:
            return None
        csrf = (
            csrf_token(config.session_key, session)
            if session is not None and session.via_cookie
            else None
        )
        return _Principal(principal.user_id, bool(principal.is_admin), csrf)

    return run


@dataclass(frozen=True)
class _Principal:
    user_id: str
    is_admin: bool
    csrf: str | None
