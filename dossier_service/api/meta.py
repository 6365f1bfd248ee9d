"""The OpenAPI description (built from the routes and the request schemas) and the
catalogue of configurable vocabularies."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from dossier_service import appkeys, schemas
from dossier_service.api.context import context
from dossier_service.config import DossierConfig
from dossier_service.identity import IDENTITY_DOCUMENTS, IDENTITY_STATUSES, STATUS_LABELS
from dossier_service.models.circle import MEMBER_KINDS, ROLE_LABELS
from dossier_service.models.notebook import ENTRY_KINDS
from dossier_service.models.tasks import TASK_LEVELS, TASK_STATES

routes = web.RouteTableDef()
OPENAPI_KEY = web.AppKey("dossier_openapi", dict)

# request body of each operation (method, path) -> schema
REQUEST_BODIES: dict[tuple[str, str], type[BaseModel] | str] = {
    ("POST", "/api/v1/login"): schemas.OpenIdLoginIn,
    ("POST", "/api/v1/sessions/revoke"): schemas.SessionsRevokeIn,
    ("POST", "/api/v1/patients"): schemas.PatientCreate,
    ("PATCH", "/api/v1/patients/{patient_id}/identity"): schemas.IdentityUpdate,
    ("POST", "/api/v1/patients/{patient_id}/status"): schemas.FileStatusIn,
    ("POST", "/api/v1/patients/{patient_id}/death"): schemas.DeathIn,
    ("POST", "/api/v1/patients/{patient_id}/death/cancel"): schemas.DeathCancelIn,
    ("PUT", "/api/v1/patients/{patient_id}/room"): schemas.RoomLinkIn,
    ("POST", "/api/v1/patients/{patient_id}/circle"): schemas.CircleMemberIn,
    ("PATCH", "/api/v1/patients/{patient_id}/circle/{member_id}"): schemas.CircleMemberUpdate,
    ("POST", "/api/v1/patients/{patient_id}/circle/left-room"): schemas.LeftRoomIn,
    ("POST", "/api/v1/patients/{patient_id}/memos"): schemas.MemoIn,
    ("PATCH", "/api/v1/patients/{patient_id}/memos/{memo_id}"): schemas.MemoUpdate,
    ("POST", "/api/v1/patients/{patient_id}/hospitalisations"): schemas.HospitalisationIn,
    (
        "PATCH",
        "/api/v1/patients/{patient_id}/hospitalisations/{stay_id}",
    ): schemas.HospitalisationUpdate,
    ("POST", "/api/v1/patients/{patient_id}/lifeline"): schemas.EpisodeIn,
    ("PATCH", "/api/v1/patients/{patient_id}/lifeline/{episode_id}"): schemas.EpisodeUpdate,
    ("POST", "/api/v1/patients/{patient_id}/notebook"): schemas.NotebookIn,
    ("PUT", "/api/v1/patients/{patient_id}/forms/{form_id}"): schemas.FormAnswersIn,
    ("POST", "/api/v1/patients/{patient_id}/documents"): "multipart",
    ("POST", "/api/v1/tasks"): schemas.TaskIn,
    ("PATCH", "/api/v1/tasks/{task_id}"): schemas.TaskUpdate,
    ("POST", "/api/v1/agenda/events"): schemas.EventIn,
    ("PATCH", "/api/v1/agenda/events/{event_id}"): schemas.EventUpdate,
}
PUBLIC = {("POST", "/api/v1/login"), ("GET", "/api/v1/openapi.json"), ("POST", "/api/v1/logout")}
ERROR = {"$ref": "#/components/schemas/Error"}
# every refusal the API answers, each a Matrix-shaped {"errcode", "error"} body
ERROR_RESPONSES = {
    "400": "Requête invalide",
    "401": "Connexion requise, session invalide ou terminée",
    "403": "Accès refusé (membre sans accès, rôle, CSRF)",
    "404": "Introuvable (ou pas dans le cercle de soins)",
    "405": "Méthode non permise",
    "409": "Conflit avec l'état actuel du dossier",
    "413": "Requête trop volumineuse",
    "415": "Type de contenu non accepté",
    "503": "Serveur Matrix injoignable",
}
# fields the API checks against the deployment's vocabularies (config): the description lists them
VOCABULARIES: dict[tuple[str, str], Callable[[DossierConfig], Iterable[str]]] = {
    ("EventIn", "type"): lambda config: config.event_types,
    ("EventUpdate", "type"): lambda config: config.event_types,
    ("EpisodeIn", "theme"): lambda config: config.lifeline_themes,
    ("TaskIn", "type"): lambda config: config.task_types,
    ("FileStatusIn", "status"): lambda config: config.file_statuses,
}
# rows created elsewhere than under their file's path: the new file's id goes in their body
FILE_IN_BODY = (("post", "/api/v1/tasks"), ("post", "/api/v1/agenda/events"))


def build_openapi(app: web.Application) -> dict[str, Any]:
    config = app[appkeys.CONFIG]
    components: dict[str, Any] = {
        "Error": {
            "type": "object",
            "required": ["errcode", "error"],
            "properties": {"errcode": {"type": "string"}, "error": {"type": "string"}},
        }
    }
    paths: dict[str, dict[str, Any]] = {}
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("formatter") or info.get("path")
        if not path or not path.startswith("/api/v1/") or route.method == "HEAD":
            continue
        doc = inspect.getdoc(route.handler) or route.handler.__name__.replace("_", " ")
        op: dict[str, Any] = {
            "summary": doc.splitlines()[0],
            "operationId": f"{route.method.lower()}_{route.handler.__name__}",
            "tags": [path.split("/")[3]],
            "parameters": [
                {"name": name[1:-1], "in": "path", "required": True, "schema": {"type": "string"}}
                for name in path.split("/")
                if name.startswith("{")
            ],
            "responses": {
                "200": {"description": "OK"},
                "201": {"description": "Créé"},
                **{
                    code: {"description": text, "content": {"application/json": {"schema": ERROR}}}
                    for code, text in ERROR_RESPONSES.items()
                },
            },
        }
        if (route.method, path) not in PUBLIC:
            op["security"] = [{"session": []}, {"cookie": []}]
        body = REQUEST_BODIES.get((route.method, path))
        if isinstance(body, type):
            schema = body.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(schema.pop("$defs", {}))
            components[body.__name__] = schema
            op["requestBody"] = {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {"$ref": f"#/components/schemas/{body.__name__}"}
                    }
                },
            }
        elif body == "multipart":
            op["requestBody"] = {
                "required": True,
                "content": {
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "required": ["file", "category"],
                            "additionalProperties": False,
                            "properties": {
                                "file": {"type": "string", "format": "binary"},
                                "category": {"enum": list(config.document_categories)},
                                "description": {"type": "string"},
                                "restricted_to_roles": {"type": "string"},
                            },
                        }
                    }
                },
            }
        paths.setdefault(path, {})[route.method.lower()] = op
    for (model, field), values in VOCABULARIES.items():
        prop = components[model]["properties"][field]
        for variant in (prop, *prop.get("anyOf", ())):
            if variant.get("type") == "string":
                for key in ("type", "pattern", "minLength", "maxLength"):
                    variant.pop(key, None)
                variant["enum"] = list(values(config))
    _link_created_rows(paths)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Cercle — dossier de coordination", "version": "1"},
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": components,
            "securitySchemes": {
                "session": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "Jeton de session (POST /api/v1/login) ou jeton de service",
                },
                "cookie": {"type": "apiKey", "in": "cookie", "name": "cercle_dossier_session"},
            },
        },
    }


def _params(path: str) -> list[str]:
    return [name[1:-1] for name in path.split("/") if name.startswith("{")]


def _link_created_rows(paths: dict[str, dict[str, Any]]) -> None:
    """OpenAPI links from each creation (POST on a collection, answered 201 with the new row's
    ``id``) to the operations on that row (the collection's path followed by ``/{…_id}``),
    and from a new file to the tasks and events created for it: clients, and the stateful
    fuzzing, follow them from a response to the next request."""
    for collection, operations in paths.items():
        if "post" not in operations:
            continue
        known = _params(collection)
        links: dict[str, Any] = {}
        for path, targets in paths.items():
            if not path.startswith(collection + "/{"):
                continue
            new = [name for name in _params(path) if name not in known]
            if len(new) != 1:  # a deeper row this response does not name
                continue
            values = {new[0]: "$response.body#/id"}
            values.update({name: f"$request.path.{name}" for name in known})
            for target in targets.values():
                links[target["operationId"]] = {
                    "operationId": target["operationId"],
                    "parameters": dict(values),
                }
        if collection == "/api/v1/patients":
            for method, path in FILE_IN_BODY:
                target_id = paths[path][method]["operationId"]
                links[target_id] = {
                    "operationId": target_id,
                    "requestBody": {"patient_id": "$response.body#/id"},
                }
        if links:
            operations["post"]["responses"]["201"] = {"description": "Créé", "links": links}


@routes.get("/api/v1/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    """This API's OpenAPI description."""
    app = request.app
    if OPENAPI_KEY not in app:
        app[OPENAPI_KEY] = build_openapi(app)  # built once, after every route is in place
    return web.json_response(app[OPENAPI_KEY])


@routes.get("/api/v1/catalogue")
async def catalogue(request: web.Request) -> web.Response:
    """The vocabularies of this deployment (categories, themes, roles, types …)."""
    ctx = context(request)
    config = ctx.config
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
            "forms": [{"id": f.key, "title": f.title} for f in request.app[appkeys.FORMS]],
        }
    )
