"""The patient list and file pages through the real app: who sees what, each section's
writes (with CSRF), and the audit rows they leave."""

from __future__ import annotations

import re
import time
from datetime import date
from urllib.parse import parse_qs, urlsplit

from sqlmodel import col, select

from dossier_service.identity import nir_key
from dossier_service.models.audit import AuditEntry
from dossier_service.models.notebook import NotebookEntry
from dossier_service.policy import Principal
from dossier_service.schemas import IdentityUpdate
from dossier_service.services import patients
from dossier_service.web.pages_login import login_token


async def audit_rows(site, patient_id: str | None = None) -> list[AuditEntry]:
    async with site.db.transaction() as session:
        query = select(AuditEntry).order_by(col(AuditEntry.seq))
        if patient_id:
            query = query.where(AuditEntry.patient_id == patient_id)
        return list((await session.exec(query)).all())


async def notebook_texts(site, patient_id: str) -> list[str]:
    async with site.db.transaction() as session:
        rows = await session.exec(
            select(NotebookEntry).where(NotebookEntry.patient_id == patient_id)
        )
        return [r.text for r in rows.all()]


async def qualify(site, patient_id: str) -> str:
    body = "2401131555123"
    ins = f"{body}{nir_key(body):02d}"
    async with site.db.transaction() as session:
        patient = await patients.get_patient(session, patient_id=patient_id)
        assert patient is not None
        for change in (
            {
                "identity_status": "VALI",
                "identity_document_type": "passeport",
                "identity_document_date": date(2026, 1, 5),
            },
            {"identity_status": "QUAL", "ins_number": ins},
        ):
            await patients.update_identity(
                session,
                principal=Principal(site.COORD),
                patient=patient,
                data=IdentityUpdate.model_validate(change, strict=False),
                today=date(2026, 11, 25),
            )
    return ins


IDENTITY = {
    "birth_name": "DURAND",
    "birth_first_names": ["Marie", "Louise"],
    "sex": "F",
    "birth_date": "1940-11-20",
    "birth_insee_code": "31555",
    "birth_commune": "Toulouse",
}


async def test_anonymous_people_are_sent_to_the_login_page(site) -> None:
    status, _, resp = await site.get(None, "/patients?q=x")
    assert status == 303
    target = urlsplit(site.location(resp))
    assert (target.path, parse_qs(target.query)) == ("/connexion", {"suite": ["/patients?q=x"]})
    status, body, resp = await site.get(None, "/connexion?suite=/patients")
    assert status == 200
    assert "Se connecter avec votre compte Matrix" in body
    assert 'data-homeserver="http://127.0.0.1:9"' in body
    csp = resp.headers["Content-Security-Policy"]
    assert f"frame-ancestors {site.ELEMENT_ORIGIN}" in csp
    assert "script-src 'self'" in csp and "connect-src 'self' http://127.0.0.1:9" in csp
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Referrer-Policy"] == "no-referrer"
    status, body, resp = await site.get(None, "/connexion?suite=//evil.example/x")
    assert 'data-suite="/patients"' in body
    script = re.search(r'src="(/static/connexion.js\?v=[0-9a-f]+)"', body).group(1)  # type: ignore[union-attr]
    status, js, resp = await site.get(None, script)
    assert status == 200 and "get_openid" in js and "openid/request_token" in js
    assert resp.headers["Cache-Control"] == "public, max-age=604800"


async def test_login_exchange_refuses_without_its_csrf_and_with_a_bad_token(site) -> None:
    resp = await site.client.post("/connexion/openid", json={"access_token": "abc"})
    assert resp.status == 403
    assert (await resp.json())["errcode"] == "M_FORBIDDEN"
    page = await (await site.client.get("/connexion")).text()
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    forged = token[:-1] + ("0" if token[-1] != "0" else "1")
    for headers in (
        {"X-CSRF-Token": forged},
        {"X-CSRF-Token": token, "Origin": "https://evil.example"},
    ):
        resp = await site.client.post(
            "/connexion/openid", json={"access_token": "abc"}, headers=headers
        )
        assert resp.status == 403
    old = login_token(site.config.session_key, now=time.time() - 3600)
    resp = await site.client.post(
        "/connexion/openid", json={"access_token": "abc"}, headers={"X-CSRF-Token": old}
    )
    assert resp.status == 403
    resp = await site.client.post(
        "/connexion/openid",
        json={"access_token": "abc", "matrix_server_name": "ailleurs.example"},
        headers={"X-CSRF-Token": token},
    )
    assert resp.status == 403
    resp = await site.client.post(
        "/connexion/openid", json={"access_token": "abc"}, headers={"X-CSRF-Token": token}
    )
    assert resp.status == 503  # the homeserver of this test is unreachable: no session
    assert "cercle_dossier_session" not in resp.cookies


