"""``create_app(config) -> web.Application``: wires the database, the document store, the
form declarations, the HTTP client for OpenID checks, the API routes and the pages of
``dossier_service.web``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime

import aiohttp
from aiohttp import web
from sqlalchemy import make_url

from dossier_service import agenda_feed, appkeys
from dossier_service import web as pages
from dossier_service.account_status import AccountChecks
from dossier_service.api import (
    admin,
    agenda,
    circle,
    documents,
    extractions,
    followup,
    meta,
    notebook,
    patients,
    retention,
    session,
    structures,
    tasks,
)
from dossier_service.api.errors import error_middleware
from dossier_service.api.operation import Operations
from dossier_service.api.runner import register as register_operations
from dossier_service.api.session import session_middleware
from dossier_service.config import DossierConfig
from dossier_service.db import build_database
from dossier_service.documents_store import DocumentStore
from dossier_service.extraction.reports import ReportWorker
from dossier_service.file_revisions import listen
from dossier_service.forms_schema import FormCatalogue, load_forms
from dossier_service.services.read_models import DashboardCache, FileCache

log = logging.getLogger(__name__)

API_OPERATIONS: tuple[Operations, ...] = (
    session.operations,
    meta.operations,
    patients.operations,
    circle.operations,
    followup.operations,
    notebook.operations,
    documents.operations,
    tasks.operations,
    agenda.operations,
    admin.operations,
    retention.operations,
    extractions.operations,
    structures.operations,
)


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    if request.path.startswith("/api/"):
        headers.setdefault("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
        headers.setdefault("Cache-Control", "no-store")
    else:
        origin = request.app[appkeys.CONFIG].element_origin
        ancestors = f"'self' {origin}" if origin else "'self'"
        headers.setdefault("Content-Security-Policy", f"frame-ancestors {ancestors}")


def _load_forms(config: DossierConfig) -> FormCatalogue:
    if config.forms_dir is None or not config.forms_dir.is_dir():
        return FormCatalogue()
    return load_forms(config.forms_dir)


Extension = Callable[[web.Application], None]


async def health(request: web.Request) -> web.Response:
    """Liveness for ``cercle status``: the database answers."""
    from sqlalchemy import text

    async with request.app[appkeys.DATABASE].transaction() as session:
        await session.execute(text("SELECT 1"))
    return web.json_response({"status": "ok"})


def create_app(
    config: DossierConfig,
    *,
    clock: Callable[[], datetime] | None = None,
    with_pages: bool = True,
    extensions: Sequence[Extension] = (),
) -> web.Application:
    """The whole service. ``extensions`` are called last with the app (e.g. the directory's
    ``setup``); ``with_pages=False`` serves the API alone."""
    app = web.Application(
        middlewares=[error_middleware, session_middleware],
        client_max_size=max(config.documents_max_size, config.json_max_size) + 1024 * 1024,
    )
    app[appkeys.CONFIG] = config
    if config.account_gateway_socket is not None and config.account_gateway_secret:
        app[appkeys.ACCOUNT_CHECKS] = AccountChecks(
            config.account_gateway_socket,
            config.account_gateway_secret,
            interval=config.account_check_seconds,
        )
    app[appkeys.DATABASE] = build_database(config.database_url, echo=config.sql_echo)
    app[appkeys.STORE] = DocumentStore(config.documents_dir, config.documents_max_size)
    app[appkeys.FORMS] = _load_forms(config)
    app[appkeys.FILE_CACHE] = FileCache()
    app[appkeys.DASHBOARD_CACHE] = DashboardCache()
    app[appkeys.REPORTS] = ReportWorker(app[appkeys.DATABASE], config.documents_dir)
    if clock is not None:
        app[appkeys.CLOCK] = clock

    async def resources(app: web.Application) -> AsyncIterator[None]:
        http = aiohttp.ClientSession()
        app[appkeys.HTTP] = http
        database = app[appkeys.DATABASE]
        listener = None
        if database.notices is not None:  # several processes: hear the others' changes
            dsn = make_url(config.database_url).set(drivername="postgresql")
            listener = asyncio.create_task(
                listen(dsn.render_as_string(hide_password=False), database.notices)
            )
        reports = asyncio.create_task(app[appkeys.REPORTS].run(), name="extraction-reports")
        yield
        app[appkeys.REPORTS].stop()
        try:
            await asyncio.wait_for(asyncio.shield(reports), timeout=30)
        except TimeoutError:  # a long production: the process is ending, its claim expires
            reports.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reports
        if listener is not None:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
        await http.close()
        await database.dispose()

    app.cleanup_ctx.append(resources)
    app.on_response_prepare.append(_security_headers)
    app.router.add_get("/health", health)
    register_operations(app, API_OPERATIONS)
    app.router.add_routes(agenda_feed.routes)  # the iCalendar feed, outside /api/v1
    if with_pages:
        pages.setup(app)
    for extend in extensions:
        extend(app)
    return app
