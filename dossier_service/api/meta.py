"""This API's OpenAPI description (derived from the declared operations, api/openapi.py)
and the catalogue of configurable vocabularies."""

from __future__ import annotations

from aiohttp import web

from dossier_service import appkeys
from dossier_service.api.openapi import build_openapi
from dossier_service.api.operation import PUBLIC, SIGNED_IN, Call, Operations
from dossier_service.identity import IDENTITY_DOCUMENTS, IDENTITY_STATUSES, STATUS_LABELS
from dossier_service.models.circle import MEMBER_KINDS, ROLE_LABELS
from dossier_service.models.notebook import ENTRY_KINDS
from dossier_service.models.tasks import TASK_LEVELS, TASK_STATES

operations = Operations()
OPENAPI_KEY = web.AppKey("dossier_openapi", dict)


@operations.answer("GET", "/api/v1/openapi.json", access=PUBLIC, audit=None)
async def openapi(call: Call) -> web.StreamResponse:
    """This API's OpenAPI description."""
    app = call.request.app
    if OPENAPI_KEY not in app:
        app[OPENAPI_KEY] = build_openapi(app)  # built once, after every route is in place
    return web.json_response(app[OPENAPI_KEY])


@operations.answer("GET", "/api/v1/catalogue", access=SIGNED_IN, audit=None)
async def catalogue(call: Call) -> web.StreamResponse:
    """The vocabularies of this deployment (categories, themes, roles, types …)."""
    config = call.ctx.config
    return web.json_response(
        {
            "document_categories": list(config.document_categories),
            "lifeline_themes": list(config.lifeline_themes),
            "event_types": list(config.event_types),
            "task_types": {k: list(v) for k, v in config.task_types.items()},
            "task_levels": list(TASK_LEVELS),
            "task_states": list(TASK_STATES),
            "file_statuses": list(config.file_statuses),
            "identity_statuses": [
                {"code": s, "label": STATUS_LABELS[s]} for s in IDENTITY_STATUSES
            ],
            "identity_documents": list(IDENTITY_DOCUMENTS),
            "roles": [{"code": k, "label": v} for k, v in ROLE_LABELS.items()],
            "member_kinds": list(MEMBER_KINDS),
            "notebook_kinds": list(ENTRY_KINDS),
            "forms": [{"id": f.key, "title": f.title} for f in call.request.app[appkeys.FORMS]],
        }
    )
