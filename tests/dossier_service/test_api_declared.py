"""The API declared once (issue 14 item 4): every route of /api/v1 is a declared operation,
its OpenAPI entry is derived from that declaration, every write declares its audit, and the
runner refuses to commit a call whose audit row was not written."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from dossier_service.api import openapi
from dossier_service.api.operation import SIGNED_IN, Audit, Call, Operation, member_of_file
from dossier_service.api.runner import OPERATIONS
from dossier_service.policy import Action
from dossier_service.services import journal
from tests.dossier_service.conftest import COORD, Api

API_DIR = Path(__file__).resolve().parents[2] / "dossier_service" / "api"


def _api_routes(api: Api) -> dict[tuple[str, str], Any]:
    found = {}
    for route in api.app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("formatter") or info.get("path") or ""
        if path.startswith("/api/v1/") and route.method != "HEAD":
            found[(route.method, path)] = route.handler
    return found


async def test_every_route_is_a_declared_operation(api: Api) -> None:
    routes = _api_routes(api)
    declared: dict[tuple[str, str], Operation] = api.app[OPERATIONS]
    assert len(routes) >= 40
    assert set(routes) == set(declared)
    for key, handler in routes.items():
        assert getattr(handler, "operation", None) is declared[key], key


async def test_the_openapi_entry_of_each_route_is_derived_from_its_declaration(api: Api) -> None:
    doc = await api.ok("GET", "/api/v1/openapi.json")
    declared: dict[tuple[str, str], Operation] = api.app[OPERATIONS]
    described = {(method.upper(), path) for path, ops in doc["paths"].items() for method in ops}
    assert described == set(declared)
    for (method, path), op in declared.items():
        entry = doc["paths"][path][method.lower()]
        expected = openapi.describe(op, api.app, {})
        for field in ("operationId", "summary", "parameters", "x-cercle-access", "security"):
            assert entry.get(field) == expected.get(field), (method, path, field)
        assert entry.get("x-cercle-audit") == (
            {"action": op.audit.action, "resource": op.audit.resource} if op.audit else None
        )
        assert ("requestBody" in entry) == (op.body is not None), (method, path)
        if op.response is not None:
            schema = entry["responses"]["200"]["content"]["application/json"]["schema"]
            assert schema == {"$ref": f"#/components/schemas/{op.response.__name__}"}
        if op.query:  # query parameters are documented from the same declaration
            names = {p["name"] for p in entry["parameters"] if p["in"] == "query"}
            assert names == {param.name for param in op.query}


async def test_a_declared_response_model_describes_the_answer(api: Api) -> None:
    """``GET /api/v1/me`` declares ``Me``: its answer fits the schema the document shows."""
    from tests.dossier_service.conftest import MEMBER

    doc = await api.ok("GET", "/api/v1/openapi.json")
    schema = doc["components"]["schemas"]["Me"]
    me = await api.ok("GET", "/api/v1/me", as_user=MEMBER)
    assert set(schema["required"]) <= set(me) <= set(schema["properties"])
    assert me["user_id"] == MEMBER and me["kind"] in schema["properties"]["kind"]["enum"]


async def test_every_write_declares_its_audit_and_no_handler_writes_one_by_hand(
    api: Api,
) -> None:
    declared: dict[tuple[str, str], Operation] = api.app[OPERATIONS]
    writes = [op for op in declared.values() if op.method != "GET"]
    assert writes and all(op.audit is not None for op in writes)

    async def handler(call: Call, session: Any) -> tuple[int, Any]:
        return 200, {}

    with pytest.raises(TypeError, match="audit"):
        Operation("POST", "/api/v1/x", access=SIGNED_IN, audit=None, handler=handler)
    with pytest.raises(TypeError, match="dossier"):
        Operation(
            "GET", "/api/v1/x", access=member_of_file(Action.READ), audit=None, handler=handler
        )
    # the audit row comes from the declaration, never from a handler's own call
    by_hand = re.compile(r"\b(ctx\.audit|journal\.audit)\(")
    for module in API_DIR.glob("*.py"):
        if module.name in ("runner.py", "context.py"):
            continue
        assert not by_hand.search(module.read_text()), module.name


async def test_a_refined_audit_resource_stays_in_its_declared_family(api: Api) -> None:
    op = Operation(
        "POST",
        "/api/v1/patients/{patient_id}/memos/x",
        access=member_of_file(Action.WRITE),
        audit=Audit("create", "memos"),
        handler=lambda call, session: None,  # type: ignore[arg-type,return-value]
    )
    call = Call(op=op, request=None, context=None, principal=None)  # type: ignore[arg-type]
    call.audit_as("memos/abc")
    assert call.audit_resource == "memos/abc"
    with pytest.raises(ValueError):
        call.audit_as("notebook")
    with pytest.raises(RuntimeError):
        call.nothing_read()  # a write always leaves its trace


async def test_a_write_whose_audit_row_is_missing_is_rolled_back(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    pid = await api.new_patient()
    memos_before = await api.count("memos")
    audits_before = await api.count("audit_log")

    async def forgets(*args: Any, **kwargs: Any) -> None:
        return None  # writes no row

    monkeypatch.setattr(journal, "audit", forgets)
    status, body = await api.call(
        "POST", f"/api/v1/patients/{pid}/memos", as_user=COORD, json={"text": "Clé sous le pot"}
    )
    assert status == 500 and body["errcode"] == "M_UNKNOWN"
    assert "Clé" not in str(body)
    monkeypatch.undo()
    assert await api.count("memos") == memos_before
    assert await api.count("audit_log") == audits_before
    # and with its audit row the same write commits
    await api.ok("POST", f"/api/v1/patients/{pid}/memos", 201, as_user=COORD, json={"text": "Clé"})
    assert await api.count("memos") == memos_before + 1
    assert await api.count("audit_log", "WHERE resource = 'memos'") >= 1
