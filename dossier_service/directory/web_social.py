"""Requests without RPPS on the web (issue 18): the public form (its structure chosen by
FINESS number or found by name, without JavaScript), the one decision used by the admins'
queue, the structure's page and the JSON API, and the places in care circles the approval
gives.

- ``GET|POST /annuaire/demande-sans-rpps`` (no login, CSRF, rate limited as the RPPS form);
- ``GET /api/v1/annuaire/demandes?finess=…`` the requests waiting for a structure (its
  referents, admins), ``POST /api/v1/annuaire/demandes/{id}/approuver|refuser`` (JSON
  ``{"motif"}``); anyone else gets 403 ``{"errcode","error"}``.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from typing import Any

from aiohttp import web

from dossier_service import appkeys
from dossier_service.auth import CSRF_HEADER
from dossier_service.bounded import bounded_int
from dossier_service.policy import Principal
from dossier_service.services import journal, structures

from . import social_requests as social
from .account_requests import Approval, RequestError
from .structure_rows import is_referent
from .web_common import (
    STATE,
    DirectoryState,
    error,
    form_csrf,
    html,
    internal,
    log,
    message,
    posted_request,
    request_recorded,
)


# --- public form ----------------------------------------------------------------------------
async def _form_page(
    request: web.Request,
    values: dict[str, str],
    errors: dict[str, str],
    status: int = 200,
) -> web.Response:
    state = request.app[STATE]
    token, cookies = form_csrf(request, state)
    q = request.query.get("structure_q", "")[:120]
    found = await state.search_structures(q, per_page=10) if q.strip() else None
    finess = values.get("finess") or request.query.get("finess", "")[:9]
    chosen = await state.structure(finess) if finess.strip() else None
    return html(
        state,
        "demande_sans_rpps.html",
        status,
        cookies=cookies,
        csrf=token,
        values={**values, "finess": finess},
        errors=errors,
        labels=social.LABELS,
        roles=social.ROLES,
        structure_q=q,
        found=found,
        chosen=chosen,
    )


async def request_form(request: web.Request) -> web.Response:
    return await _form_page(request, {}, {})


async def request_submit(request: web.Request) -> web.Response:
    state = request.app[STATE]
    form = await posted_request(request, state)
    if isinstance(form, web.Response):
        return form
    parsed, errors = social.validate(form)
    if parsed is None:
        return await _form_page(request, form, errors, 400)
    try:
        created = social.submit(state.requests, parsed).id
    except RequestError as exc:
        field = "finess" if exc.status == 404 else "email"
        return await _form_page(request, form, {field: exc.message}, exc.status)
    except Exception:
        return message(state, 500, "Erreur", f"Erreur interne (réf. {internal(request)}).")
    log.info("directory: account request %s (without RPPS) queued", created)
    return request_recorded(state, "Un référent de votre structure ou un administrateur")


# --- the one decision -----------------------------------------------------------------------
async def decide(
    request: web.Request, rid: int, action: str, *, actor: str, admin: bool, reason: str = ""
) -> tuple[str, Approval | None]:
    """Approve or refuse request ``rid`` (an admin: any; a referent: her structure's), and
    for an approval: the link by e-mail when configured, the places in care circles.
    Raises :class:`RequestError` (403 for someone who may not decide)."""
    state = request.app[STATE]
    if action == "refuser":
        social.refuse(state.requests, rid, reason=reason, actor=actor, admin=admin)
        return f"Demande {rid} refusée.", None
    if state.admin_api is None:
        raise RequestError(
            "M_UNKNOWN", "Aucun accès administrateur au serveur Matrix n'est configuré.", 503
        )
    async with state.admin_api() as api:
        approval = await social.approve(state.requests, rid, actor=actor, admin=admin, api=api)
    info = f"Demande {rid} approuvée : compte {approval.mxid}."
    req = state.requests.get(rid)
    if req is not None and req.finess:
        info += " " + await _places(request, req.finess, approval.mxid, actor, admin)
    if state.config.directory.smtp is not None:
        info += " " + await email_link(request, state, approval, actor)
    return info, approval


async def _places(request: web.Request, finess: str, mxid: str, actor: str, admin: bool) -> str:
    """The new member's places in the circles holding her structure « avec accès »."""
    database = request.app.get(appkeys.DATABASE)
    if database is None:  # the directory alone (no files to give access to)
        return ""
    principal = Principal(user_id=actor, is_admin=admin)
    try:
        async with database.transaction() as session:
            given = await structures.bring_into_circles(
                session, principal=principal, finess=finess, user_id=mxid
            )
            await journal.audit(
                session,
                principal=principal,
                action="create",
                resource=f"structures/{finess}/members/demande",
                patient_id=None,
            )
    except Exception:
        return (
            f"Membre de la structure, mais l'accès à ses dossiers n'a pas pu être donné "
            f"(réf. {internal(request)}) : « Vérifier les accès aux dossiers » sur la page "
            "de la structure le redonne."
        )
    return f"Membre de la structure ; accès à {given} dossier(s) par la structure."


async def email_link(request: web.Request, state: DirectoryState, approval: Any, actor: str) -> str:
    try:
        to = await asyncio.to_thread(
            state.requests.email_activation,
            approval,
            smtp=state.config.directory.smtp,
            public_url=state.config.public_url,
            actor=actor,
        )
    except Exception:
        ref = internal(request)
        return (
            f"Envoi de l'e-mail impossible (réf. {ref}) : transmettez le lien "
            "ci-dessous au professionnel."
        )
    return f"Lien d'activation envoyé par e-mail à {to}."


# --- JSON API -------------------------------------------------------------------------------
async def api_pending(request: web.Request) -> web.Response:
    state = request.app[STATE]
    viewer = await state.authenticate(request)
    if viewer is None:
        return error(401, "M_MISSING_TOKEN", "Connexion requise.")
    finess = request.query.get("finess", "").strip().upper()[:9]
    if not finess:
        return error(400, "M_MISSING_PARAM", "Paramètre finess obligatoire.")
    if not viewer.is_admin and not is_referent(state.requests.conn, finess, viewer.user_id):
        return error(
            403, "M_FORBIDDEN", "Réservé aux référents de la structure et aux administrateurs."
        )
    pending = social.pending_for(state.requests, finess)
    return web.json_response({"demandes": [r.as_json() for r in pending]})


async def api_decide(request: web.Request) -> web.Response:
    state = request.app[STATE]
    viewer = await state.authenticate(request)
    if viewer is None:
        return error(401, "M_MISSING_TOKEN", "Connexion requise.")
    posted = request.headers.get(CSRF_HEADER, "")
    if viewer.csrf is not None and not secrets.compare_digest(viewer.csrf, posted):
        # a browser's cookie session: the API's own rule, the token in X-CSRF-Token
        return error(403, "M_FORBIDDEN", "Jeton anti-falsification (CSRF) manquant ou invalide.")
    try:
        body: Any = json.loads(await request.text() or "{}")
    except ValueError:
        return error(400, "M_NOT_JSON", "Corps JSON invalide.")
    reason = str(body.get("motif", "")) if isinstance(body, dict) else ""
    rid = bounded_int(request.match_info["id"], 0, 0, 2**62)
    try:
        info, approval = await decide(
            request,
            rid,
            request.match_info["action"],
            actor=viewer.user_id,
            admin=viewer.is_admin,
            reason=reason,
        )
    except RequestError as exc:
        return error(exc.status, exc.errcode, exc.message)
    except Exception:
        return error(500, "M_UNKNOWN", f"Erreur interne (réf. {internal(request)}).")
    found = state.requests.get(rid)
    answer: dict[str, Any] = {"message": info, "demande": found.as_json() if found else None}
    if approval is not None:
        answer["lien_activation"] = approval.activation_url(state.config.public_url)
    return web.json_response(answer)


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/annuaire/demande-sans-rpps", request_form)
    app.router.add_post("/annuaire/demande-sans-rpps", request_submit)
    app.router.add_get("/api/v1/annuaire/demandes", api_pending)
    app.router.add_post(
        r"/api/v1/annuaire/demandes/{id:\d+}/{action:approuver|refuser}", api_decide
    )


__all__ = ["DirectoryState", "decide", "setup_routes"]
