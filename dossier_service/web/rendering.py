"""Jinja2 rendering of the pages, the security headers, the static files and error pages."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from dossier_service import appkeys
from dossier_service.form_answers import display_value
from dossier_service.forms_schema import FormField
from dossier_service.identity import STATUS_LABELS
from dossier_service.models.circle import MEMBER_KINDS, ROLE_LABELS
from dossier_service.web.fr_dates import age_on, fmt_date, fmt_datetime, fmt_time, paris

HERE = Path(__file__).resolve().parent
TEMPLATES_DIR = HERE / "templates"
STATIC_DIR = HERE / "static"

KIND_LABELS = {
    "professionnel": "professionnel",
    "aidant": "aidant",
    "representant_legal": "représentant légal",
    "structure": "structure",
}
assert set(KIND_LABELS) == set(MEMBER_KINDS)
SEX_LABELS = {"F": "féminin", "M": "masculin", "I": "indéterminé"}
ENTRY_LABELS = {
    "evenement": "événement",
    "note": "note",
    "transmission": "transmission",
    "signalement": "signalement",
}


def display_name(patient: Any) -> str:
    """NOM Prénom as French files show it; the label, then the id, when identity is empty."""
    name = (patient.used_name or patient.birth_name or "").strip()
    first = (patient.used_first_name or patient.first_birth_first_name or "").strip()
    if name:
        return f"{name.upper()} {first}".strip()
    return patient.label or f"Patient {patient.id}"


class Pages:
    """The template environment and everything the templates share."""

    def __init__(self, *, element_origin: str, homeserver_url: str) -> None:
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=False,  # templates ship with the code: no stat() per render
            cache_size=100,
        )
        self.static_versions = {
            p.name: hashlib.sha256(p.read_bytes()).hexdigest()[:10]
            for p in STATIC_DIR.iterdir()
            if p.is_file()
        }
        self.env.filters.update(
            date=fmt_date,
            datetime=fmt_datetime,
            time=fmt_time,
            role_label=lambda r: ROLE_LABELS.get(r, r),
        )
        self.env.globals.update(
            static_url=self.static_url,
            display_name=display_name,
            ins_labels=STATUS_LABELS,
            sex_labels=SEX_LABELS,
            role_labels=ROLE_LABELS,
            kind_labels=KIND_LABELS,
            entry_labels=ENTRY_LABELS,
            show=self._show,
            # the Documents juridiques (Synapse's user_consent page, current version)
            legal_url=f"{homeserver_url.rstrip('/')}/_matrix/consent",
        )
        self.csp = content_security_policy(element_origin, homeserver_url)
        self.element_origin = element_origin
        self._mounted: dict[str, bool] = {}

    def _has(self, app: web.Application, path: str) -> bool:
        """Whether ``path`` (the directory's ``/annuaire``, the mail's ``/courriers``) is
        mounted in this app: asked of its ~100 routes once, not at every page."""
        if path not in self._mounted:
            self._mounted[path] = any(r.canonical == path for r in app.router.resources())
        return self._mounted[path]

    def static_url(self, name: str) -> str:
        return f"/static/{name}?v={self.static_versions.get(name, '0')}"

    @staticmethod
    def _show(f: FormField, value: Any) -> str:
        return display_value(f, value)

    async def render(
        self, request: web.Request, template: str, context: Mapping[str, Any], *, status: int = 200
    ) -> web.Response:
        """The page; the names of the people it shows read first when not known yet (the
        template is rendered once more after reading them: see ``people.People``)."""
        from dossier_service.web.people import PEOPLE

        people = request.app.get(PEOPLE)
        if people is None:
            return self._render(request, template, context, status)
        with people.noting_missing() as missing:
            response = self._render(request, template, context, status)
        if missing:
            await people.load(request.app[appkeys.DATABASE], missing)
            response = self._render(request, template, context, status)
        return response

    def _render(
        self, request: web.Request, template: str, context: Mapping[str, Any], status: int
    ) -> web.Response:
        from dossier_service.api.context import CTX_KEY
        from dossier_service.web.pagectx import PAGE_CSRF, PAGE_TODAY

        ctx = request.get(CTX_KEY)
        today = request.get(PAGE_TODAY) or date.today()
        base: dict[str, Any] = {
            "user_id": ctx.principal.user_id if ctx is not None else None,
            "is_admin": bool(ctx is not None and ctx.principal.is_admin),
            "csrf_token": request.get(PAGE_CSRF, ""),
            "widget": request.query.get("widget") == "1",
            "nav": None,
            "notice": None,
            "error": None,
            "today": today,
            "age": lambda birth: age_on(birth, today),
        }
        base["has_directory"] = self._has(request.app, "/annuaire")
        base["has_courriers"] = self._has(request.app, "/courriers")
        base.update(context)
        html = self.env.get_template(template).render(base)
        return web.Response(text=html, status=status, content_type="text/html", charset="utf-8")

    def error_page(self, request: web.Request, status: int, message: str) -> web.StreamResponse:
        """How refusals and failures look outside /api/: never any data of the file."""
        if status == 404:
            title, explanation = (
                "Page introuvable",
                "Cette page n'existe pas ou vous n'y avez pas accès.",
            )
        elif status == 403:
            title, explanation = (
                "Accès refusé",
                "Vous n'êtes pas habilité·e à consulter ce dossier.",
            )
        elif status == 401:
            return web.Response(status=303, headers={"Location": login_url(request)})
        elif status >= 500:
            title, explanation = "Erreur", message  # "Erreur interne (réf. …)"
        else:
            title, explanation = "Requête refusée", message
        return self._render(  # the header shows the id of someone not yet named: never a query here
            request, "erreur.html", {"titre": title, "explication": explanation}, status
        )


def login_url(request: web.Request) -> str:
    from urllib.parse import urlencode

    target = request.path_qs if request.method == "GET" else "/patients"
    query = {"suite": target}
    widget_id = request.query.get("widgetId", "")
    if widget_id and len(widget_id) <= 200:  # framed in Element: log in with the widget API
        query["widgetId"] = widget_id
    return "/connexion?" + urlencode(query)


def content_security_policy(element_origin: str, homeserver_url: str) -> str:
    ancestors = element_origin.strip() or "'none'"
    connect = " ".join(
        dict.fromkeys(["'self'", homeserver_url.rstrip("/")] if homeserver_url else ["'self'"])
    )
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"connect-src {connect}; font-src 'self'; object-src 'none'; base-uri 'none'; "
        f"form-action 'self'; frame-ancestors {ancestors}"
    )


PAGE_PREFIXES = (
    "/journal",
    "/patients",
    "/taches",
    "/agenda",
    "/connexion",
    "/deconnexion",
    "/widget",
    "/structures/",
    "/courriers",
    "/extractions",
    "/static/",
)
OWN_CSP_HEADER = "X-Cercle-Own-CSP"


def is_page_path(path: str) -> bool:
    return path == "/" or path.startswith(PAGE_PREFIXES)


def add_security_headers(pages: Pages, request: web.Request, response: web.StreamResponse) -> None:
    """The pages' policy: scripts, styles and connections only to ourselves (and the
    homeserver, for the login), framing only by the configured Element origin."""
    if not is_page_path(request.path) or request.path.endswith(".ics"):
        return
    headers = response.headers
    if headers.pop(OWN_CSP_HEADER, None) is None:  # a handler's own policy (downloads) stays
        headers["Content-Security-Policy"] = pages.csp
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "no-referrer"
    if not pages.element_origin.strip():
        headers.setdefault("X-Frame-Options", "DENY")
    if response.content_type == "text/html":
        headers.setdefault("Cache-Control", "no-store")  # files' pages stay off disk caches
    elif request.path.startswith("/static/") and "v" in request.query:
        headers.setdefault("Cache-Control", "public, max-age=604800")  # versioned URLs


def to_paris_input(value: datetime | None) -> str:
    """A timestamp as a datetime-local input value (Paris time)."""
    return paris(value).strftime("%Y-%m-%dT%H:%M") if value else ""