async def test_list_shows_only_the_files_of_ones_circles_with_search(site) -> None:
    mine = await site.seed_patient("Dossier Durand", **IDENTITY)
    await site.seed_patient("Dossier Martin")
    nurse = site.person(site.NURSE)
    status, body, _ = await site.get(nurse, "/patients")
    assert status == 200
    assert "DURAND Marie" in body and "Dossier Martin" in body  # NURSE is in both circles
    status, body, _ = await site.get(nurse, "/patients?q=marti")
    assert "Dossier Martin" in body and "DURAND" not in body
    for who in (site.OUTSIDER, site.NO_ACCESS):
        status, body, _ = await site.get(site.person(who), "/patients")
        assert status == 200 and "DURAND" not in body and "Martin" not in body
    status, body, _ = await site.get(site.person(site.ADMIN), "/patients")
    assert "DURAND Marie" in body and "(admin)" in body
    assert mine.id in body


async def test_the_file_shows_every_section_and_the_ins_only_when_qualified(site) -> None:
    patient = await site.seed_patient(**IDENTITY)
    coord = site.person(site.COORD)
    status, body, resp = await site.get(coord, f"/patients/{patient.id}")
    assert status == 200
    for title in (
        "Identité",
        "Statut du dossier",
        "Mémos",
        "Hospitalisations",
        "Tâches",
        "Cercle de soins",
        "Ligne de vie",
        "Cahier de liaison",
        "Documents",
        "Formulaires",
    ):
        assert f">{title}" in body, title
    assert "Identité provisoire" in body
    assert "affiché seulement pour une identité qualifiée" in body
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="ligne-de-vie"' in body
    assert "Inès Dupont" in body and "sans accès au dossier" in body
    assert "PPCS — Plan personnalisé de coordination en santé" in body
    assert resp.headers["Cache-Control"] == "no-store"
    ins = await qualify(site, patient.id)
    status, body, _ = await site.get(coord, f"/patients/{patient.id}")
    assert "Identité qualifiée" in body and ins in body
    rows = await audit_rows(site, patient.id)
    assert [(r.actor, r.action, r.resource, r.outcome) for r in rows[-2:]] == [
        (site.COORD, "read", "page:patient", "ok"),
        (site.COORD, "read", "page:patient", "ok"),
    ]


async def test_outsiders_get_a_404_without_data_and_the_refusal_is_audited(site) -> None:
    patient = await site.seed_patient(**IDENTITY)
    for who, expected in ((site.OUTSIDER, 404), (site.NO_ACCESS, 403)):
        for path in (
            f"/patients/{patient.id}",
            f"/patients/{patient.id}/formulaires/medical",
            f"/patients/{patient.id}/documents/00000000-0000-0000-0000-000000000000",
        ):
            status, body, _ = await site.get(site.person(who), path)
            assert status == expected, (who, path)
            assert "DURAND" not in body and "Marie" not in body and patient.id not in body
    status, body, _ = await site.get(site.person(site.OUTSIDER), "/patients/P-INEXISTANT")
    assert status == 404 and "Page introuvable" in body
    refusals = [r for r in await audit_rows(site, patient.id) if r.outcome == "refusé"]
    assert {(r.actor, r.resource) for r in refusals} >= {
        (site.OUTSIDER, "page:patient"),
        (site.NO_ACCESS, "page:patient"),
    }
    status, body, _ = await site.get(site.person(site.ADMIN), f"/patients/{patient.id}")
    assert status == 200 and "DURAND Marie" in body
    admin_reads = [r for r in await audit_rows(site, patient.id) if r.actor_kind == "admin"]
    assert admin_reads and admin_reads[-1].resource == "page:patient"


