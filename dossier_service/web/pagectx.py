"""What every page handler needs: the signed-in person (or a redirection to the login page),
the CSRF check of posted forms, the posted form itself, and French validation messages."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from aiohttp import web
from multidict import MultiDictProxy
from pydantic import ValidationError

from deployment.conventions import PARIS, ToldError
from dossier_service import appkeys, auth, bounded
from dossier_service.api.context import Ctx, context
from dossier_service.web.rendering import login_url

PAGE_CSRF = web.RequestKey("page_csrf", str)
PAGE_TODAY = web.RequestKey("page_today", date)
FORM_MAX_SIZE = 256 * 1024

FIELD_LABELS = {
    "label": "libellé",
    "display_name": "nom affiché",
    "matrix_user_id": "identifiant Matrix",
    "kind": "type",
    "role": "rôle",
    "profession": "profession",
    "specialty": "spécialité",
    "directory_id": "identifiant annuaire",
    "description": "description",
    "text": "texte",
    "structure": "structure",
    "service": "service",
    "admission_at": "admission",
    "discharge_at": "sortie",
    "comment": "commentaire",
    "status": "statut",
    "theme": "thème",
    "title": "intitulé",
    "starts_on": "début",
    "ends_on": "fin",
    "starts_at": "début",
    "ends_at": "fin",
    "type": "type",
    "subtypes": "sous-types",
    "level": "niveau",
    "due_date": "échéance",
    "assignees": "destinataires",
    "attendees": "participants",
    "birth_name": "nom de naissance",
    "birth_first_names": "prénoms",
    "birth_date": "date de naissance",
    "sex": "sexe",
    "state": "état",
    "rrule": "répétition",
    "location": "lieu",
    "patient_id": "patient",
}
_KINDS = {
    "missing": "obligatoire",
    "string_too_short": "obligatoire",
    "string_too_long": "trop long",
    "string_pattern_mismatch": "format invalide",
    "literal_error": "valeur non permise",
    "date_from_datetime_parsing": "date invalide",
    "date_parsing": "date invalide",
    "datetime_parsing": "date et heure invalides",
    "datetime_from_date_parsing": "date et heure invalides",
    "too_long": "trop d'éléments",
}


class PageInputError(ToldError):
    """A form the person must correct; the message (French) is shown on the page."""


def page_context(request: web.Request) -> Ctx:
    """The signed-in person; anyone else is sent to the login page (303)."""
    try:
        ctx = context(request, check_csrf=False)
    except auth.AuthError:
        raise web.HTTPSeeOther(login_url(request)) from None
    if ctx.session_info is None:  # the bot's token is for the API only
        raise web.HTTPForbidden(text="Pages réservées aux personnes connectées.")
    request[PAGE_CSRF] = auth.csrf_token(ctx.config.session_key, ctx.session_info)
    request[PAGE_TODAY] = ctx.today()
    return ctx


async def posted_form(request: web.Request, ctx: Ctx) -> MultiDictProxy[Any]:
    """The posted (urlencoded) form after the CSRF check; 403 without a valid token."""
    if request.content_length is not None and request.content_length > FORM_MAX_SIZE:
        raise web.HTTPRequestEntityTooLarge(
            max_size=FORM_MAX_SIZE, actual_size=request.content_length
        )
    form = await request.post()
    check_csrf(ctx, form.get(auth.CSRF_FIELD))
    return form


def check_csrf(ctx: Ctx, token: Any) -> None:
    assert ctx.session_info is not None
    if not isinstance(token, str) or not auth.csrf_matches(
        ctx.config.session_key, ctx.session_info, token
    ):
        raise web.HTTPForbidden(text="Jeton anti-falsification (CSRF) manquant ou invalide.")


def french_validation(exc: ValidationError) -> str:
    first = exc.errors()[0]
    loc = [str(p) for p in first["loc"] if not isinstance(p, int)]
    field = FIELD_LABELS.get(loc[0], loc[0]) if loc else "formulaire"
    kind = _KINDS.get(first["type"], "valeur invalide")
    message = first.get("msg", "")
    if first["type"] == "value_error" and "hors limites" in message:
        kind = "date hors limites"
    elif first["type"] == "value_error" and "contrôle" in message:
        kind = "caractère de contrôle non permis"
    elif first["type"] == "value_error" and "fuseau" in message:
        kind = "date et heure invalides"
    return f"Champ « {field} » : {kind}."


def text(form: Mapping[str, Any], name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def optional(form: Mapping[str, Any], name: str) -> str | None:
    return text(form, name) or None


def parse_day(value: str | None) -> date | None:
    if not value:
        return None
    try:
        return bounded.parse_day(value)
    except bounded.OutOfRange as exc:
        raise PageInputError(f"Date invalide : {exc}.") from None
    except ValueError:
        raise PageInputError("Date invalide (format AAAA-MM-JJ).") from None


def parse_local_datetime(value: str | None, label: str) -> datetime | None:
    """A datetime-local input (Paris wall-clock time) as an aware datetime."""
    if not value:
        return None
    try:
        return bounded.parse_moment(value, default_zone=PARIS)
    except bounded.OutOfRange as exc:
        raise PageInputError(f"Champ « {label} » : {exc}.") from None
    except ValueError:
        raise PageInputError(f"Champ « {label} » : date et heure invalides.") from None


def safe_next(target: str | None, default: str = "/patients") -> str:
    """Only local paths are followed after login (no open redirect)."""
    if (
        not target
        or not target.startswith("/")
        or target.startswith("//")
        or "\\" in target
        or any(ord(c) < 32 for c in target)
        or len(target) > 500
    ):
        return default
    return target


def forms_catalogue(request: web.Request) -> Any:
    return request.app[appkeys.FORMS]
