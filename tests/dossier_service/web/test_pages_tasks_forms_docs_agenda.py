"""Task dashboard, thematic forms, documents and agenda pages through the real app."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

import icalendar
from aiohttp import FormData

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def upload(site, who, fields: dict, content: bytes, filename: str) -> FormData:
    data = FormData()
    data.add_field("csrf_token", who.csrf)
    for key, value in fields.items():
        for v in value if isinstance(value, list) else [value]:
            data.add_field(key, v)
    data.add_field("file", content, filename=filename, content_type="application/pdf")
    return data


async def post_upload(site, who, url: str, fields: dict, content: bytes, filename: str) -> Any:
    """The page's upload form (CSRF included) posted by ``who``: the response, unfollowed."""
    data = upload(site, who, fields, content, filename)
    return await site.client.post(url, data=data, headers=who.headers, allow_redirects=False)


async def test_tasks_from_the_file_to_the_dashboard_with_filters_and_alerts(site) -> None:
    patient = await site.seed_patient(
        "Dossier Durand", birth_name="DURAND", birth_first_names=["Marie"]
    )
    coord = site.person(site.COORD)
    yesterday = (date.today() - timedelta(days=1)).isoformat()
    later = (date.today() + timedelta(days=10)).isoformat()
    for label, level, due, ttype, sub in (
        ("Renouveler l'ordonnance", "haute", yesterday, "Soins", "Traitement"),
        ("Dossier APA à compléter", "normale", later, "Social", "Dossier APA"),
    ):
        status, body, _ = await site.post(
            coord,
            f"/patients/{patient.id}/taches",
            {
                "label": label,
                "type": ttype,
                "subtypes": sub,
                "level": level,
                "due_date": due,
                "assignees": f"personne:{site.NURSE}",
                "comment": "à voir",
            },
        )
        assert status == 303, body[-400:]
    status, body, _ = await site.get(coord, f"/patients/{patient.id}")
    assert "1 tâche(s) en retard" in body and "Renouveler l&#39;ordonnance" in body
    nurse = site.person(site.NURSE)
    status, body, _ = await site.get(nurse, "/taches")
    assert status == 200
    assert "⚠ 1 tâche(s) en retard" in body
    table = body[body.index("<table") :]
    assert table.index("Renouveler") < table.index("Dossier APA à compléter")  # by due date
    assert "DURAND Marie" in body and site.NURSE in body
    for query, present, absent in (
        ("niveau=haute", "Renouveler", "Dossier APA à compléter"),
        ("type=Social", "Dossier APA à compléter", "Renouveler"),
        ("sous_type=Traitement", "Renouveler", "Dossier APA à compléter"),
        ("retard=1", "Renouveler", "Dossier APA à compléter"),
        (f"du={later}&au={later}", "Dossier APA à compléter", "Renouveler"),
        (f"membre={site.COORD}", None, "Renouveler"),
        ("miennes=1", "Renouveler", None),
        (f"cercle={site.NO_ACCESS}", "Renouveler", None),  # NO_ACCESS is in this file's circle
        ("cercle=@personne:cercle.test", None, "Renouveler"),
        (f"patient={patient.id}", "Dossier APA à compléter", None),
    ):
        status, body, _ = await site.get(nurse, f"/taches?{query}")
        assert status == 200
        table = body[body.index("<table") :]
        if present:
            assert present in table, query
        if absent:
            assert absent not in table, query
    # close a task from the dashboard: it leaves the open list
    task_id = re.search(r'action="/taches/([0-9a-f-]+)/etat"', body).group(1)  # type: ignore[union-attr]
    status, _, resp = await site.post(
        nurse, f"/taches/{task_id}/etat", {"state": "fait", "retour": "/taches"}
    )
    assert status == 303 and site.location(resp) == "/taches"
    status, body, _ = await site.get(nurse, "/taches?etat=fait")
    assert "fait" in body
    # outsiders see nothing and cannot touch the task
    status, body, _ = await site.get(site.person(site.OUTSIDER), "/taches?etat=")
    assert "Renouveler" not in body and "Dossier APA à compléter" not in body
    status, _, _ = await site.post(
        site.person(site.OUTSIDER), f"/taches/{task_id}/etat", {"state": "à faire"}
    )
    assert status == 404


