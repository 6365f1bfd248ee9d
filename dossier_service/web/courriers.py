"""The "Courriers" page: a professional connects or disconnects her secure health mailbox
and files a mail of her Courriers room into a patient's file.

Mounted by ``setup`` (an extension of ``create_app``, as the directory is) only when the mail
bridge is enabled. Everything goes to the bridge over its control socket
(``bridges.mail.control_client``): the bridge owns the mailbox store and the vault, tries the
login before storing anything, and files with the same code as ``!classer`` (same notebook
entry, same notice in the patient's room through the dossier's event feed). The password is
posted once, passed on, never stored, logged nor shown here.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from aiohttp import web

from bridges.mail.control_client import CourriersRefused, CourriersUnavailable, MailBridgeClient
from deployment.conventions import PARIS
from dossier_service.services import patients as patients_service
from dossier_service.web.pagectx import page_context, posted_form, text
from dossier_service.web.pages_login import PAGES
from dossier_service.web.rendering import display_name

BRIDGE = web.AppKey("mail_bridge_client", MailBridgeClient)
routes = web.RouteTableDef()
STATE_LABELS = {
    "nouvelle": "en attente",
    "connexion": "connexion…",
    "connectée": "connectée",
    "connexion refusée": "connexion refusée par la messagerie",
    "erreur": "erreur",
}


def setup(app: web.Application, client: MailBridgeClient) -> None:
    app[BRIDGE] = client
    app.router.add_routes(routes)


OFF = (
    "Le courrier sécurisé (MSSanté) n'est pas activé sur ce déploiement de Cercle : vos "
    "courriers ne peuvent pas arriver ici. L'administrateur l'active dans la configuration "
    "(section « mail_bridge »)."
)


def setup_off(app: web.Application) -> None:
    """Without the mail bridge: ``/courriers`` (a bookmark, a colleague's link, the bot's
    hint) says that mail is off on this deployment instead of « page introuvable »; the
    navigation does not show it."""

    async def off(request: web.Request) -> web.StreamResponse:
        values = {"titre": "Courrier sécurisé non activé", "explication": OFF}
        return await request.app[PAGES].render(request, "erreur.html", values, status=404)

    app.router.add_route("*", "/courriers{tail:(/.*)?}", off)


def _when(value: Any) -> str:
    try:
        return datetime.fromisoformat(str(value)).astimezone(PARIS).strftime("%d/%m/%Y %H:%M")
    except (TypeError, ValueError):
        return ""


async def _render(
    request: web.Request,
    *,
    notice: str | None = None,
    error: str | None = None,
    address: str = "",
    status: int = 200,
    hosts: dict[str, Any] | None = None,
) -> web.Response:
    ctx = page_context(request)
    bridge = request.app[BRIDGE]
    owner = ctx.principal.user_id
    values: dict[str, Any] = {
        "nav": "courriers",
        "notice": notice,
        "error": error,
        "address": address,
        "box": {"connected": False},
        "mails": [],
        "patients": [],
        "unavailable": None,
        "choice": False,
        "hosts": {},
    }
    try:
        box = await bridge.mailbox(owner)
        values["box"] = {**box, "state_label": STATE_LABELS.get(str(box.get("state")), "")}
        values["choice"] = bool(box.get("servers_choice"))
        values["hosts"] = {**(box.get("default_servers") or {}), **(hosts or {})}
        if box.get("connected"):
            mails = await bridge.recent(owner)
            values["mails"] = [{**m, "date": _when(m.get("date"))} for m in mails]
    except CourriersRefused as exc:
        values["error"] = error or exc.message
    except CourriersUnavailable as exc:
        values["unavailable"] = exc.message
    if values["mails"]:
        async with ctx.db.transaction() as session:
            visible, _ = await patients_service.list_patients(
                session, principal=ctx.principal, limit=500
            )
            await ctx.audit(session, action="read", resource="page:courriers", patient_id=None)
        values["patients"] = sorted(
            ((p.id, display_name(p)) for p in visible), key=lambda kv: kv[1]
        )
    values["categories"] = ctx.config.document_categories
    values["filing_key"] = secrets.token_urlsafe(16)  # one filing per page shown
    return await request.app[PAGES].render(request, "courriers.html", values, status=status)


@routes.get("/courriers")
async def page(request: web.Request) -> web.StreamResponse:
    notices = {
        "reliee": "Boîte reliée : vos courriers arrivent dans votre salon Courriers.",
        "deconnectee": "Boîte déconnectée : son mot de passe est effacé.",
    }
    return await _render(request, notice=notices.get(request.query.get("fait", "")))


@routes.post("/courriers/boite")
async def connect(request: web.Request) -> web.StreamResponse:
    ctx = page_context(request)
    form = await posted_form(request, ctx)
    address, password = text(form, "adresse")[:254], form.get("mot_de_passe")
    if not isinstance(password, str) or not password or not address:
        return await _render(
            request,
            error="L'adresse et le mot de passe sont obligatoires.",
            address=address,
            status=400,
        )
    hosts = _posted_hosts(form)
    try:
        await request.app[BRIDGE].connect(ctx.principal.user_id, address, password[:500], hosts)
    except (CourriersRefused, CourriersUnavailable) as exc:
        return await _render(request, error=exc.message, address=address, status=400, hosts=hosts)
    raise web.HTTPSeeOther("/courriers?fait=reliee")


def _posted_hosts(form: Any) -> dict[str, Any] | None:
    """Her servers when the form has them (the operator allows a choice), else None; the
    bridge checks them (shape, allow-list) and tries them before storing anything."""
    if not text(form, "imap_hote"):
        return None

    def port(name: str) -> int:
        value = text(form, name)
        return int(value) if value.isdigit() and len(value) <= 5 else 0

    return {
        "imap_host": text(form, "imap_hote")[:253],
        "imap_port": port("imap_port"),
        "smtp_host": text(form, "smtp_hote")[:253],
        "smtp_port": port("smtp_port"),
        "smtp_security": text(form, "smtp_securite")[:10] or "tls",
    }


@routes.post("/courriers/deconnexion")
async def disconnect(request: web.Request) -> web.StreamResponse:
    ctx = page_context(request)
    await posted_form(request, ctx)
    try:
        await request.app[BRIDGE].disconnect(ctx.principal.user_id)
    except (CourriersRefused, CourriersUnavailable) as exc:
        return await _render(request, error=exc.message, status=400)
    raise web.HTTPSeeOther("/courriers?fait=deconnectee")


@routes.post("/courriers/classer")
async def file_mail(request: web.Request) -> web.StreamResponse:
    """Answered with the page itself (no redirection: the file's label stays out of URLs);
    the form's key makes a resubmission file nothing twice."""
    ctx = page_context(request)
    form = await posted_form(request, ctx)
    event_id, patient = text(form, "courrier")[:255], text(form, "patient")[:64]
    category, key = text(form, "categorie")[:100], text(form, "cle")[:64]
    if not (event_id and patient and category and key):
        return await _render(request, error="Choisissez un courrier et un dossier.", status=400)
    try:
        done = await request.app[BRIDGE].file(
            ctx.principal.user_id, event_id=event_id, patient=patient, category=category, key=key
        )
    except (CourriersRefused, CourriersUnavailable) as exc:
        return await _render(request, error=exc.message, status=400)
    filed = done.get("filed") or []
    notice = (
        f"Courrier classé dans le dossier « {done.get('label')} », catégorie "
        f"« {done.get('category')} » : {len(filed)} document(s)."
    )
    refused = done.get("refused") or []
    if refused:
        notice += " Non classés (format refusé par le dossier) : " + ", ".join(refused) + "."
    return await _render(request, notice=notice)