async def test_coordinator_adds_and_ends_a_circle_member_with_csrf(site) -> None:
    patient = await site.seed_patient()
    coord = site.person(site.COORD)
    form = {
        "display_name": "Dr Kinési Thérapeute",
        "kind": "professionnel",
        "role": "intervenant",
        "matrix_user_id": "@kine:cercle.test",
        "profession": "Masseur-kinésithérapeute",
        "has_access": "oui",
    }
    status, _, _ = await site.post(coord, f"/patients/{patient.id}/cercle", form, csrf=False)
    assert status == 403
    status, _, _ = await site.post(
        coord, f"/patients/{patient.id}/cercle", {**form, "csrf_token": "faux"}, csrf=False
    )
    assert status == 403
    assert len(await site.members(patient.id)) == 3  # nothing written
    status, _, resp = await site.post(coord, f"/patients/{patient.id}/cercle", form)
    assert status == 303 and site.location(resp) == f"/patients/{patient.id}?ok=cercle#cercle"
    status, body, _ = await site.get(coord, site.location(resp))
    assert "Cercle de soins mis à jour." in body and "Dr Kinési Thérapeute" in body
    assert "Ajout de Dr Kinési Thérapeute sur le cercle de soins (intervenant)" in body
    kine = next(
        m for m in await site.members(patient.id) if m.matrix_user_id == "@kine:cercle.test"
    )
    assert kine.has_access and kine.added_by == site.COORD
    # the new member can now open the file
    assert (await site.get(site.person("@kine:cercle.test"), f"/patients/{patient.id}"))[0] == 200
    # a duplicate is refused with its message, nothing written
    status, body, _ = await site.post(coord, f"/patients/{patient.id}/cercle", form)
    assert status == 409 and "fait déjà partie du cercle de soins" in body
    # access withdrawn then given back: the member loses and regains the file
    status, _, _ = await site.post(
        coord, f"/patients/{patient.id}/cercle/{kine.id}/acces", {"has_access": "non"}
    )
    assert status == 303
    assert (await site.get(site.person("@kine:cercle.test"), f"/patients/{patient.id}"))[0] == 403
    status, _, _ = await site.post(
        coord, f"/patients/{patient.id}/cercle/{kine.id}/acces", {"has_access": "oui"}
    )
    assert (await site.get(site.person("@kine:cercle.test"), f"/patients/{patient.id}"))[0] == 200
    me = next(m for m in await site.members(patient.id) if m.matrix_user_id == site.COORD)
    status, body, _ = await site.post(
        coord, f"/patients/{patient.id}/cercle/{me.id}/acces", {"has_access": "non"}
    )
    assert status == 400 and "propre habilitation" in body
    status, _, _ = await site.post(
        coord, f"/patients/{patient.id}/cercle/{kine.id}/role", {"role": "medecin_traitant"}
    )
    assert status == 303
    assert (
        "Modification de Dr Kinési Thérapeute sur le cercle de soins (rôle médecin traitant)"
        in (await notebook_texts(site, patient.id))
    )
    # an intervenant may not manage the circle
    nurse = site.person(site.NURSE)
    status, body, _ = await site.post(nurse, f"/patients/{patient.id}/cercle/{kine.id}/fin", {})
    assert status == 403
    status, _, _ = await site.post(coord, f"/patients/{patient.id}/cercle/{kine.id}/fin", {})
    assert status == 303
    assert (await site.get(site.person("@kine:cercle.test"), f"/patients/{patient.id}"))[0] == 404
    texts = await notebook_texts(site, patient.id)
    assert "Retrait de Dr Kinési Thérapeute du cercle de soins" in texts
    writes = [r for r in await audit_rows(site, patient.id) if r.resource == "page:cercle"]
    assert [(r.action, r.outcome) for r in writes] == [
        ("create", "ok"),
        ("update", "ok"),
        ("update", "ok"),
        ("update", "ok"),
        ("manage_circle", "refusé"),
        ("update", "ok"),
    ]