async def test_forms_render_from_yaml_validate_per_field_and_keep_versions(site) -> None:
    patient = await site.seed_patient()
    coord = site.person(site.COORD)
    url = f"/patients/{patient.id}/formulaires/cadre_de_vie"
    status, body, _ = await site.get(coord, url)
    assert status == 200
    assert 'name="type_logement"' in body and 'type="checkbox" name="risques" value="chute"' in body
    assert "Ne pas noter de code d&#39;accès en clair" in body
    assert "Pas encore de version enregistrée." in body
    status, body, _ = await site.post(coord, url, {"etage": "trois", "_version": "0"})
    assert status == 400
    assert '<span class="erreur-champ" id="err-type_logement">champ obligatoire</span>' in body
    assert '<span class="erreur-champ" id="err-etage">nombre attendu</span>' in body
    status, _, _ = await site.post(
        coord,
        url,
        {"type_logement": "appartement", "etage": "3", "ascenseur": "non", "_version": "0"},
    )
    assert status == 303
    status, _, _ = await site.post(
        coord,
        url,
        {"type_logement": "appartement", "etage": "4", "ascenseur": "oui", "_version": "1"},
    )
    status, body, _ = await site.get(coord, url)
    assert "Version 2" in body and 'Étage : <span class="discret">3</span> → 4' in body
    assert 'Ascenseur : <span class="discret">Non</span> → Oui' in body
    # a save based on an old version is refused (someone changed it meanwhile)
    status, body, _ = await site.post(coord, url, {"type_logement": "maison", "_version": "1"})
    assert status == 409 and "modifié entre-temps" in body
    status, body, _ = await site.get(coord, f"/patients/{patient.id}")
    assert "Modification du formulaire Cadre de vie initié le" in body
    status, _, _ = await site.get(site.person(site.OUTSIDER), url)
    assert status == 404
    status, _, _ = await site.post(site.person(site.OUTSIDER), url, {"etage": "x"})
    assert status == 404
    assert (await site.get(coord, f"/patients/{patient.id}/formulaires/inconnu"))[0] == 404


async def test_documents_upload_sniffed_and_download_audited(site) -> None:
    patient = await site.seed_patient()
    coord = site.person(site.COORD)
    url = f"/patients/{patient.id}/documents"
    prescription = {"category": "ordonnance", "description": "Sortie"}
    resp = await post_upload(site, coord, url, prescription, PDF, "ordonnance sortie.pdf")
    assert resp.status == 303, await resp.text()
    status, body, _ = await site.get(coord, f"/patients/{patient.id}")
    assert "Ordonnance" in body and "ordonnance sortie.pdf" in body
    doc_url = re.search(rf'href="({url}/[0-9a-f-]+)"', body).group(1)  # type: ignore[union-attr]
    status, _, resp = await site.get(site.person(site.NURSE), doc_url)
    assert status == 200 and await resp.read() == PDF
    assert resp.headers["Content-Type"] == "application/pdf"
    assert "sandbox" in resp.headers["Content-Security-Policy"]
    assert (await site.get(site.person(site.OUTSIDER), doc_url))[0] == 404
    # HTML disguised as a PDF, a traversal name, an unknown category, no CSRF: refused
    for fields, content, name, expected in (
        ({"category": "bilan"}, b"<html><script>alert(1)</script></html>", "bilan.pdf", 415),
        ({"category": "bilan"}, PDF, "../../etc/passwd", 400),
        ({"category": "inconnue"}, PDF, "a.pdf", 400),
    ):
        resp = await post_upload(site, coord, url, fields, content, name)
        assert resp.status == expected, name
    data = FormData()
    data.add_field("category", "bilan")
    data.add_field("file", PDF, filename="b.pdf")
    resp = await site.client.post(url, data=data, headers=coord.headers, allow_redirects=False)
    assert resp.status == 403
    too_big = b"%PDF-1.4\n" + b"0" * (site.config.documents_max_size + 10)
    resp = await post_upload(site, coord, url, {"category": "bilan"}, too_big, "g.pdf")
    assert resp.status == 413
    status, body, _ = await site.get(coord, f"/patients/{patient.id}")
    assert body.count(f'href="{url}/') == 1  # only the first upload was stored
    # a document restricted to coordinators is hidden from the nurse
    restricted = {"category": "courrier", "restricted_to_roles": "coordinateur"}
    resp = await post_upload(site, coord, url, restricted, PDF, "confidentiel.pdf")
    assert resp.status == 303
    assert "confidentiel.pdf" in (await site.get(coord, f"/patients/{patient.id}"))[1]
    assert (
        "confidentiel.pdf"
        not in (await site.get(site.person(site.NURSE), f"/patients/{patient.id}"))[1]
    )
    # a task linking the prescription and the PPCS questionnaire shows both
    doc_id = doc_url.rsplit("/", 1)[1]
    status, body, _ = await site.post(
        coord,
        f"/patients/{patient.id}/taches",
        {
            "label": "Transmettre l'ordonnance",
            "type": "Administratif",
            "document_ids": doc_id,
            "form_id": "ppcs",
        },
    )
    assert status == 303, body[-300:]
    body = (await site.get(coord, f"/patients/{patient.id}"))[1]
    row = body[body.index("Transmettre l&#39;ordonnance") :].split("</tr>")[0]
    assert f'href="{doc_url}">ordonnance sortie.pdf</a>' in row
    assert f'href="/patients/{patient.id}/formulaires/ppcs">PPCS' in row


