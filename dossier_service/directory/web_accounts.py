"""Account pages of the directory: the public "Demander un compte" form (no login, CSRF,
rate limited per IP, strict validation), the administrators' queue (approve / refuse) and the
one-time activation page that sets the password."""

from __future__ import annotations

from aiohttp import web

from dossier_service.bounded import bounded_int

from .account_requests import RequestError
from .request_form import LABELS, validate
from .web_common import (
    STATE,
    Viewer,
    expired,
    form_csrf,
    html,
    internal,
    log,
    message,
    posted_request,
    read_form,
    request_recorded,
)
from .web_social import decide


# --- public account request -----------------------------------------------------------------
def _form_page(
    request: web.Request, values: dict[str, str], errors: dict[str, str], status: int = 200
) -> web.Response:
    state = request.app[STATE]
    token, cookies = form_csrf(request, state)
    return html(
        state,
        "demande.html",
        status,
        cookies=cookies,
        csrf=token,
        values=values,
        errors=errors,
        labels=LABELS,
    )


async def request_form(request: web.Request) -> web.Response:
    return _form_page(request, {}, {})


async def request_submit(request: web.Request) -> web.Response:
    state = request.app[STATE]
    form = await posted_request(request, state)
    if isinstance(form, web.Response):
        return form
    parsed, errors = validate(form)
    if parsed is None:
        return _form_page(request, form, errors, 400)
    try:
        created = state.requests.submit(parsed).id
    except Exception:
        return message(state, 500, "Erreur", f"Erreur interne (réf. {internal(request)}).")
    log.info("directory: account request %s queued", created)
    return request_recorded(state, "Un administrateur")


# --- admin ----------------------------------------------------------------------------------
async def _admin(request: web.Request) -> Viewer | web.Response:
    state = request.app[STATE]
    viewer = await state.authenticate(request)
    if viewer is None:
        return message(
            state, 401, "Connexion requise", "Connectez-vous avec un compte administrateur."
        )
    if not viewer.is_admin:
        return message(state, 403, "Accès refusé", "Page réservée aux administrateurs.")
    return viewer


async def admin_requests(request: web.Request) -> web.Response:
    state = request.app[STATE]
    viewer = await _admin(request)
    if isinstance(viewer, web.Response):
        return viewer
    status = request.query.get("statut") or None
    return html(
        state,
        "admin_demandes.html",
        csrf=viewer.csrf or "",
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
    form = await read_form(request)
    if (refused := expired(request, state, form, viewer)) is not None:
        return refused
    rid = bounded_int(request.match_info["id"], 0, 0, 2**62)
    approval = None
    try:
        info, approval = await decide(
            request,
            rid,
            request.match_info["action"],
            actor=viewer.user_id,
            admin=True,
            reason=form.get("motif", ""),
        )
    except RequestError as exc:
        info = exc.message
    except Exception:
        info = f"Erreur interne (réf. {internal(request)})."
    return html(
        state,
        "admin_demandes.html",
        csrf=viewer.csrf or "",
        demandes=state.requests.list(None),
        statut="",
        info=info,
        approval=approval,
        activation_url=approval.activation_url(state.config.public_url) if approval else None,
    )


# --- activation -----------------------------------------------------------------------------
async def activation_form(request: web.Request) -> web.Response:
    state = request.app[STATE]
    try:
        _, mxid = state.requests.activation(request.match_info["token"])
    except RequestError as exc:
        return message(state, exc.status, "Activation impossible", exc.message)
    token, cookies = form_csrf(request, state)
    return html(state, "activation.html", cookies=cookies, csrf=token, mxid=mxid, error=None)


async def activation_submit(request: web.Request) -> web.Response:
    state = request.app[STATE]
    ip = request.remote or "inconnu"
    if not state.limiter.allow("activation:" + ip):
        return message(
            state, 429, "Trop de tentatives", "Trop de tentatives : réessayez plus tard."
        )
    form = await read_form(request)
    if (refused := expired(request, state, form, None)) is not None:
        return refused
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
            token, cookies = form_csrf(request, state)
            return html(
                state,
                "activation.html",
                400,
                cookies=cookies,
                csrf=token,
                mxid=mxid,
                error=exc.message,
            )
        return message(state, exc.status, "Activation impossible", exc.message)
    except Exception:
        return message(state, 500, "Erreur", f"Erreur interne (réf. {internal(request)}).")
    return message(
        state,
        200,
        "Compte activé",
        f"Votre compte {mxid} est activé : connectez-vous dans Element avec ce mot de passe.",
    )