async def test_bad_input_is_shown_and_nothing_is_written(site) -> None:
    patient = await site.seed_patient()
    coord = site.person(site.COORD)
    before = len(await notebook_texts(site, patient.id))
    member = {
        "display_name": "X",
        "kind": "professionnel",
        "role": "chef",
        "matrix_user_id": "pas-un-id",
    }
    stay = {
        "structure": "CHU",
        "admission_at": "2026-11-20T10:00",
        "discharge_at": "2026-11-01T10:00",
    }
    episode = {"theme": "Suivi / Réunion", "starts_on": "31/12/2026"}
    for page, form, error in (
        ("cercle", member, "Champ « identifiant Matrix » : format invalide."),
        ("hospitalisations", stay, "La sortie précède l&#39;admission."),
        ("parcours", episode, "Date invalide"),
    ):
        status, body, _ = await site.post(coord, f"/patients/{patient.id}/{page}", form)
        assert status == 400 and error in body, page
    assert len(await notebook_texts(site, patient.id)) == before


async def test_sections_writes_land_in_the_file(site) -> None:
    patient = await site.seed_patient()
    coord = site.person(site.COORD)
    pid = patient.id
    steps = [
        ("statut", {"status": "en veille", "comment": "Séjour chez sa fille"}),
        ("memos", {"text": "Clé chez la voisine du 2e"}),
        ("hospitalisations", {"structure": "CHU Purpan", "service": "Gériatrie",
                              "admission_at": "2026-11-02T09:30", "discharge_at": "2026-11-10T14:00"}),
        ("parcours", {"theme": "Sortie d'hospitalisation", "title": "Retour à domicile",
                      "starts_on": "2026-11-10", "ends_on": "2026-11-24", "form_id": "ppcs"}),
        ("liaison", {"kind": "transmission", "text": "Pansement refait, plaie propre."}),
    ]  # fmt: skip
    for path, form in steps:
        status, body, _ = await site.post(coord, f"/patients/{pid}/{path}", form)
        assert status == 303, (path, body[-500:])
    status, body, _ = await site.get(coord, f"/patients/{pid}")
    assert "Dossier en veille" in body and "Séjour chez sa fille" in body
    assert "Clé chez la voisine du 2e" in body
    memo_id = re.search(rf"/patients/{pid}/memos/([0-9a-f-]+)/archiver", body).group(1)  # type: ignore[union-attr]
    status, _, _ = await site.post(
        coord, f"/patients/{pid}/memos/{memo_id}", {"text": "Clé chez la gardienne"}
    )
    assert status == 303
    body = (await site.get(coord, f"/patients/{pid}"))[1]
    assert "Clé chez la gardienne" in body and "Clé chez la voisine" not in body
    assert "CHU Purpan" in body and "02/11/2026 à 09:30" in body and "passée" in body
    assert 'data-theme="Sortie d\'hospitalisation"' in body and "Retour à domicile" in body
    assert "Pansement refait, plaie propre." in body and "transmission" in body
    assert "Création du parcours Sortie d&#39;hospitalisation du 10/11/2026" in body
    # the member without access cannot write
    status, _, _ = await site.post(
        site.person(site.NO_ACCESS), f"/patients/{pid}/liaison", {"kind": "note", "text": "x"}
    )
    assert status == 403


async def test_logout_needs_csrf_and_ends_the_session_cookie(site) -> None:
    coord = site.person(site.COORD)
    status, _, _ = await site.post(coord, "/deconnexion", {}, csrf=False)
    assert status == 403
    status, _, resp = await site.post(coord, "/deconnexion", {})
    assert status == 303 and site.location(resp) == "/connexion"
    cookie = resp.cookies["cercle_dossier_session"]
    assert cookie.value == "" and cookie["max-age"] == "0"


async def test_widget_entry_opens_the_file_of_the_room(site) -> None:
    patient = await site.seed_patient(room_id="!salle:cercle.test")
    status, _, resp = await site.get(None, "/widget?roomId=!salle:cercle.test&widgetId=w1")
    assert status == 303 and site.location(resp).startswith("/connexion?")
    assert "widgetId=w1" in site.location(resp)
    status, body, _ = await site.get(None, site.location(resp))
    assert 'data-widget-id="w1"' in body
    status, _, resp = await site.get(
        site.person(site.NURSE), "/widget?roomId=!salle:cercle.test&widgetId=w1"
    )
    assert site.location(resp) == f"/patients/{patient.id}?widget=1"
    status, _, resp = await site.get(
        site.person(site.OUTSIDER), "/widget?roomId=!salle:cercle.test"
    )
    assert status == 404