async def test_agenda_views_new_event_and_subscription(site) -> None:
    patient = await site.seed_patient(
        "Dossier Durand", birth_name="DURAND", birth_first_names=["Marie"]
    )
    coord = site.person(site.COORD)
    status, body, _ = await site.post(
        coord,
        "/agenda/evenements",
        {
            "title": "Passage IDE",
            "type": "Visite à domicile",
            "starts_at": "2026-11-23T09:00",
            "ends_at": "2026-11-23T09:30",
            "patient_id": patient.id,
            "recurrence": "FREQ=WEEKLY",
            "until": "2026-12-31",
            "location": "Domicile",
            "attendees": site.NURSE,
        },
    )
    assert status == 303, body[-500:]
    for view, needle in (
        ("semaine", "Semaine du 23 au 29 novembre 2026"),
        ("mois", "Novembre 2026"),
        ("jour", "lundi 23 novembre 2026"),
        ("liste", "Du lundi 23 novembre 2026"),
    ):
        status, body, _ = await site.get(coord, f"/agenda?vue={view}&date=2026-11-23")
        assert status == 200 and needle in body, view
        assert "Passage IDE" in body
    status, body, _ = await site.get(coord, "/agenda?vue=mois&date=2026-12-01")
    assert body.count(">09:00 Passage IDE<") == 5  # Mondays of the December grid (30 Nov…28 Dec)
    status, body, _ = await site.get(coord, "/agenda?vue=liste&date=2026-11-23")
    assert "DURAND Marie" in body and "09:00 – 09:30" in body
    # the attendee sees it too; someone else's view of a file they cannot open says "Occupé"
    assert (
        "Passage IDE"
        in (await site.get(site.person(site.NURSE), "/agenda?vue=jour&date=2026-11-30"))[1]
    )
    status, body, _ = await site.get(
        site.person(site.OUTSIDER), f"/agenda?vue=jour&date=2026-11-30&membre={site.COORD}"
    )
    assert "Occupé" in body and "Passage IDE" not in body and "DURAND" not in body
    # bad input
    status, body, _ = await site.post(
        coord,
        "/agenda/evenements",
        {
            "title": "X",
            "type": "RDV",
            "starts_at": "2026-11-23T10:00",
            "ends_at": "2026-11-23T09:00",
        },
    )
    assert status == 400 and "La fin de l&#39;événement doit suivre son début." in body
    # the secret subscription, served by the API's feed route
    status, body, _ = await site.post(coord, "/agenda/abonnement", {})
    assert status == 200
    feed = re.search(r'<code id="adresse-ical">([^<]+)</code>', body).group(1)  # type: ignore[union-attr]
    path = feed.split("://", 1)[1].split("/", 1)[1]
    resp = await site.client.get("/" + path)
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/calendar")
    (event,) = icalendar.Calendar.from_ical(await resp.text()).walk("VEVENT")
    assert str(event["SUMMARY"]) == "Visite à domicile — Passage IDE"
    assert "FREQ=WEEKLY" in event["RRULE"].to_ical().decode()


async def test_the_owner_cancels_an_appointment(site) -> None:
    await site.seed_patient()  # the nurse shares a care circle with the coordinator
    coord = site.person(site.COORD)
    status, _, _ = await site.post(
        coord,
        "/agenda/evenements",
        {
            "title": "Réunion de synthèse",
            "type": "RDV bureau",
            "starts_at": "2026-12-02T14:00",
            "ends_at": "2026-12-02T15:00",
            "attendees": site.NURSE,
        },
    )
    assert status == 303
    body = (await site.get(coord, "/agenda?vue=jour&date=2026-12-02"))[1]
    event_id = re.search(r"/agenda/evenements/([0-9a-f-]+)/annulation", body).group(1)  # type: ignore[union-attr]
    nurse_view = (await site.get(site.person(site.NURSE), "/agenda?vue=jour&date=2026-12-02"))[1]
    assert "Réunion de synthèse" in nurse_view and "/annulation" not in nurse_view
    status, _, _ = await site.post(
        site.person(site.NURSE), f"/agenda/evenements/{event_id}/annulation", {}
    )
    assert status == 404
    status, _, resp = await site.post(coord, f"/agenda/evenements/{event_id}/annulation", {})
    assert status == 303 and site.location(resp) == "/agenda?vue=jour&date=2026-12-02"
    body = (await site.get(coord, "/agenda?vue=jour&date=2026-12-02"))[1]
    assert '<span class="badge etat-annulé">annulé</span>' in body and "/annulation" not in body
