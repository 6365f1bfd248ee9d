"""One catalogue of error replies: Matrix-shaped ``{"errcode", "error"}`` bodies in French.

A refusal never carries data; an unexpected failure answers "Erreur interne (réf. XXXX)"
and logs the traceback under that reference (never the request's content).
"""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.typedefs import Handler

from deployment.incidents import new_reference
from dossier_service import appkeys
from dossier_service.database_unavailable import database_unavailable
from dossier_service.refusal import Refusal
from dossier_service.services.errors import ServiceError

log = logging.getLogger(__name__)

NOT_FOUND = "Introuvable."
FORBIDDEN = "Accès refusé."
CATALOGUE: dict[str, tuple[int, str]] = {
    "M_NOT_FOUND": (404, NOT_FOUND),
    "M_FORBIDDEN": (403, FORBIDDEN),
    "M_MISSING_TOKEN": (401, "Connexion requise."),
    "M_UNKNOWN_TOKEN": (401, "Session invalide ou expirée."),
    "M_NOT_JSON": (400, "Le corps de la requête doit être du JSON valide."),
    "M_BAD_JSON": (400, "Contenu de la requête invalide."),
    "M_INVALID_PARAM": (400, "Paramètre invalide."),
    "M_MISSING_PARAM": (400, "Paramètre manquant."),
    "M_TOO_LARGE": (413, "Requête trop volumineuse."),
    "M_UNRECOGNIZED": (404, "Route inconnue."),
    "M_METHOD_NOT_ALLOWED": (405, "Méthode non permise."),
    "CERCLE_CONFLICT": (409, "Conflit avec l'état actuel du dossier."),
    "CERCLE_UNSUPPORTED_TYPE": (415, "Type de contenu non accepté."),
    "CERCLE_HOMESERVER_UNREACHABLE": (503, "Serveur Matrix injoignable."),
    "CERCLE_DATABASE_UNAVAILABLE": (
        503,
        "Dossier momentanément indisponible (base de données injoignable) : réessayez dans "
        "un instant.",
    ),
    "M_UNKNOWN": (500, "Erreur interne."),
}


class ApiError(Exception):
    def __init__(self, errcode: str, message: str | None = None, status: int | None = None) -> None:
        default_status, default_message = CATALOGUE.get(errcode, (400, "Requête invalide."))
        self.errcode = errcode
        self.message = message or default_message
        self.status = status or default_status
        super().__init__(self.message)


class Denied(Exception):
    """Access to a patient's file refused (404 for outsiders, 403 for members without
    access, 409 with ``error`` for a change the file's state refuses). The middleware writes
    a "refusé" audit row in its own transaction."""

    def __init__(
        self,
        *,
        status: int,
        patient_id: str | None,
        resource: str,
        action: str,
        error: str | None = None,
    ) -> None:
        super().__init__("denied")
        self.status = status
        self.patient_id = patient_id
        self.resource = resource
        self.action = action
        self.error = error


def error_body(errcode: str, message: str) -> dict[str, str]:
    return {"errcode": errcode, "error": message}


def json_error(status: int, errcode: str, message: str) -> web.Response:
    return web.json_response(error_body(errcode, message), status=status)


def _is_api(request: web.Request) -> bool:
    return request.path.startswith("/api/")


def _render(request: web.Request, status: int, errcode: str, message: str) -> web.StreamResponse:
    if _is_api(request):
        return json_error(status, errcode, message)
    renderer = request.app.get(appkeys.ERROR_RENDERER)
    if renderer is not None:
        response: web.StreamResponse = renderer(request, status, message)
        return response
    return web.Response(status=status, text=message, content_type="text/plain")


_HTTP_CODES = {404: "M_UNRECOGNIZED", 405: "M_METHOD_NOT_ALLOWED", 413: "M_TOO_LARGE"}


async def _audit_denial(request: web.Request, denied: Denied) -> None:
    from dossier_service.api.context import audit_refusal

    try:
        await audit_refusal(request, denied)
    except Exception:  # the refusal stands even if its trace cannot be written
        ref = new_reference()
        log.exception("échec de l'audit d'un refus (réf. %s)", ref)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except Denied as denied:
        await _audit_denial(request, denied)
        if denied.status == 403:
            return _render(request, 403, "M_FORBIDDEN", FORBIDDEN)
        if denied.status == 409:
            return _render(
                request, 409, "CERCLE_CONFLICT", denied.error or CATALOGUE["CERCLE_CONFLICT"][1]
            )
        return _render(request, 404, "M_NOT_FOUND", NOT_FOUND)
    except ApiError as exc:
        return _render(request, exc.status, exc.errcode, exc.message)
    except (Refusal, ServiceError) as exc:
        return _render(request, exc.status, exc.errcode, exc.message)
    except web.HTTPException as exc:
        if not _is_api(request) or exc.status < 400:
            raise
        errcode = _HTTP_CODES.get(
            exc.status, "M_UNKNOWN" if exc.status >= 500 else "M_INVALID_PARAM"
        )
        message = CATALOGUE.get(errcode, (exc.status, "Requête refusée."))[1]
        return json_error(exc.status, errcode, message)
    except Exception as exc:
        ref = new_reference()
        route = (
            request.match_info.route.resource.canonical
            if request.match_info.route.resource
            else "?"
        )
        if database_unavailable(exc):
            # the exception's type only: its text may quote the statement or its parameters
            log.warning(
                "base de données injoignable (réf. %s, %s) sur %s %s",
                ref,
                type(exc).__name__,
                request.method,
                route,
            )
            status, message = CATALOGUE["CERCLE_DATABASE_UNAVAILABLE"]
            response = _render(
                request, status, "CERCLE_DATABASE_UNAVAILABLE", f"{message[:-1]} (réf. {ref})."
            )
            response.headers["Retry-After"] = "5"
            return response
        log.exception("erreur interne (réf. %s) sur %s %s", ref, request.method, route)
        return _render(request, 500, "M_UNKNOWN", f"Erreur interne (réf. {ref})")