async def test_identity_is_edited_under_the_ins_rules_and_death_is_traced(site) -> None:
    patient = await site.seed_patient()
    coord = site.person(site.COORD)
    url = f"/patients/{patient.id}"
    traits = {
        "birth_name": "durand",
        "birth_first_names": "Marie Louise",
        "sex": "F",
        "birth_date": "1940-11-20",
        "birth_insee_code": "31555",
        "birth_commune": "Toulouse",
        "postcode": "31200",
        "phones": "05 61 00 00 00",
    }
    status, body, _ = await site.post(
        coord, f"{url}/identite", {**traits, "birth_insee_code": "3155"}
    )
    assert status == 400 and "code INSEE" in body
    status, body, _ = await site.post(
        coord, f"{url}/identite", {**traits, "birth_date": "2099-01-01"}
    )
    assert status == 400 and "ne peut pas être dans le futur" in body
    status, body, _ = await site.post(
        coord, f"{url}/identite", {**traits, "identity_status": "QUAL"}
    )
    assert status == 400 and "non autorisé" in body  # PROV → QUAL is not a transition
    status, _, _ = await site.post(coord, f"{url}/identite", traits)
    assert status == 303
    status, _, _ = await site.post(
        coord,
        f"{url}/identite",
        {
            **traits,
            "identity_status": "VALI",
            "identity_document_type": "passeport",
            "identity_document_date": "2026-01-05",
        },
    )
    assert status == 303
    body_ins = "2401131555123"
    ins = f"{body_ins}{nir_key(body_ins):02d}"
    status, _, _ = await site.post(
        coord,
        f"{url}/identite",
        {
            **traits,
            "identity_status": "QUAL",
            "identity_document_type": "passeport",
            "identity_document_date": "2026-01-05",
            "ins_number": ins,
        },
    )
    assert status == 303
    status, body, _ = await site.get(coord, url)
    assert "DURAND Marie" in body and "Identité qualifiée" in body and ins in body
    assert "Statut de l&#39;identité : Identité validée → Identité qualifiée" in body
    # verified traits are frozen unless the status changes
    status, body, _ = await site.post(
        coord,
        f"{url}/identite",
        {
            **traits,
            "birth_name": "MARTIN",
            "identity_status": "QUAL",
            "identity_document_type": "passeport",
            "identity_document_date": "2026-01-05",
        },
    )
    assert status == 400 and "ne peuvent être modifiés" in body
    # death declared then cancelled, both traced
    status, _, _ = await site.post(coord, f"{url}/deces", {"death_date": "2026-11-20"})
    assert status == 303
    assert "Décès déclaré le 20/11/2026" in (await site.get(coord, url))[1]
    status, body, _ = await site.post(coord, f"{url}/deces", {"death_date": "2026-11-21"})
    assert status == 409
    status, _, _ = await site.post(
        coord, f"{url}/deces/annulation", {"reason": "Erreur de dossier"}
    )
    assert status == 303
    texts = await notebook_texts(site, patient.id)
    assert "Déclaration du décès du patient (le 20/11/2026)" in texts
    assert "Annulation de la déclaration du décès du patient" in texts
    status, body, _ = await site.get(coord, url)
    assert "Décès déclaré" not in body


async def test_a_professional_opens_a_new_file_and_becomes_its_coordinator(site) -> None:
    someone = site.person("@nouvelle:cercle.test")
    status, body, _ = await site.post(someone, "/patients", {"label": ""})
    assert status == 400 and "Indiquez au moins un libellé ou un nom de naissance." in body
    status, _, resp = await site.post(
        someone,
        "/patients",
        {
            "label": "M. B. — Rangueil",
            "birth_name": "Bernard",
            "birth_first_names": "Jean Paul",
            "sex": "M",
            "birth_date": "1938-02-03",
        },
    )
    assert status == 303
    status, body, _ = await site.get(someone, site.location(resp))
    assert "Dossier créé : vous en êtes coordinateur·rice." in body
    assert "BERNARD Jean" in body and "coordinateur / gestionnaire de cas" in body
    assert "Ajouter au cercle de soins" in body  # coordinators manage the circle


