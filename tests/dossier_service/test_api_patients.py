"""Opening a file, the whole file as JSON, identity rules through the API, death
declaration and its cancellation, file status history, room link."""

from __future__ import annotations

from typing import Any

from tests.dossier_service.conftest import COORD, MEMBER, OUTSIDER, Api

QUAL_IDENTITY: dict[str, Any] = {
    "birth_name": "MARTIN",
    "birth_first_names": ["Jeanne", "Marie"],
    "sex": "F",
    "birth_date": "1945-03-12",
    "birth_insee_code": "31555",
    "birth_commune": "Toulouse",
    "ins_number": "2450331555123",
    "identity_document_type": "passeport",
    "identity_document_date": "2024-05-02",
}


def with_key(nir13: str) -> str:
    return f"{nir13}{97 - int(nir13) % 97:02d}"


async def test_create_patient_makes_requester_coordinator(api: Api) -> None:
    body = await api.created("/api/v1/patients", {"label": "Mme M."}, as_user=COORD)
    pid = body["id"]
    assert pid.startswith("P-") and len(pid) > 10
    file = await api.ok("GET", f"/api/v1/patients/{pid}", as_user=COORD)
    assert file["my_role"] == "coordinateur"
    assert [m["matrix_user_id"] for m in file["circle"]] == [COORD]
    assert file["patient"]["identity_status"] == "PROV"
    assert file["notebook"][0]["text"] == "Création du dossier"
    assert file["status_history"][0]["status"] == "actif"


async def test_ins_number_shown_only_when_qualified(api: Api) -> None:
    pid = await api.new_patient()
    ident = {**QUAL_IDENTITY, "ins_number": with_key("2450331555123")}
    body = await api.ok(
        "PATCH",
        f"/api/v1/patients/{pid}/identity",
        as_user=COORD,
        json={**ident, "identity_status": "VALI"},
    )
    assert body["patient"]["identity_status"] == "VALI"
    assert body["patient"]["ins_number"] is None  # stored, not shown
    body = await api.ok(
        "PATCH", f"/api/v1/patients/{pid}/identity", as_user=COORD, json={"identity_status": "QUAL"}
    )
    assert body["patient"]["ins_number"] == ident["ins_number"]
    file = await api.ok("GET", f"/api/v1/patients/{pid}", as_user=COORD)
    assert [h["status"] for h in file["identity_status_history"]] == ["QUAL", "VALI"]
    texts = [e["text"] for e in file["notebook"]]
    assert "Statut de l'identité : Identité validée → Identité qualifiée" in texts


async def test_identity_rules_refused_and_nothing_written(api: Api) -> None:
    pid = await api.new_patient()
    before = await api.count("notebook_entries")
    cases = [
        ({"birth_insee_code": "3155"}, "birth_insee_code"),
        ({"birth_insee_code": "2C001"}, "birth_insee_code"),
        ({"birth_date": "2150-01-01"}, "birth_date"),
        ({"identity_document_date": "2150-01-01"}, "identity_document_date"),
        ({"ins_number": "2450331555123" + "00"}, "ins_number"),  # wrong key
        ({"identity_status": "QUAL"}, "identity_status"),  # PROV -> QUAL not allowed
        ({**QUAL_IDENTITY, "ins_number": None, "identity_status": "RECUP"}, "ins_number"),
        ({"birth_name": "X", "identity_status": "VALI"}, "identity_status"),  # traits missing
    ]
    for patch, _field in cases:
        status, body = await api.call(
            "PATCH", f"/api/v1/patients/{pid}/identity", as_user=COORD, json=patch
        )
        assert status == 400, (patch, body)
        assert body["errcode"] == "M_INVALID_PARAM"
        assert "MARTIN" not in body["error"]
    assert await api.count("notebook_entries") == before
    file = await api.ok("GET", f"/api/v1/patients/{pid}", as_user=COORD)
    assert file["patient"]["birth_name"] == ""


