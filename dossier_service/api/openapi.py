"""The OpenAPI description, derived from the declared operations (api/operation.py) and
nothing else: a route cannot drift from its documentation."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from dossier_service import appkeys
from dossier_service.api.operation import BodyReader, Operation
from dossier_service.api.runner import OPERATIONS
from dossier_service.config import DossierConfig

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
    "503": "Serveur Matrix ou base de données injoignable : réessayer",
}
# fields the API checks against the deployment's vocabularies (config): the description lists them
VOCABULARIES: dict[tuple[str, str], Callable[[DossierConfig], Iterable[str]]] = {
    ("EventIn", "type"): lambda config: config.event_types,
    ("EventUpdate", "type"): lambda config: config.event_types,
    ("EpisodeIn", "theme"): lambda config: config.lifeline_themes,
    ("TaskIn", "type"): lambda config: config.task_types,
    ("FileStatusIn", "status"): lambda config: config.file_statuses,
}
SECURITY: list[dict[str, list[str]]] = [{"session": []}, {"cookie": []}]


def path_params(path: str) -> list[str]:
    return [name[1:-1] for name in path.split("/") if name.startswith("{")]


def describe(op: Operation, app: web.Application, components: dict[str, Any]) -> dict[str, Any]:
    """One operation's OpenAPI entry (its models' schemas go into ``components``)."""
    entry: dict[str, Any] = {
        "summary": op.summary,
        "operationId": op.operation_id,
        "tags": [op.path.split("/")[3]],
        "parameters": [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in path_params(op.path)
        ]
        + [
            {"name": param.name, "in": "query", "required": False, "schema": param.schema()}
            for param in op.query
        ],
        "responses": {
            "200": {"description": "OK"},
            "201": {"description": "Créé"},
            **{
                code: {"description": text, "content": {"application/json": {"schema": ERROR}}}
                for code, text in ERROR_RESPONSES.items()
            },
        },
        "x-cercle-access": op.access.name,
    }
    if op.audit is not None:
        entry["x-cercle-audit"] = {"action": op.audit.action, "resource": op.audit.resource}
    if op.access.authenticated:
        entry["security"] = SECURITY
    if op.idempotent:
        entry["x-cercle-idempotent"] = True  # an Idempotency-Key header replays the first reply
    if isinstance(op.body, BodyReader):
        entry["requestBody"] = {"required": True, "content": op.body.openapi(app)}
    elif op.body is not None:
        entry["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _component(op.body, components)}},
        }
    if op.response is not None:  # whichever success the handler answers
        content = {"application/json": {"schema": _component(op.response, components)}}
        for ok in ("200", "201"):
            entry["responses"][ok]["content"] = content
    return entry


def _component(model: type[BaseModel], components: dict[str, Any]) -> dict[str, str]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(schema.pop("$defs", {}))
    components[model.__name__] = schema
    return {"$ref": f"#/components/schemas/{model.__name__}"}


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
    operations: dict[tuple[str, str], Operation] = app[OPERATIONS]
    for (method, path), op in operations.items():
        paths.setdefault(path, {})[method.lower()] = describe(op, app, components)
    for (model, field), values in VOCABULARIES.items():
        prop = components[model]["properties"][field]
        for variant in (prop, *prop.get("anyOf", ())):
            if variant.get("type") == "string":
                for key in ("type", "pattern", "minLength", "maxLength"):
                    variant.pop(key, None)
                variant["enum"] = list(values(config))
    _link_created_rows(paths, operations)
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


def _file_in_body(operations: dict[tuple[str, str], Operation]) -> list[Operation]:
    """Rows created elsewhere than under their file's path, the file named in their body."""
    return [
        op
        for op in operations.values()
        if op.method == "POST"
        and not path_params(op.path)
        and isinstance(op.body, type)
        and "patient_id" in op.body.model_fields
    ]


def _link_created_rows(
    paths: dict[str, dict[str, Any]], operations: dict[tuple[str, str], Operation]
) -> None:
    """OpenAPI links from each creation (POST on a collection, answered 201 with the new row's
    ``id``) to the operations on that row (the collection's path followed by ``/{…_id}``),
    and from a new file to the tasks and events created for it: clients, and the stateful
    fuzzing, follow them from a response to the next request."""
    for collection, described in paths.items():
        if "post" not in described:
            continue
        known = path_params(collection)
        links: dict[str, Any] = {}
        for path, targets in paths.items():
            if not path.startswith(collection + "/{"):
                continue
            new = [name for name in path_params(path) if name not in known]
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
            for op in _file_in_body(operations):
                links[op.operation_id] = {
                    "operationId": op.operation_id,
                    "requestBody": {"patient_id": "$response.body#/id"},
                }
        if links:
            described["post"]["responses"]["201"] = {"description": "Créé", "links": links}