async def test_discharge_episode_end_and_task_links(site) -> None:
    patient = await site.seed_patient()
    coord = site.person(site.COORD)
    pid = patient.id
    await site.post(
        coord,
        f"/patients/{pid}/hospitalisations",
        {"structure": "CHU Rangueil", "admission_at": "2026-11-20T08:00"},
    )
    await site.post(
        coord,
        f"/patients/{pid}/parcours",
        {"theme": "Suivi / Réunion", "title": "Suivi IDE", "starts_on": "2026-10-01"},
    )
    body = (await site.get(coord, f"/patients/{pid}"))[1]
    stay = re.search(rf"/patients/{pid}/hospitalisations/([0-9a-f-]+)/sortie", body).group(1)  # type: ignore[union-attr]
    episode = re.search(rf"/patients/{pid}/parcours/([0-9a-f-]+)/fin", body).group(1)  # type: ignore[union-attr]
    assert "en cours" in body
    status, body, _ = await site.post(
        coord,
        f"/patients/{pid}/hospitalisations/{stay}/sortie",
        {"discharge_at": "2026-11-19T08:00"},
    )
    assert status == 400 and "La sortie précède l&#39;admission." in body
    status, _, _ = await site.post(
        coord,
        f"/patients/{pid}/hospitalisations/{stay}/sortie",
        {"discharge_at": "2026-11-24T15:00"},
    )
    assert status == 303
    status, _, _ = await site.post(
        coord, f"/patients/{pid}/parcours/{episode}/fin", {"ends_on": "2026-11-01"}
    )
    assert status == 303
    texts = await notebook_texts(site, pid)
    assert "Hospitalisation : sortie le 24/11/2026 de CHU Rangueil" in texts
    assert any(t.startswith("Modification du parcours Suivi / Réunion") for t in texts)
    body = (await site.get(coord, f"/patients/{pid}"))[1]
    assert (
        "/sortie" not in body
        and '/fin"' not in body.split('id="ligne-de-vie"')[1].split("</section>")[0]
    )
    assert "(en cours)" not in body
    # another file's stay cannot be reached through this one
    other = await site.seed_patient("Autre")
    status, _, _ = await site.post(
        coord,
        f"/patients/{other.id}/hospitalisations/{stay}/sortie",
        {"discharge_at": "2026-11-24T15:00"},
    )
    assert status == 404


async def test_admins_read_the_access_log_others_get_404(site) -> None:
    patient = await site.seed_patient(birth_name="DURAND")
    await site.get(site.person(site.NURSE), f"/patients/{patient.id}")
    await site.get(site.person(site.OUTSIDER), f"/patients/{patient.id}")
    for who in (site.COORD, site.NURSE, site.OUTSIDER):
        status, body, _ = await site.get(site.person(who), "/journal")
        assert status == 404 and "Journal" not in body
    admin = site.person(site.ADMIN)
    status, body, _ = await site.get(admin, f"/journal?patient={patient.id}")
    assert status == 200 and "Journal d'accès aux dossiers" in body
    table = body[body.index('id="table-journal"') :]
    assert site.NURSE in table and site.OUTSIDER in table and "refusé" in table
    assert "page:patient" in table
    status, body, _ = await site.get(admin, f"/journal?acteur={site.OUTSIDER}")
    table = body[body.index('id="table-journal"') :]
    assert site.OUTSIDER in table and site.NURSE not in table
    rows = [r for r in await audit_rows(site) if r.resource == "page:audit"]
    assert rows and rows[-1].actor == site.ADMIN and rows[-1].actor_kind == "admin"


async def test_directory_link_only_when_the_directory_is_mounted(
    site, tmp_path, aiohttp_client
) -> None:
    from aiohttp import web

    from dossier_service.app import create_app

    patient = await site.seed_patient()
    coord = site.person(site.COORD)
    body = (await site.get(coord, f"/patients/{patient.id}"))[1]
    assert 'href="/annuaire"' not in body

    async def directory(request: web.Request) -> web.Response:
        return web.Response(text="annuaire")

    app = create_app(site.config, extensions=[lambda a: a.router.add_get("/annuaire", directory)])
    client = await aiohttp_client(app)
    resp = await client.get(f"/patients/{patient.id}", headers=coord.headers)
    body = await resp.text()
    assert resp.status == 200
    assert '<a href="/annuaire">Annuaire</a>' in body and "dans l&#39;<a href" not in body
    assert 'l\'<a href="/annuaire" target="_blank" rel="noopener">annuaire</a>' in body


