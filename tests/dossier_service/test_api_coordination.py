"""Tasks and their dashboard, agendas and the iCalendar feed, the liaison notebook with
idempotent bot writes, versioned forms, hospitalisations, the care circle, the event feed."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from tests.dossier_service.conftest import ADMIN, COORD, MEMBER, NOACCESS, OUTSIDER, Api


async def _task(api: Api, pid: str | None, **kw: Any) -> dict[str, Any]:
    by = kw.pop("by", COORD)
    body = {"type": "Soins", "label": "Pansement", **kw}
    if pid:
        body["patient_id"] = pid
    return dict(await api.created("/api/v1/tasks", body, as_user=by))


async def test_task_dashboard_filters_and_overdue_alerts(api: Api) -> None:
    pid = await api.patient_with_circle()
    other = await api.new_patient(coordinator=OUTSIDER)
    yesterday = (date.today() - timedelta(days=2)).isoformat()
    soon = (date.today() + timedelta(days=5)).isoformat()
    late = await _task(
        api,
        pid,
        label="Renouveler ordonnance",
        due_date=yesterday,
        level="haute",
        subtypes=["Traitement"],
        assignees=[{"kind": "personne", "ref": MEMBER}],
    )
    await _task(
        api,
        pid,
        type="Social",
        label="Dossier APA",
        due_date=soon,
        subtypes=["Dossier APA"],
        assignees=[{"kind": "structure", "ref": "SSIAD Nord"}],
    )
    await api.created(
        "/api/v1/tasks", {"patient_id": other, "type": "Soins", "label": "Secret"}, as_user=OUTSIDER
    )
    board = await api.ok("GET", "/api/v1/tasks", as_user=MEMBER)
    assert [t["label"] for t in board["items"]] == [
        "Renouveler ordonnance",
        "Dossier APA",
    ]  # overdue first
    assert board["overdue"] == 1 and board["items"][0]["overdue"] is True
    assert (await api.ok("GET", f"/api/v1/tasks?member={MEMBER}", as_user=COORD))["items"][0][
        "id"
    ] == late["id"]
    assert len((await api.ok("GET", "/api/v1/tasks?type=Social", as_user=COORD))["items"]) == 1
    assert (
        len((await api.ok("GET", "/api/v1/tasks?subtype=Traitement", as_user=COORD))["items"]) == 1
    )
    assert len((await api.ok("GET", "/api/v1/tasks?level=haute", as_user=COORD))["items"]) == 1
    assert len((await api.ok("GET", "/api/v1/tasks?overdue=1", as_user=COORD))["items"]) == 1
    assert (
        len(
            (await api.ok("GET", f"/api/v1/tasks?due_from={soon}&due_to={soon}", as_user=COORD))[
                "items"
            ]
        )
        == 1
    )
    assert (
        len((await api.ok("GET", "/api/v1/tasks?member=SSIAD%20Nord", as_user=COORD))["items"]) == 1
    )
    assert (await api.ok("GET", "/api/v1/tasks", as_user=NOACCESS))["items"] == []
    assert len((await api.ok("GET", "/api/v1/tasks", as_user=ADMIN))["items"]) == 3
    # close the late one: no longer an alert; a closed task only reopens
    await api.ok(
        "PATCH",
        f"/api/v1/tasks/{late['id']}",
        as_user=MEMBER,
        json={"state": "fait", "comment": "Fait ce jour"},
    )
    board = await api.ok("GET", "/api/v1/tasks?state=fait", as_user=MEMBER)
    assert board["overdue"] == 0 and board["items"][0]["closed_at"]
    await api.refused(
        "PATCH", f"/api/v1/tasks/{late['id']}", 400, as_user=MEMBER, json={"state": "en cours"}
    )
    await api.ok("PATCH", f"/api/v1/tasks/{late['id']}", as_user=MEMBER, json={"state": "à faire"})
    notebook = await api.ok("GET", f"/api/v1/patients/{pid}/notebook", as_user=COORD)
    assert any(
        e["text"].startswith("Tâche « Renouveler ordonnance » : état « fait »")
        for e in notebook["items"]
    )


async def test_personal_task_without_patient(api: Api) -> None:
    task = await _task(
        api,
        None,
        label="Relancer le laboratoire",
        by=MEMBER,
        assignees=[{"kind": "personne", "ref": COORD}],
    )
    await api.ok("GET", f"/api/v1/tasks/{task['id']}", as_user=COORD)  # assignee sees it
    await api.refused("GET", f"/api/v1/tasks/{task['id']}", 404, as_user=OUTSIDER)


async def test_task_links_documents_of_its_file_only(api: Api) -> None:
    import aiohttp

    pid = await api.new_patient()
    other = await api.new_patient()
    form = aiohttp.FormData()
    form.add_field("category", "ordonnance")
    form.add_field("file", b"%PDF-1.4\n%%EOF\n", filename="o.pdf")
    doc = await api.ok("POST", f"/api/v1/patients/{other}/documents", 201, as_user=COORD, data=form)
    await api.refused(
        "POST",
        "/api/v1/tasks",
        400,
        as_user=COORD,
        json={"patient_id": pid, "type": "Soins", "label": "x", "document_ids": [doc["id"]]},
    )
    task = await _task(api, other, document_ids=[doc["id"]])
    assert task["document_ids"] == [doc["id"]]


async def test_bot_writes_are_idempotent(api: Api) -> None:
    pid = await api.patient_with_circle()
    note = {
        "kind": "signalement",
        "text": "Urgence signalée dans la conversation",
        "idempotency_key": "$event1",
    }
    first = await api.created(
        f"/api/v1/patients/{pid}/notebook",
        note,
        service=True,
        headers={"X-Cercle-On-Behalf-Of": MEMBER, "X-Cercle-Source": "matrix"},
    )
    again = await api.created(
        f"/api/v1/patients/{pid}/notebook",
        note,
        service=True,
        headers={"X-Cercle-On-Behalf-Of": MEMBER, "X-Cercle-Source": "matrix"},
    )
    assert first == again
    assert await api.count("notebook_entries", "WHERE kind = 'signalement'") == 1
    assert first["author"] == MEMBER and first["source"] == "matrix"
    task = {
        "patient_id": pid,
        "type": "Coordination",
        "label": "Rappeler",
        "idempotency_key": "$event2",
        "assignees": [{"kind": "personne", "ref": MEMBER}],
    }
    a = await api.created("/api/v1/tasks", task, service=True)
    b = await api.created("/api/v1/tasks", task, service=True)
    assert a["id"] == b["id"] and await api.count("tasks") == 1
    events = await api.ok("GET", "/api/v1/events?after=0", service=True)
    assert [e["type"] for e in events["events"]].count("task.assigned") == 1
    # what the bot relayed from the conversation is not echoed back to it; a person's note is
    assert "notebook.entry" not in [e["type"] for e in events["events"]]
    await api.created(f"/api/v1/patients/{pid}/notebook", {"text": "Vu ce jour"}, as_user=MEMBER)
    events = await api.ok("GET", f"/api/v1/events?after={events['next_after']}", service=True)
    assert [e["type"] for e in events["events"]] == ["notebook.entry"]
    # the bot closes the task (PATCH with a key, replayed)
    for _ in range(2):
        await api.ok(
            "PATCH",
            f"/api/v1/tasks/{a['id']}",
            service=True,
            json={"state": "fait"},
            headers={"Idempotency-Key": "$event3"},
        )
    events = await api.ok("GET", "/api/v1/events?after=0", service=True)
    assert [e["type"] for e in events["events"]].count("task.closed") == 1


async def test_event_feed_is_monotonic_and_resumable(api: Api) -> None:
    pid = await api.patient_with_circle()
    page1 = await api.ok("GET", "/api/v1/events?after=0&limit=2", service=True)
    assert len(page1["events"]) == 2
    seqs = [e["seq"] for e in page1["events"]]
    assert seqs == sorted(seqs)
    rest = await api.ok("GET", f"/api/v1/events?after={page1['next_after']}", service=True)
    assert all(e["seq"] > page1["next_after"] for e in rest["events"])
    types = [e["type"] for e in page1["events"] + rest["events"]]
    assert types == ["patient.created", "circle.added", "circle.added"]
    await api.created(
        f"/api/v1/patients/{pid}/hospitalisations",
        {
            "structure": "CHU",
            "admission_at": "2025-01-01T10:00:00Z",
            "discharge_at": "2025-01-03T10:00:00Z",
        },
        as_user=COORD,
    )
    newer = await api.ok("GET", f"/api/v1/events?after={rest['next_after']}", service=True)
    assert [e["type"] for e in newer["events"]] == [
        "hospitalisation.admission",
        "hospitalisation.discharge",
    ]
    assert all(e["patient_id"] == pid for e in newer["events"])
    empty = await api.ok("GET", f"/api/v1/events?after={newer['next_after']}", service=True)
    assert empty == {"events": [], "next_after": newer["next_after"]}


async def test_forms_are_versioned_with_conflict_detection(api: Api) -> None:
    pid = await api.patient_with_circle()
    v1 = await api.ok(
        "PUT",
        f"/api/v1/patients/{pid}/forms/medical",
        as_user=COORD,
        json={"answers": {"pathologies": "Diabète"}, "base_version": 0},
    )
    v2 = await api.ok(
        "PUT",
        f"/api/v1/patients/{pid}/forms/medical",
        as_user=MEMBER,
        json={
            "answers": {"pathologies": "Diabète de type 2", "allergies": "aucune connue"},
            "base_version": 1,
        },
    )
    assert (v1["version"], v2["version"]) == (1, 2)
    assert sorted(v2["changed_fields"]) == ["allergies", "pathologies"]
    assert v2["initiated_at"] == v1["initiated_at"]
    status, _body = await api.call(
        "PUT",
        f"/api/v1/patients/{pid}/forms/medical",
        as_user=COORD,
        json={"answers": {"pathologies": "écrase"}, "base_version": 1},
    )
    assert status == 409
    form = await api.ok("GET", f"/api/v1/patients/{pid}/forms/medical", as_user=COORD)
    assert [v["version"] for v in form["versions"]] == [2, 1]
    assert [v["created_by"] for v in form["versions"]] == [MEMBER, COORD]
    assert form["current"]["answers"]["pathologies"] == "Diabète de type 2"
    notebook = await api.ok("GET", f"/api/v1/patients/{pid}/notebook", as_user=COORD)
    assert any(
        e["text"].startswith("Modification du formulaire Médical initié le ")
        for e in notebook["items"]
    )
    await api.refused("GET", f"/api/v1/patients/{pid}/forms/inconnu", 404, as_user=COORD)


async def test_hospitalisation_states(api: Api) -> None:
    pid = await api.new_patient()
    await api.created(
        f"/api/v1/patients/{pid}/hospitalisations",
        {"structure": "Clinique A", "admission_at": "2199-01-01T10:00:00Z"},
        as_user=COORD,
    )
    cur = await api.created(
        f"/api/v1/patients/{pid}/hospitalisations",
        {
            "structure": "CHU B",
            "service": "Cardiologie",
            "admission_at": "2025-01-01T10:00:00Z",
        },
        as_user=COORD,
    )
    assert cur["state"] == "en cours"
    done = await api.ok(
        "PATCH",
        f"/api/v1/patients/{pid}/hospitalisations/{cur['id']}",
        as_user=COORD,
        json={"discharge_at": "2025-01-09T10:00:00Z"},
    )
    assert done["state"] == "passée"
    file = await api.ok("GET", f"/api/v1/patients/{pid}", as_user=COORD)
    assert sorted(s["state"] for s in file["hospitalisations"]) == ["passée", "prévue"]
    texts = [e["text"] for e in file["notebook"]]
    assert "Hospitalisation : sortie le 09/01/2025 de CHU B" in texts


async def test_stay_update_with_null_admission_keeps_it(api: Api) -> None:
    """Found by the stateful fuzzing: ``"admission_at": null`` in a PATCH answered 500 (the stay
    lost its admission). Null leaves a field unchanged, as for every other update; only the
    discharge may be cleared."""
    pid = await api.new_patient()
    stay = await api.created(
        f"/api/v1/patients/{pid}/hospitalisations",
        {"structure": "CHU B", "admission_at": "2025-01-01T10:00:00Z"},
        as_user=COORD,
    )
    url = f"/api/v1/patients/{pid}/hospitalisations/{stay['id']}"
    body = {"admission_at": None, "service": None, "comment": "ĝ", "discharge_at": None}
    after = await api.ok("PATCH", url, as_user=COORD, json=body)
    assert after["admission_at"] == stay["admission_at"] and after["comment"] == "ĝ"
    out = await api.ok("PATCH", url, as_user=COORD, json={"discharge_at": "2025-01-09T10:00:00Z"})
    assert out["state"] == "passée"
    back = await api.ok("PATCH", url, as_user=COORD, json={"discharge_at": None})
    assert back["state"] == "en cours" and back["discharge_at"] is None


async def test_care_circle_lifecycle(api: Api) -> None:
    pid = await api.new_patient()
    member = await api.add_member(pid, MEMBER)
    assert member["added_by"] == COORD and member["has_access"] is True
    await api.refused(
        "POST",
        f"/api/v1/patients/{pid}/circle",
        409,
        as_user=COORD,
        json={
            "kind": "professionnel",
            "display_name": "Doublon",
            "matrix_user_id": MEMBER,
            "role": "intervenant",
        },
    )
    await api.created(
        f"/api/v1/patients/{pid}/circle",
        {
            "kind": "structure",
            "display_name": "SSIAD Nord",
            "role": "structure",
            "has_access": False,
        },
        as_user=COORD,
    )
    await api.created(
        f"/api/v1/patients/{pid}/circle",
        {
            "kind": "representant_legal",
            "display_name": "Me Durand",
            "role": "representant_legal",
        },
        as_user=COORD,
    )
    left = await api.ok(
        "POST",
        f"/api/v1/patients/{pid}/circle/left-room",
        service=True,
        json={"matrix_user_id": MEMBER},
    )
    assert left["member"]["left_room_at"]
    coord_id = next(
        m["id"]
        for m in (await api.ok("GET", f"/api/v1/patients/{pid}/circle", as_user=COORD))["items"]
        if m["matrix_user_id"] == COORD
    )
    status, _body = await api.call(
        "POST", f"/api/v1/patients/{pid}/circle/{coord_id}/end", as_user=COORD
    )
    assert status == 409  # the last coordinator stays
    await api.ok(
        "PATCH",
        f"/api/v1/patients/{pid}/circle/{member['id']}",
        as_user=COORD,
        json={"role": "coordinateur"},
    )
    await api.ok("POST", f"/api/v1/patients/{pid}/circle/{coord_id}/end", as_user=COORD)
    everyone = await api.ok("GET", f"/api/v1/patients/{pid}/circle?include_ended=1", as_user=MEMBER)
    assert len(everyone["items"]) == 4
    ended = [m for m in everyone["items"] if m["ended_at"]]
    assert [m["matrix_user_id"] for m in ended] == [COORD]
    texts = [
        e["text"]
        for e in (await api.ok("GET", f"/api/v1/patients/{pid}/notebook", as_user=MEMBER))["items"]
    ]
    assert "Ajout de Member sur le cercle de soins (intervenant)" in texts
    assert (
        "Ajout de la structure SSIAD Nord sur le cercle de soins (sans accès au dossier)" in texts
    )
    assert f"Retrait de {COORD} du cercle de soins" in texts
    assert "Member a quitté la conversation du patient" in texts


async def test_lifeline_episode_with_form(api: Api) -> None:
    pid = await api.new_patient()
    ep = await api.created(
        f"/api/v1/patients/{pid}/lifeline",
        {
            "theme": "Intervention / Réunion",
            "title": "Réunion de concertation",
            "starts_on": "2025-03-04",
            "form_id": "ppcs",
        },
        as_user=COORD,
    )
    assert ep["form_id"] == "ppcs"
    await api.refused(
        "POST",
        f"/api/v1/patients/{pid}/lifeline",
        400,
        as_user=COORD,
        json={"theme": "Suivi / Réunion", "starts_on": "2025-03-04", "form_id": "inconnu"},
    )
    texts = [
        e["text"]
        for e in (await api.ok("GET", f"/api/v1/patients/{pid}/notebook", as_user=COORD))["items"]
    ]
    assert "Création du parcours Intervention / Réunion du 04/03/2025" in texts


async def test_agenda_recurrence_and_ical_feed(api: Api) -> None:
    pid = await api.patient_with_circle()
    weekly = await api.created(
        "/api/v1/agenda/events",
        {
            "type": "Visite à domicile",
            "title": "Passage infirmier",
            "patient_id": pid,
            "starts_at": "2026-03-02T09:00:00+01:00",
            "ends_at": "2026-03-02T09:30:00+01:00",
            "rrule": "FREQ=WEEKLY;COUNT=6",
            "attendees": [MEMBER],
        },
        as_user=COORD,
    )
    await api.created(
        "/api/v1/agenda/events",
        {
            "type": "RDV bureau",
            "title": "Réunion d'équipe",
            "starts_at": "2026-03-10T14:00:00+01:00",
            "ends_at": "2026-03-10T15:00:00+01:00",
        },
        as_user=MEMBER,
    )
    window = "from=2026-03-01T00:00:00%2B01:00&to=2026-04-01T00:00:00%2B02:00"
    mine = await api.ok("GET", f"/api/v1/agenda/events?{window}", as_user=MEMBER)
    by_title = {e["title"]: e for e in mine["items"]}
    assert set(by_title) == {"Passage infirmier", "Réunion d'équipe"}
    occ = by_title["Passage infirmier"]["occurrences"]
    assert len(occ) == 5  # 2, 9, 16, 23, 30 March (the 6th is in April)
    assert occ[-1]["starts_at"].startswith("2026-03-30T09:00:00+02:00")  # stays 09:00 after DST
    coord_view = await api.ok("GET", f"/api/v1/agenda/events?{window}", as_user=COORD)
    assert [e["title"] for e in coord_view["items"]] == ["Passage infirmier"]
    await api.refused("GET", f"/api/v1/agenda/events?user={MEMBER}", 403, as_user=COORD)
    soon = date.today() + timedelta(days=10)
    await api.created(
        "/api/v1/agenda/events",
        {
            "type": "RDV astreinte",
            "title": "Astreinte du week-end",
            "starts_at": f"{soon.isoformat()}T08:00:00+01:00",
            "ends_at": f"{soon.isoformat()}T20:00:00+01:00",
        },
        as_user=MEMBER,
    )
    old = date.today() - timedelta(days=200)
    await api.created(
        "/api/v1/agenda/events",
        {
            "type": "RDV bureau",
            "title": "Vieille réunion",
            "starts_at": f"{old.isoformat()}T08:00:00+01:00",
            "ends_at": f"{old.isoformat()}T09:00:00+01:00",
        },
        as_user=MEMBER,
    )
    feed = await api.ok("POST", "/api/v1/agenda/feed", 201, as_user=MEMBER)
    path = feed["url"].split("://", 1)[1].split("/", 1)[1]
    resp = await api.client.get("/" + path)
    assert resp.status == 200 and resp.content_type == "text/calendar"
    text = (await resp.text()).replace("\r\n ", "")  # unfold
    assert "BEGIN:VCALENDAR" in text and "RRULE:FREQ=WEEKLY;COUNT=6" in text
    assert f"UID:{weekly['id']}@cercle" in text and "Astreinte du week-end" in text
    assert "Vieille réunion" not in text  # long past: out of the feed's window
    rotated = await api.ok("POST", "/api/v1/agenda/feed", 201, as_user=MEMBER)
    assert (await api.client.get("/" + path)).status == 404  # the old secret stops working
    assert (
        await api.client.get("/" + rotated["url"].split("://", 1)[1].split("/", 1)[1])
    ).status == 200
    assert (await api.client.get("/agenda/not-a-real-secret-at-all-xxxxxxxx.ics")).status == 404


async def test_openapi_describes_the_routes(api: Api) -> None:
    resp = await api.client.get("/api/v1/openapi.json")
    assert resp.status == 200
    doc = await resp.json()
    assert doc["openapi"].startswith("3.")
    assert "post" in doc["paths"]["/api/v1/patients/{patient_id}/circle"]
    body = doc["paths"]["/api/v1/tasks"]["post"]["requestBody"]["content"]["application/json"][
        "schema"
    ]
    assert body["$ref"] == "#/components/schemas/TaskIn"
    assert "label" in doc["components"]["schemas"]["TaskIn"]["properties"]
    catalogue = await api.ok("GET", "/api/v1/catalogue", as_user=MEMBER)
    assert "ordonnance" in catalogue["document_categories"] and catalogue["forms"]


async def test_concurrent_replays_write_once(api: Api) -> None:
    import asyncio

    pid = await api.patient_with_circle()
    note = {"kind": "transmission", "text": "Relève du soir", "idempotency_key": "$concurrent"}
    results = await asyncio.gather(
        *(
            api.call("POST", f"/api/v1/patients/{pid}/notebook", service=True, json=note)
            for _ in range(8)
        )
    )
    assert {status for status, _ in results} == {201}
    assert len({body["id"] for _, body in results}) == 1
    assert await api.count("notebook_entries", "WHERE kind = 'transmission'") == 1
    assert await api.count("idempotency_records") == 1


async def test_documents_list_is_paginated(api: Api) -> None:
    import aiohttp

    pid = await api.new_patient()
    for i in range(3):
        form = aiohttp.FormData()
        form.add_field("category", "bilan")
        form.add_field("file", f"%PDF-1.4\n% {i}\n%%EOF\n".encode(), filename=f"b{i}.pdf")
        await api.ok("POST", f"/api/v1/patients/{pid}/documents", 201, as_user=COORD, data=form)
    first = await api.ok("GET", f"/api/v1/patients/{pid}/documents?limit=2", as_user=COORD)
    assert len(first["items"]) == 2 and first["total"] == 3 and first["next"] == 2
    rest = await api.ok("GET", f"/api/v1/patients/{pid}/documents?limit=2&offset=2", as_user=COORD)
    assert len(rest["items"]) == 1 and rest["next"] is None
    assert {d["id"] for d in first["items"]}.isdisjoint(d["id"] for d in rest["items"])


async def test_removed_from_the_room_then_back_keeps_the_access_and_says_who(api: Api) -> None:
    """A member removed from the conversation in a client stays in the circle with her access
    (the room tells how to end it); the notebook names who removed her; her return clears
    "left"; a first arrival writes nothing."""
    pid = await api.new_patient()
    await api.add_member(pid, MEMBER)
    circle_url = f"/api/v1/patients/{pid}/circle"
    coord_name = next(
        m["display_name"]
        for m in (await api.ok("GET", circle_url, as_user=COORD))["items"]
        if m["matrix_user_id"] == COORD
    )

    async def notebook() -> list[str]:
        got = await api.ok("GET", f"/api/v1/patients/{pid}/notebook", as_user=COORD)
        return [e["text"] for e in got["items"]]

    first = await api.ok(
        "POST", f"{circle_url}/back-in-room", service=True, json={"matrix_user_id": MEMBER}
    )
    assert first["member"]["left_room_at"] is None
    before = await notebook()
    removed = await api.ok(
        "POST",
        f"{circle_url}/left-room",
        service=True,
        json={"matrix_user_id": MEMBER, "removed_by": COORD},
    )
    assert removed["member"]["left_room_at"] and removed["member"]["has_access"] is True
    texts = await notebook()
    assert len(texts) == len(before) + 1  # the first arrival wrote nothing
    assert f"Member a été retiré(e) de la conversation du patient par {coord_name}" in texts
    again = await api.ok(
        "POST",
        f"{circle_url}/left-room",
        service=True,
        json={"matrix_user_id": MEMBER, "removed_by": COORD},
    )
    assert again["member"]["left_room_at"] == removed["member"]["left_room_at"]
    back = await api.ok(
        "POST", f"{circle_url}/back-in-room", service=True, json={"matrix_user_id": MEMBER}
    )
    assert back["member"]["left_room_at"] is None
    texts = await notebook()
    assert texts.count("Member a rejoint la conversation du patient") == 1
    assert len(texts) == len(before) + 2
    # an invitation declined, then one withdrawn by the coordinator (each after a return)
    for body, said in (
        ({"was_invited": True}, "Member a décliné l'invitation dans la conversation du patient"),
        (
            {"was_invited": True, "removed_by": COORD},
            f"L'invitation de Member dans la conversation du patient a été retirée par {coord_name}",
        ),
    ):
        out = await api.ok(
            "POST",
            f"{circle_url}/left-room",
            service=True,
            json={"matrix_user_id": MEMBER, **body},
        )
        assert out["member"]["left_room_at"] and out["member"]["has_access"] is True
        assert said in await notebook()
        await api.ok(
            "POST", f"{circle_url}/back-in-room", service=True, json={"matrix_user_id": MEMBER}
        )
    await api.refused(
        "POST",
        f"{circle_url}/left-room",
        400,
        service=True,
        json={"matrix_user_id": MEMBER, "removed_by": "pas un identifiant"},
    )