async def test_corsican_insee_and_nir_key(api: Api) -> None:
    pid = await api.new_patient()
    nir = "16205" + "2A" + "004123"  # Corsica: 2A counts as 19 in the key
    key = 97 - int("16205" + "19" + "004123") % 97
    body = await api.ok(
        "PATCH",
        f"/api/v1/patients/{pid}/identity",
        as_user=COORD,
        json={
            "birth_name": "COLONNA",
            "birth_first_names": ["Pierre"],
            "sex": "M",
            "birth_date": "1962-05-01",
            "birth_insee_code": "2A004",
            "ins_number": f"{nir}{key:02d}",
            "identity_status": "RECUP",
        },
    )
    assert body["patient"]["identity_status"] == "RECUP"


async def test_qualified_traits_frozen_unless_status_changes(api: Api) -> None:
    pid = await api.new_patient()
    ident = {**QUAL_IDENTITY, "ins_number": with_key("2450331555123")}
    await api.ok(
        "PATCH",
        f"/api/v1/patients/{pid}/identity",
        as_user=COORD,
        json={**ident, "identity_status": "VALI"},
    )
    status, body = await api.call(
        "PATCH", f"/api/v1/patients/{pid}/identity", as_user=COORD, json={"birth_name": "DURAND"}
    )
    assert status == 400 and body["errcode"] == "M_INVALID_PARAM"
    # going back to provisional is allowed, and then the trait may change
    await api.ok(
        "PATCH",
        f"/api/v1/patients/{pid}/identity",
        as_user=COORD,
        json={"birth_name": "DURAND", "identity_status": "PROV"},
    )
    # non-identity fields stay editable
    await api.ok(
        "PATCH", f"/api/v1/patients/{pid}/identity", as_user=COORD, json={"postcode": "31000"}
    )


async def test_death_declared_then_cancelled_both_traced(api: Api) -> None:
    pid = await api.new_patient(birth_date="1940-01-01")
    await api.created(f"/api/v1/patients/{pid}/death", {"death_date": "2025-02-03"}, as_user=COORD)
    status, _ = await api.call(
        "POST", f"/api/v1/patients/{pid}/death", as_user=COORD, json={"death_date": "2025-02-03"}
    )
    assert status == 409
    status, _ = await api.call(
        "POST", f"/api/v1/patients/{pid}/death/cancel", as_user=COORD, json={"reason": ""}
    )
    assert status == 400
    await api.ok(
        "POST",
        f"/api/v1/patients/{pid}/death/cancel",
        as_user=COORD,
        json={"reason": "Erreur de dossier"},
    )
    file = await api.ok("GET", f"/api/v1/patients/{pid}", as_user=COORD)
    assert file["patient"]["death_date"] is None and file["death"] is None
    texts = [e["text"] for e in file["notebook"]]
    assert "Annulation de la déclaration du décès du patient" in texts
    assert "Déclaration du décès du patient (le 03/02/2025)" in texts
    assert await api.count("death_declarations", "WHERE cancelled_at IS NOT NULL") == 1
    events = await api.ok("GET", "/api/v1/events?after=0", service=True)
    types = [e["type"] for e in events["events"] if e["patient_id"] == pid]
    assert types[-2:] == ["death.declared", "death.cancelled"]


async def test_death_date_rules(api: Api) -> None:
    pid = await api.new_patient(birth_date="1940-01-01")
    for bad in ("2999-01-01", "1939-12-31"):
        status, body = await api.call(
            "POST", f"/api/v1/patients/{pid}/death", as_user=COORD, json={"death_date": bad}
        )
        assert status == 400, body
    assert await api.count("death_declarations") == 0


async def test_file_status_history(api: Api) -> None:
    pid = await api.new_patient()
    await api.created(f"/api/v1/patients/{pid}/status", {"status": "en veille"}, as_user=COORD)
    status, _ = await api.call(
        "POST", f"/api/v1/patients/{pid}/status", as_user=COORD, json={"status": "perdu"}
    )
    assert status == 400
    file = await api.ok("GET", f"/api/v1/patients/{pid}", as_user=COORD)
    assert [h["status"] for h in file["status_history"]] == ["en veille", "actif"]
    assert file["patient"]["file_status"] == "en veille"