async def test_a_structure_joins_the_circle_from_the_page_without_then_with_access(site) -> None:
    """Issue 18: "Ajouter une structure" by its FINESS number; sans accès it is only shown;
    "Habiliter" gives its members the file."""
    from dossier_service.models.circle import StructureMember
    from tests.directory_support import structure_row

    patient = await site.seed_patient()
    worker = "@assistante.sociale:cercle.test"
    async with site.db.transaction() as session:
        session.add(
            structure_row(
                "750000001",
                "CCAS DE PARIS",
                city="PARIS",
                category="Centre Communal d'Action Sociale",
            )
        )
        session.add(
            StructureMember(
                finess="750000001",
                matrix_user_id=worker,
                display_name="Mme Sociale",
                added_by=site.ADMIN,
            )
        )
    coord = site.person(site.COORD)
    form = {
        "display_name": "CCAS",
        "kind": "structure",
        "role": "structure",
        "directory_id": "750000001",
    }
    status, _, resp = await site.post(coord, f"/patients/{patient.id}/cercle", form)
    assert status == 303, site.location(resp)
    status, body, _ = await site.get(coord, f"/patients/{patient.id}")
    text = site.text_of(body)
    assert "CCAS DE PARIS" in text and "FINESS 750000001" in text
    assert "sans accès au dossier" in text and "Mme Sociale" not in text
    assert (await site.get(site.person(worker), f"/patients/{patient.id}"))[0] == 404
    row = next(m for m in await site.members(patient.id) if m.kind == "structure")
    status, _, _ = await site.post(
        coord, f"/patients/{patient.id}/cercle/{row.id}/acces", {"has_access": "oui"}
    )
    assert status == 303
    status, body, _ = await site.get(coord, f"/patients/{patient.id}")
    assert "avec accès au dossier (ses membres)" in site.text_of(body)
    assert "Membre de la structure CCAS DE PARIS" in site.text_of(body)
    assert (await site.get(site.person(worker), f"/patients/{patient.id}"))[0] == 200


async def test_every_page_carries_the_pages_security_policy(site) -> None:
    """Every page the dossier serves (not its JSON API nor calendar files) gets the pages'
    policy — framing only by Element, scripts only from ourselves — even the ones added
    later (the Courriers and extraction pages had been left out)."""
    paths = set()
    for resource in site.client.app.router.resources():
        path = resource.canonical
        if (
            "{" in path
            or path.startswith(("/api", "/_", "/health", "/static"))
            or path.endswith(".ics")
        ):
            continue
        if any(route.method == "GET" for route in resource):
            paths.add(path)
    assert {"/extractions", "/patients", "/taches"} <= paths
    for path in sorted(paths):
        _, _, resp = await site.get(None, path)
        csp = resp.headers.get("Content-Security-Policy", "")
        assert "frame-ancestors" in csp and "script-src 'self'" in csp, path
        assert resp.headers.get("X-Content-Type-Options") == "nosniff", path


async def test_the_circle_page_says_who_left_the_conversation_until_they_return(site) -> None:
    """What the bot tells the file (``left-room`` / ``back-in-room``) shows on the page: a
    member habilité who left the conversation keeps her badge, with the date she left."""
    patient = await site.seed_patient()
    coord = site.person(site.COORD)
    service = {"Authorization": f"Bearer {site.config.service_token}"}
    base = f"/api/v1/patients/{patient.id}/circle"
    resp = await site.client.post(
        f"{base}/left-room",
        json={"matrix_user_id": site.NURSE, "removed_by": site.COORD},
        headers=service,
    )
    assert resp.status == 200, await resp.text()
    _, body, _ = await site.get(coord, f"/patients/{patient.id}")
    row = site.text_of(body.split('id="table-cercle"')[1].split("</table>")[0])
    assert "Inès Dupont" in row and "habilité" in row and "hors de la conversation depuis le" in row
    resp = await site.client.post(
        f"{base}/back-in-room", json={"matrix_user_id": site.NURSE}, headers=service
    )
    assert resp.status == 200, await resp.text()
    _, body, _ = await site.get(coord, f"/patients/{patient.id}")
    assert "hors de la conversation" not in body
