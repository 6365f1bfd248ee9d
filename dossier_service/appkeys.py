"""Typed application state (``web.AppKey``) shared by the API and the pages."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import aiohttp
from aiohttp import web

from dossier_service.account_status import AccountChecks
from dossier_service.config import DossierConfig
from dossier_service.db import Database
from dossier_service.documents_store import DocumentStore
from dossier_service.extraction.reports import ReportWorker
from dossier_service.forms_schema import FormCatalogue
from dossier_service.services.read_models import DashboardCache, FileCache

CONFIG = web.AppKey("dossier_config", DossierConfig)
ACCOUNT_CHECKS = web.AppKey("dossier_account_checks", AccountChecks)
DATABASE = web.AppKey("dossier_database", Database)
STORE = web.AppKey("dossier_documents", DocumentStore)
FORMS = web.AppKey("dossier_forms", FormCatalogue)
HTTP = web.AppKey("dossier_http", aiohttp.ClientSession)
FILE_CACHE = web.AppKey("dossier_file_cache", FileCache)
DASHBOARD_CACHE = web.AppKey("dossier_dashboard_cache", DashboardCache)
REPORTS = web.AppKey("dossier_extraction_reports", ReportWorker)
CLOCK: web.AppKey[Callable[[], datetime]] = web.AppKey("dossier_clock")
# Pages may replace how refusals and errors are shown outside /api/ (default: plain text).
ErrorRenderer = Callable[[web.Request, int, str], web.StreamResponse]
ERROR_RENDERER: web.AppKey[ErrorRenderer] = web.AppKey("dossier_error_renderer")
