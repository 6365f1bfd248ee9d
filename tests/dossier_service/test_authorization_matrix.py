"""Every route of the API against every kind of caller: outsider, member without access,
member, coordinator, admin. Refusals carry no data and are audited; successes are audited."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest

from tests.dossier_service.conftest import ADMIN, COORD, MEMBER, NOACCESS, OUTSIDER, Api

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
ROLES = ("outsider", "noaccess", "member", "coord", "admin")
USERS = {
    "outsider": OUTSIDER,
    "noaccess": NOACCESS,
    "member": MEMBER,
    "coord": COORD,
    "admin": ADMIN,
}
READ = {"outsider": 404, "noaccess": 403, "member": 200, "coord": 200, "admin": 200}
WRITE = {"outsider": 404, "noaccess": 403, "member": 201, "coord": 201, "admin": 201}
UPDATE = {**WRITE, "member": 200, "coord": 200, "admin": 200}
MANAGE = {"outsider": 404, "noaccess": 403, "member": 403, "coord": 201, "admin": 201}
MANAGE_UPDATE = {**MANAGE, "coord": 200, "admin": 200}


@dataclass
class File:
    pid: str
    ids: dict[str, str] = field(default_factory=dict)


async def setup_file(api: Api) -> File:
    pid = await api.patient_with_circle()
    f = File(pid)
    memo = await api.created(
        f"/api/v1/patients/{pid}/memos", {"text": "Clé sous le paillasson"}, as_user=COORD
    )
    stay = await api.created(
        f"/api/v1/patients/{pid}/hospitalisations",
        {"structure": "CHU Purpan", "admission_at": "2025-01-02T10:00:00+01:00"},
        as_user=COORD,
    )
    ep = await api.created(
        f"/api/v1/patients/{pid}/lifeline",
        {"theme": "Suivi / Réunion", "starts_on": "2025-01-05"},
        as_user=COORD,
    )
    form = aiohttp.FormData()
    form.add_field("category", "ordonnance")
    form.add_field("file", PDF, filename="ordo.pdf", content_type="application/pdf")
    doc = await api.ok("POST", f"/api/v1/patients/{pid}/documents", 201, as_user=COORD, data=form)
    task = await api.created(
        "/api/v1/tasks",
        {
            "patient_id": pid,
            "type": "Soins",
            "label": "Pansement",
            "assignees": [{"kind": "personne", "ref": MEMBER}],
        },
        as_user=COORD,
    )
    event = await api.created(
        "/api/v1/agenda/events",
        {
            "patient_id": pid,
            "type": "Visite à domicile",
            "title": "Visite",
            "starts_at": "2025-03-01T09:00:00+01:00",
            "ends_at": "2025-03-01T10:00:00+01:00",
        },
        as_user=COORD,
    )
    circle = await api.ok("GET", f"/api/v1/patients/{pid}/circle", as_user=COORD)
    member_id = next(m["id"] for m in circle["items"] if m["matrix_user_id"] == MEMBER)
    f.ids.update(
        memo=memo["id"],
        stay=stay["id"],
        episode=ep["id"],
        doc=doc["id"],
        task=task["id"],
        event=event["id"],
        member=member_id,
    )
    return f


def upload() -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("category", "bilan")
    form.add_field("file", PDF + b"% bilan\n", filename="bilan.pdf", content_type="application/pdf")
    return form


Body = Callable[[File], Any]


@dataclass(frozen=True)
class Case:
    method: str
    path: str
    expected: dict[str, int]
    json: Body | None = None
    data: Callable[[], Any] | None = None
    prepare: Callable[[Api, File], Awaitable[None]] | None = None


async def _declare_death(api: Api, f: File) -> None:
    await api.created(
        f"/api/v1/patients/{f.pid}/death", {"death_date": "2025-01-01"}, as_user=COORD
    )


CASES: dict[str, Case] = {
    "file": Case("GET", "/api/v1/patients/{pid}", READ),
    "identity": Case(
        "PATCH", "/api/v1/patients/{pid}/identity", UPDATE, json=lambda f: {"postcode": "31400"}
    ),
    "status": Case(
        "POST", "/api/v1/patients/{pid}/status", WRITE, json=lambda f: {"status": "en veille"}
    ),
    "death": Case(
        "POST", "/api/v1/patients/{pid}/death", WRITE, json=lambda f: {"death_date": "2025-01-01"}
    ),
    "death-cancel": Case(
        "POST",
        "/api/v1/patients/{pid}/death/cancel",
        UPDATE,
        json=lambda f: {"reason": "erreur"},
        prepare=_declare_death,
    ),
    "room": Case(
        "PUT",
        "/api/v1/patients/{pid}/room",
        # issue 12: only the bot links a room (it checks the room in Matrix), never a person
        {"outsider": 404, "noaccess": 403, "member": 403, "coord": 403, "admin": 403},
        json=lambda f: {"room_id": f"!r{f.pid[2:]}:cercle.test"},
    ),
    "circle-list": Case("GET", "/api/v1/patients/{pid}/circle", READ),
    "retention-purge": Case(  # an admin may, but only once the file is closed
        "POST",
        "/api/v1/patients/{pid}/retention/purge",
        {"outsider": 404, "noaccess": 403, "member": 403, "coord": 403, "admin": 409},
    ),
    "circle-add": Case(
        "POST",
        "/api/v1/patients/{pid}/circle",
        MANAGE,
        json=lambda f: {
            "kind": "aidant",
            "display_name": "Paul (fils)",
            "role": "aidant_principal",
        },
    ),
    "circle-update": Case(
        "PATCH",
        "/api/v1/patients/{pid}/circle/{member}",
        MANAGE_UPDATE,
        json=lambda f: {"role": "medecin_traitant"},
    ),
    "circle-end": Case("POST", "/api/v1/patients/{pid}/circle/{member}/end", MANAGE_UPDATE),
    "circle-left": Case(
        "POST",
        "/api/v1/patients/{pid}/circle/left-room",
        MANAGE_UPDATE,
        json=lambda f: {"matrix_user_id": MEMBER},
    ),
    "circle-back": Case(
        "POST",
        "/api/v1/patients/{pid}/circle/back-in-room",
        MANAGE_UPDATE,
        json=lambda f: {"matrix_user_id": MEMBER},
    ),
    "memos": Case("GET", "/api/v1/patients/{pid}/memos", READ),
    "memo-add": Case(
        "POST", "/api/v1/patients/{pid}/memos", WRITE, json=lambda f: {"text": "Digicode 1234"}
    ),
    "memo-update": Case(
        "PATCH", "/api/v1/patients/{pid}/memos/{memo}", UPDATE, json=lambda f: {"archived": True}
    ),
    "stays": Case("GET", "/api/v1/patients/{pid}/hospitalisations", READ),
    "stay-add": Case(
        "POST",
        "/api/v1/patients/{pid}/hospitalisations",
        WRITE,
        json=lambda f: {"structure": "Clinique", "admission_at": "2025-02-01T08:00:00Z"},
    ),
    "stay-update": Case(
        "PATCH",
        "/api/v1/patients/{pid}/hospitalisations/{stay}",
        UPDATE,
        json=lambda f: {"discharge_at": "2025-01-09T12:00:00Z"},
    ),
    "lifeline": Case("GET", "/api/v1/patients/{pid}/lifeline", READ),
    "episode-add": Case(
        "POST",
        "/api/v1/patients/{pid}/lifeline",
        WRITE,
        json=lambda f: {"theme": "Intervention / Réunion", "starts_on": "2025-02-02"},
    ),
    "episode-update": Case(
        "PATCH",
        "/api/v1/patients/{pid}/lifeline/{episode}",
        UPDATE,
        json=lambda f: {"ends_on": "2025-02-10"},
    ),
    "notebook": Case("GET", "/api/v1/patients/{pid}/notebook", READ),
    "notebook-add": Case(
        "POST",
        "/api/v1/patients/{pid}/notebook",
        WRITE,
        json=lambda f: {"kind": "transmission", "text": "RAS ce matin"},
    ),
    "forms": Case("GET", "/api/v1/patients/{pid}/forms", READ),
    "form": Case("GET", "/api/v1/patients/{pid}/forms/medical", READ),
    "form-save": Case(
        "PUT",
        "/api/v1/patients/{pid}/forms/medical",
        UPDATE,
        json=lambda f: {"answers": {"pathologies": "Insuffisance cardiaque"}},
    ),
    "documents": Case("GET", "/api/v1/patients/{pid}/documents", READ),
    "document": Case("GET", "/api/v1/patients/{pid}/documents/{doc}", READ),
    "document-content": Case("GET", "/api/v1/patients/{pid}/documents/{doc}/content", READ),
    "document-add": Case("POST", "/api/v1/patients/{pid}/documents", WRITE, data=upload),
    "tasks-of-patient": Case("GET", "/api/v1/tasks?patient_id={pid}", READ),
    "task": Case("GET", "/api/v1/tasks/{task}", READ),
    "task-add": Case(
        "POST",
        "/api/v1/tasks",
        WRITE,
        json=lambda f: {"patient_id": f.pid, "type": "Coordination", "label": "Appeler la famille"},
    ),
    "task-update": Case(
        "PATCH", "/api/v1/tasks/{task}", UPDATE, json=lambda f: {"state": "en cours"}
    ),
    "agenda-of-patient": Case("GET", "/api/v1/agenda/events?patient_id={pid}", READ),
    "event": Case("GET", "/api/v1/agenda/events/{event}", READ),
    "event-add": Case(
        "POST",
        "/api/v1/agenda/events",
        WRITE,
        json=lambda f: {
            "patient_id": f.pid,
            "type": "RDV",
            "title": "Bilan",
            "starts_at": "2025-04-01T09:00:00+02:00",
            "ends_at": "2025-04-01T09:30:00+02:00",
        },
    ),
    # not patient-scoped: owner only; admins, and nobody else (404)
    "event-update": Case(
        "PATCH",
        "/api/v1/agenda/events/{event}",
        # a patient's event: the file's access first (403 without it), then only its owner
        {"outsider": 404, "noaccess": 403, "member": 404, "coord": 200, "admin": 200},
        json=lambda f: {"title": "Visite (décalée)"},
    ),
    "events-feed": Case(
        "GET",
        "/api/v1/events",
        {"outsider": 403, "noaccess": 403, "member": 403, "coord": 403, "admin": 200},
    ),
    "audit": Case(
        "GET",
        "/api/v1/audit",
        {"outsider": 403, "noaccess": 403, "member": 403, "coord": 403, "admin": 200},
    ),
}


async def _call(api: Api, case: Case, f: File, role: str) -> tuple[int, Any]:
    path = case.path.format(pid=f.pid, **f.ids)
    return await api.call(
        case.method,
        path,
        as_user=USERS[role],
        json=case.json(f) if case.json else None,
        data=case.data() if case.data else None,
    )


@pytest.mark.parametrize("name", sorted(CASES))
async def test_route_against_every_caller(api: Api, name: str) -> None:
    case = CASES[name]
    refusing = [r for r in ROLES if case.expected[r] >= 400]
    f = await setup_file(api)
    if case.prepare:
        await case.prepare(api, f)
    for role in refusing:
        audit_before = await api.count("audit_log", "WHERE outcome = 'refusé'")
        status, body = await _call(api, case, f, role)
        assert status == case.expected[role], (name, role, status, body)
        assert set(body) == {"errcode", "error"}, body  # nothing but the error
        assert f.pid not in str(body) and "Patient test" not in str(body)
        if "{pid}" in case.path or "patient_id" in str(case.json(f) if case.json else ""):
            assert await api.count("audit_log", "WHERE outcome = 'refusé'") == audit_before + 1
    for role in (r for r in ROLES if case.expected[r] < 400):
        f = await setup_file(api)  # each successful caller on a fresh file
        if case.prepare:
            await case.prepare(api, f)
        audit_before = await api.count("audit_log", "WHERE outcome = 'ok'")
        status, body = await _call(api, case, f, role)
        assert status == case.expected[role], (name, role, status, body)
        assert await api.count("audit_log", "WHERE outcome = 'ok'") == audit_before + 1, (
            name,
            role,
        )
        actor_kind = "admin" if role == "admin" else "user"
        assert (
            await api.count(
                "audit_log", f"WHERE actor = '{USERS[role]}' AND actor_kind = '{actor_kind}'"
            )
            >= 1
        )


async def test_every_api_route_is_in_the_matrix_or_listed(api: Api) -> None:
    """A new route must be added to the matrix (or to the short list of global routes)."""
    global_routes = {
        ("GET", "/api/v1/patients"),
        ("POST", "/api/v1/patients"),
        ("GET", "/api/v1/tasks"),
        ("GET", "/api/v1/agenda/events"),
        ("POST", "/api/v1/agenda/feed"),
        ("DELETE", "/api/v1/agenda/events/{event_id}/attendees/me"),
        ("POST", "/api/v1/sessions/revoke"),
        ("POST", "/api/v1/login"),
        ("POST", "/api/v1/logout"),
        ("GET", "/api/v1/me"),
        ("GET", "/api/v1/openapi.json"),
        ("GET", "/api/v1/catalogue"),
        # outside any file: their refusals are in tests/dossier_service/extraction/test_api.py
        ("POST", "/api/v1/extractions"),
        ("GET", "/api/v1/extractions"),
        ("GET", "/api/v1/extractions/{report_id}"),
        ("GET", "/api/v1/extractions/{report_id}/xlsx"),
        ("GET", "/api/v1/extractions/{report_id}/csv"),
        ("POST", "/api/v1/activity"),
        # a structure's members: their own rules, tested in test_structures_circle.py
        ("GET", "/api/v1/structures/{finess}/members"),
        ("POST", "/api/v1/structures/{finess}/members"),
        ("POST", "/api/v1/structures/{finess}/members/{member_id}/end"),
        ("POST", "/api/v1/structures/{finess}/members/rpps"),
    }
    covered = {(c.method, c.path.split("?")[0]) for c in CASES.values()}
    templates = {
        "{pid}": "{patient_id}",
        "{member}": "{member_id}",
        "{memo}": "{memo_id}",
        "{stay}": "{stay_id}",
        "{episode}": "{episode_id}",
        "{doc}": "{document_id}",
        "{task}": "{task_id}",
        "{event}": "{event_id}",
    }
    normalised = set()
    for method, path in covered:
        for short, long in templates.items():
            path = path.replace(short, long)
        normalised.add((method, path.replace("/forms/medical", "/forms/{form_id}")))
    for route in api.app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("formatter") or info.get("path") or ""
        if not path.startswith("/api/v1/") or route.method == "HEAD":
            continue
        assert (route.method, path) in normalised | global_routes, (route.method, path)


async def test_unauthenticated_calls_are_refused(api: Api) -> None:
    pid = await api.new_patient()
    for method, path in (
        ("GET", f"/api/v1/patients/{pid}"),
        ("GET", "/api/v1/tasks"),
        ("GET", "/api/v1/events"),
    ):
        status, body = await api.call(method, path)
        assert status == 401 and body["errcode"] == "M_MISSING_TOKEN"
    status, body = await api.call(
        "GET", f"/api/v1/patients/{pid}", headers={"Authorization": "Bearer forged.token"}
    )
    assert status == 401 and body["errcode"] == "M_UNKNOWN_TOKEN"


async def test_unknown_patient_and_outsider_get_the_same_answer(api: Api) -> None:
    pid = await api.new_patient()
    a = await api.call("GET", f"/api/v1/patients/{pid}", as_user=OUTSIDER)
    b = await api.call("GET", "/api/v1/patients/P-DOESNOTEXIST", as_user=OUTSIDER)
    assert a == b == (404, {"errcode": "M_NOT_FOUND", "error": "Introuvable."})


async def test_ended_membership_loses_access(api: Api) -> None:
    pid = await api.new_patient()
    member = await api.add_member(pid, MEMBER)
    await api.ok("GET", f"/api/v1/patients/{pid}", as_user=MEMBER)
    await api.ok("POST", f"/api/v1/patients/{pid}/circle/{member['id']}/end", as_user=COORD)
    status, _ = await api.call("GET", f"/api/v1/patients/{pid}", as_user=MEMBER)
    assert status == 404


async def test_confidential_document_restricted_to_roles(api: Api) -> None:
    pid = await api.patient_with_circle()
    form = aiohttp.FormData()
    form.add_field("category", "compte rendu")
    form.add_field("restricted_to_roles", "medecin_traitant,coordinateur")
    form.add_field("file", PDF, filename="cr.pdf", content_type="application/pdf")
    doc = await api.ok("POST", f"/api/v1/patients/{pid}/documents", 201, as_user=COORD, data=form)
    listed = await api.ok("GET", f"/api/v1/patients/{pid}/documents", as_user=MEMBER)
    assert listed["items"] == []
    status, _ = await api.call(
        "GET", f"/api/v1/patients/{pid}/documents/{doc['id']}/content", as_user=MEMBER
    )
    assert status == 404
    listed = await api.ok("GET", f"/api/v1/patients/{pid}/documents", as_user=COORD)
    assert [d["id"] for d in listed["items"]] == [doc["id"]]
    file = await api.ok("GET", f"/api/v1/patients/{pid}", as_user=MEMBER)
    assert file["documents"] == []