async def test_list_shows_only_my_files_and_searches(api: Api) -> None:
    mine = await api.new_patient(label="Madame Lopez")
    await api.new_patient(coordinator=OUTSIDER, label="Monsieur Autre")
    await api.add_member(mine, MEMBER)
    body = await api.ok("GET", "/api/v1/patients?q=lopez", as_user=MEMBER)
    assert [p["id"] for p in body["items"]] == [mine]
    body = await api.ok("GET", "/api/v1/patients", as_user=MEMBER)
    assert body["total"] == 1
    assert "ins_number" not in body["items"][0]
    body = await api.ok("GET", "/api/v1/patients?limit=1", service=True)
    assert body["total"] == 2 and len(body["items"]) == 1 and body["next"] == 1


async def test_bot_creates_patient_for_a_coordinator_and_links_room(api: Api) -> None:
    body = await api.created(
        "/api/v1/patients",
        {"label": "Nouveau", "coordinator": COORD, "room_id": "!abc:cercle.test"},
        service=True,
        headers={"Idempotency-Key": "create-1"},
    )
    again = await api.created(
        "/api/v1/patients",
        {"label": "Nouveau", "coordinator": COORD, "room_id": "!abc:cercle.test"},
        service=True,
        headers={"Idempotency-Key": "create-1"},
    )
    assert again["id"] == body["id"]
    assert await api.count("patients") == 1
    found = await api.ok("GET", "/api/v1/patients?room_id=!abc:cercle.test", service=True)
    assert [p["id"] for p in found["items"]] == [body["id"]]
    pid2 = await api.new_patient()
    status, err = await api.call(
        "PUT", f"/api/v1/patients/{pid2}/room", service=True, json={"room_id": "!abc:cercle.test"}
    )
    assert status == 409 and err["errcode"] == "CERCLE_CONFLICT"
    await api.ok(
        "PUT", f"/api/v1/patients/{pid2}/room", service=True, json={"room_id": "!other:cercle.test"}
    )
    # a user cannot name someone else coordinator
    status, _ = await api.call(
        "POST", "/api/v1/patients", as_user=MEMBER, json={"coordinator": COORD}
    )
    assert status == 403


async def test_same_idempotency_key_other_request_conflicts(api: Api) -> None:
    await api.created(
        "/api/v1/patients", {"label": "A"}, service=True, headers={"Idempotency-Key": "k"}
    )
    status, body = await api.call(
        "POST",
        "/api/v1/patients",
        service=True,
        json={"label": "B"},
        headers={"Idempotency-Key": "k"},
    )
    assert status == 409 and body["errcode"] == "CERCLE_CONFLICT"


async def test_file_may_open_with_a_qualified_identity(api: Api) -> None:
    ident = {**QUAL_IDENTITY, "ins_number": with_key("2450331555123"), "identity_status": "QUAL"}
    body = await api.created("/api/v1/patients", ident, as_user=COORD)
    assert body["patient"]["identity_status"] == "QUAL"
    assert body["patient"]["ins_number"] == ident["ins_number"]
    status, err = await api.call(
        "POST", "/api/v1/patients", as_user=COORD, json={**ident, "ins_number": None}
    )
    assert status == 400 and err["errcode"] == "M_INVALID_PARAM"
    assert await api.count("patients") == 1


async def test_bot_opens_a_file_under_the_rooms_pseudonymous_id(api: Api) -> None:
    body = await api.created(
        "/api/v1/patients",
        {"id": "P-ABCDEFGH23", "coordinator": COORD, "room_id": "!room:cercle.test"},
        service=True,
    )
    assert body["id"] == "P-ABCDEFGH23"
    status, err = await api.call(
        "POST", "/api/v1/patients", service=True, json={"id": "P-ABCDEFGH23"}
    )
    assert status == 409 and err["errcode"] == "CERCLE_CONFLICT"
    status, _ = await api.call(
        "POST", "/api/v1/patients", as_user=COORD, json={"id": "P-ZZZZZZZZ23"}
    )
    assert status == 403
    status, _ = await api.call("POST", "/api/v1/patients", service=True, json={"id": "../etc"})
    assert status == 400
    assert await api.count("patients") == 1
