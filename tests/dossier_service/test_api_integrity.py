"""A change and its traces commit together or not at all; bad input is a clear 4xx and
writes nothing; cookie sessions need the CSRF token."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest

from dossier_service import auth
from dossier_service.services import journal
from tests.dossier_service.conftest import COORD, MEMBER, SESSION_KEY, Api

PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\n%%EOF\n"
TABLES = (
    "patients",
    "notebook_entries",
    "audit_log",
    "outbox_events",
    "circle_members",
    "documents",
    "tasks",
)


async def counts(api: Api) -> dict[str, int]:
    return {t: await api.count(t) for t in TABLES}


async def test_forced_failure_after_the_change_leaves_nothing(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    pid = await api.patient_with_circle()
    before = await counts(api)
    real_emit = journal.emit

    async def emit_then_fail(session: Any, **kwargs: Any) -> None:
        await real_emit(session, **kwargs)
        await session.flush()  # the change, its notebook entry, audit row and event are written
        raise RuntimeError("panne simulée après l'écriture")

    monkeypatch.setattr(journal, "emit", emit_then_fail)
    status, body = await api.call(
        "POST",
        f"/api/v1/patients/{pid}/circle",
        as_user=COORD,
        json={"kind": "aidant", "display_name": "Paul", "role": "aidant_principal"},
    )
    assert status == 500
    assert body["errcode"] == "M_UNKNOWN" and body["error"].startswith("Erreur interne (réf. ")
    assert "panne" not in body["error"]
    status, _ = await api.call("POST", "/api/v1/patients", as_user=COORD, json={"label": "Y"})
    assert status == 500
    assert await counts(api) == before  # neither the change nor its audit row, entry, event
    monkeypatch.setattr(journal, "emit", real_emit)
    await api.created(
        f"/api/v1/patients/{pid}/circle",
        {"kind": "aidant", "display_name": "Paul", "role": "aidant_principal"},
        as_user=COORD,
    )
    after = await counts(api)
    assert after["circle_members"] == before["circle_members"] + 1
    assert after["audit_log"] == before["audit_log"] + 1
    assert after["notebook_entries"] == before["notebook_entries"] + 1
    assert after["outbox_events"] == before["outbox_events"] + 1


async def test_read_is_audited_in_its_transaction(api: Api) -> None:
    pid = await api.new_patient()
    before = await api.count("audit_log", f"WHERE patient_id = '{pid}' AND action = 'read'")
    await api.ok("GET", f"/api/v1/patients/{pid}/notebook", as_user=COORD)
    rows = await api.count(
        "audit_log",
        f"WHERE patient_id = '{pid}' AND action = 'read' AND resource = 'notebook' "
        f"AND actor = '{COORD}' AND remote <> ''",
    )
    assert rows == before + 1


async def test_audit_cannot_be_deleted_through_the_api(api: Api) -> None:
    from tests.dossier_service.conftest import ADMIN

    await api.new_patient()
    for method in ("DELETE", "PUT", "PATCH", "POST"):
        status, body = await api.call(method, "/api/v1/audit", as_user=ADMIN)
        assert status == 405 and body["errcode"] == "M_METHOD_NOT_ALLOWED"
    log = await api.ok("GET", "/api/v1/audit?limit=5", as_user=ADMIN)
    assert log["items"]


@pytest.mark.parametrize(
    ("raw", "content_type", "status", "errcode"),
    [
        (b'{"label": ', "application/json", 400, "M_NOT_JSON"),
        (b"[1, 2]", "application/json", 400, "M_BAD_JSON"),
        (b'{"label": 12}', "application/json", 400, "M_BAD_JSON"),
        (b'{"label": "x", "admin": true}', "application/json", 400, "M_BAD_JSON"),
        (b'{"birth_date": "2020-13-45"}', "application/json", 400, "M_BAD_JSON"),
        (b'{"birth_first_names": "Jeanne"}', "application/json", 400, "M_BAD_JSON"),
        (b'{"sex": "X"}', "application/json", 400, "M_BAD_JSON"),
        (b'{"room_id": "../../etc"}', "application/json", 400, "M_BAD_JSON"),
        (b'{"label": "x"}', "text/plain", 400, "M_NOT_JSON"),
        (b'{"label": "' + b"x" * 70_000 + b'"}', "application/json", 413, "M_TOO_LARGE"),
    ],
)
async def test_bad_bodies_are_refused_and_write_nothing(
    api: Api, raw: bytes, content_type: str, status: int, errcode: str
) -> None:
    before = await counts(api)
    got, body = await api.call(
        "POST", "/api/v1/patients", as_user=COORD, data=raw, headers={"Content-Type": content_type}
    )
    assert (got, body["errcode"]) == (status, errcode), body
    assert set(body) == {"errcode", "error"}
    assert await counts(api) == before


async def test_bad_values_on_other_resources(api: Api) -> None:
    pid = await api.patient_with_circle()
    before = await counts(api)
    ok_writes = await api.count("audit_log", "WHERE outcome = 'ok' AND action <> 'read'")
    bad: list[tuple[str, str, dict[str, Any]]] = [
        (
            "POST",
            f"/api/v1/patients/{pid}/hospitalisations",
            {"structure": "CHU", "admission_at": "2025-01-02T10:00:00"},
        ),
        (
            "POST",
            f"/api/v1/patients/{pid}/hospitalisations",
            {
                "structure": "CHU",
                "admission_at": "2025-01-02T10:00:00Z",
                "discharge_at": "2025-01-01T10:00:00Z",
            },
        ),
        (
            "POST",
            f"/api/v1/patients/{pid}/lifeline",
            {"theme": "Inconnu", "starts_on": "2025-01-01"},
        ),
        (
            "POST",
            f"/api/v1/patients/{pid}/lifeline",
            {"theme": "Suivi / Réunion", "starts_on": "2025-01-05", "ends_on": "2025-01-01"},
        ),
        ("POST", "/api/v1/tasks", {"patient_id": pid, "type": "Inconnu", "label": "x"}),
        (
            "POST",
            "/api/v1/tasks",
            {"patient_id": pid, "type": "Soins", "subtypes": ["Inconnu"], "label": "x"},
        ),
        (
            "POST",
            "/api/v1/tasks",
            {"patient_id": pid, "type": "Soins", "label": "x", "level": "extrême"},
        ),
        (
            "POST",
            "/api/v1/tasks",
            {"patient_id": pid, "type": "Soins", "label": "x", "document_ids": ["nope"]},
        ),
        (
            "POST",
            "/api/v1/agenda/events",
            {
                "type": "RDV",
                "title": "x",
                "starts_at": "2025-01-01T10:00:00Z",
                "ends_at": "2025-01-01T09:00:00Z",
            },
        ),
        (
            "POST",
            "/api/v1/agenda/events",
            {
                "type": "RDV",
                "title": "x",
                "starts_at": "2025-01-01T10:00:00Z",
                "ends_at": "2025-01-01T11:00:00Z",
                "rrule": "FREQ=SECONDLY",
            },
        ),
        (
            "POST",
            f"/api/v1/patients/{pid}/circle",
            {
                "kind": "professionnel",
                "display_name": "X",
                "role": "intervenant",
                "has_access": True,
            },
        ),
        (
            "POST",
            f"/api/v1/patients/{pid}/circle",
            {"kind": "professionnel", "display_name": "X", "role": "chef"},
        ),
        ("PUT", f"/api/v1/patients/{pid}/forms/medical", {"answers": {"inconnu": "x"}}),
        ("PUT", f"/api/v1/patients/{pid}/forms/medical", {"answers": {}}),  # required field missing
    ]
    for method, path, body in bad:
        status, reply = await api.call(method, path, as_user=COORD, json=body)
        assert 400 <= status < 500, (path, body, status, reply)
        assert set(reply) == {"errcode", "error"}
    status, reply = await api.call("GET", "/api/v1/tasks?limit=abc", as_user=COORD)
    assert status == 400
    status, reply = await api.call("GET", "/api/v1/tasks?due_from=demain", as_user=COORD)
    assert status == 400
    after = await counts(api)
    assert {k: v for k, v in after.items() if k != "audit_log"} == {
        k: v for k, v in before.items() if k != "audit_log"
    }
    # refused writes leave no "ok" audit row either (their transaction rolled back)
    assert await api.count("audit_log", "WHERE outcome = 'ok' AND action <> 'read'") == ok_writes


def _upload(
    content: bytes, filename: str = "x.pdf", category: str = "bilan", ctype: str = "application/pdf"
) -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("category", category)
    form.add_field("file", content, filename=filename, content_type=ctype)
    return form


@pytest.mark.parametrize(
    ("content", "filename", "category", "status"),
    [
        (PDF, "../../etc/passwd", "bilan", 400),
        (PDF, "dossier/ordo.pdf", "bilan", 400),
        (PDF, "..\\..\\win.ini", "bilan", 400),
        (PDF, "ordo\u202efdp.exe", "bilan", 400),  # right-to-left override spoofing
        (PDF, "ordo.pdf", "inconnue", 400),
        (b"<html><script>alert(1)</script></html>", "photo.png", "photo", 415),
        (b"\x7fELF\x02\x01\x01" + b"\x00" * 100, "photo.png", "photo", 415),
        (b"", "vide.pdf", "bilan", 400),
        (PDF + b"0" * (256 * 1024), "gros.pdf", "bilan", 413),
    ],
)
async def test_bad_uploads_write_nothing(
    api: Api, tmp_path: Path, content: bytes, filename: str, category: str, status: int
) -> None:
    pid = await api.new_patient()
    before = await counts(api)
    got, body = await api.call(
        "POST",
        f"/api/v1/patients/{pid}/documents",
        as_user=COORD,
        data=_upload(content, filename, category, "image/png"),
    )
    assert got == status, body
    assert await counts(api) == before
    docs_dir = tmp_path / "documents"
    assert not docs_dir.exists() or not any(p.is_file() for p in docs_dir.rglob("*"))


async def test_client_mime_is_ignored_and_content_addressed(api: Api, tmp_path: Path) -> None:
    pid = await api.new_patient()
    doc = await api.ok(
        "POST",
        f"/api/v1/patients/{pid}/documents",
        201,
        as_user=COORD,
        data=_upload(PDF, "ordonnance.pdf", "ordonnance", "image/png"),
    )
    assert doc["mime_type"] == "application/pdf"
    import hashlib

    sha = hashlib.sha256(PDF).hexdigest()
    assert doc["sha256"] == sha and doc["size"] == len(PDF)
    assert (tmp_path / "documents" / sha[:2] / sha).read_bytes() == PDF
    again = await api.ok(
        "POST",
        f"/api/v1/patients/{pid}/documents",
        201,
        as_user=COORD,
        data=_upload(PDF, "copie.pdf", "courrier"),
    )
    assert again["sha256"] == sha
    assert len(list((tmp_path / "documents").rglob("*"))) == 2  # one folder, one blob
    status, content = await api.call(
        "GET", f"/api/v1/patients/{pid}/documents/{doc['id']}/content", as_user=COORD
    )
    assert status == 200 and content == PDF
    file = await api.ok("GET", f"/api/v1/patients/{pid}", as_user=COORD)
    texts = [e["text"] for e in file["notebook"]]
    assert "Document ajouté dans la catégorie ordonnance" in texts
    assert "Document ajouté dans la catégorie courrier" in texts


async def test_cookie_session_needs_csrf_on_writes(api: Api) -> None:
    token = auth.issue_session(SESSION_KEY, COORD, lifetime=600)
    session = auth.read_session(SESSION_KEY, token)
    assert session is not None
    api.client.session.cookie_jar.update_cookies({auth.SESSION_COOKIE: token})
    status, body = await api.call("GET", "/api/v1/me")
    assert status == 200 and body["user_id"] == COORD and body["csrf_token"]
    status, body = await api.call("POST", "/api/v1/patients", json={"label": "sans csrf"})
    assert status == 403 and body["errcode"] == "M_FORBIDDEN"
    status, body = await api.call(
        "POST", "/api/v1/patients", json={"label": "faux"}, headers={auth.CSRF_HEADER: "x"}
    )
    assert status == 403
    status, body = await api.call(
        "POST",
        "/api/v1/patients",
        json={"label": "avec csrf"},
        headers={auth.CSRF_HEADER: auth.csrf_token(SESSION_KEY, session)},
    )
    assert status == 201
    assert await api.count("patients") == 1


async def test_expired_or_tampered_sessions(api: Api) -> None:
    import time

    expired = auth.issue_session(SESSION_KEY, COORD, lifetime=10, now=time.time() - 3600)
    status, _ = await api.call("GET", "/api/v1/me", headers={"Authorization": f"Bearer {expired}"})
    assert status == 401
    good = auth.issue_session(SESSION_KEY, MEMBER, lifetime=600)
    _body, sig = good.split(".")
    forged = auth.issue_session("another-key", COORD, lifetime=600).split(".")[0] + "." + sig
    status, _ = await api.call("GET", "/api/v1/me", headers={"Authorization": f"Bearer {forged}"})
    assert status == 401


async def test_unknown_route_and_security_headers(api: Api) -> None:
    resp = await api.client.get("/api/v1/nope")
    assert resp.status == 404 and (await resp.json())["errcode"] == "M_UNRECOGNIZED"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
