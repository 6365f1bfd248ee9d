"""Issue 12, findings 1, 2 and 4: a removed member loses the patient's agenda, nobody breaks
someone else's iCalendar feed, and every out-of-range date or control character is a 400
naming the field (never a 500)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from tests.dossier_service.conftest import COORD, MEMBER, OUTSIDER, Api

EVENT = {
    "type": "Visite à domicile",
    "title": "Pansement chez Mme D.",
    "location": "12 rue des Lilas",
    "description": "Code porte 1234",
    "starts_at": "2026-12-03T09:00:00+01:00",
    "ends_at": "2026-12-03T09:30:00+01:00",
}


async def _feed(api: Api, user: str) -> tuple[int, str]:
    body = await api.ok("POST", "/api/v1/agenda/feed", 201, as_user=user)
    path = "/" + body["url"].split("://", 1)[1].split("/", 1)[1]
    resp = await api.client.get(path)
    return resp.status, await resp.text()


async def _remove(api: Api, pid: str, user: str) -> None:
    members = await api.ok("GET", f"/api/v1/patients/{pid}/circle", as_user=COORD)
    (member,) = [m for m in members["items"] if m["matrix_user_id"] == user]
    await api.ok("POST", f"/api/v1/patients/{pid}/circle/{member['id']}/end", as_user=COORD)


async def test_a_removed_member_loses_the_patients_agenda(api: Api) -> None:
    pid = await api.patient_with_circle()
    own = await api.created("/api/v1/agenda/events", {**EVENT, "patient_id": pid}, as_user=MEMBER)
    coords = await api.created(
        "/api/v1/agenda/events", {**EVENT, "patient_id": pid, "attendees": [MEMBER]}, as_user=COORD
    )
    private = await api.created(
        "/api/v1/agenda/events", {**EVENT, "title": "Formation", "description": ""}, as_user=MEMBER
    )
    status, feed = await _feed(api, MEMBER)
    assert status == 200 and "Pansement" in feed
    await _remove(api, pid, MEMBER)
    notebook_before = await api.count("notebook_entries")

    for event in (own, coords):
        status, body = await api.call("GET", f"/api/v1/agenda/events/{event['id']}", as_user=MEMBER)
        assert status == 404 and "Pansement" not in str(body), body
    await api.refused(
        "PATCH",
        f"/api/v1/agenda/events/{own['id']}",
        404,
        as_user=MEMBER,
        json={"title": "Toujours là"},
    )
    assert await api.count("notebook_entries") == notebook_before  # nothing written in the file
    listing = await api.ok("GET", "/api/v1/agenda/events", as_user=MEMBER)
    assert [e["id"] for e in listing["items"]] == [private["id"]]
    status, feed = await _feed(api, MEMBER)
    assert status == 200 and "Pansement" not in feed and "Code porte" not in feed
    assert "Formation" in feed
    # the coordinator still has them
    await api.ok("GET", f"/api/v1/agenda/events/{own['id']}", as_user=COORD)


async def test_attendees_need_a_relation_and_can_always_leave(api: Api) -> None:
    pid = await api.patient_with_circle()
    # an outsider (no shared care circle) cannot be put in anyone's agenda
    for body in (
        {**EVENT, "patient_id": pid, "attendees": [OUTSIDER]},
        {**EVENT, "attendees": [OUTSIDER]},
    ):
        status, answer = await api.call("POST", "/api/v1/agenda/events", as_user=COORD, json=body)
        assert status == 400 and "Participant" in answer["error"], answer
    stranger_event = await api.created("/api/v1/agenda/events", EVENT, as_user=OUTSIDER)
    await api.refused(
        "PATCH",
        f"/api/v1/agenda/events/{stranger_event['id']}",
        400,
        as_user=OUTSIDER,
        json={"attendees": [MEMBER]},
    )
    # a colleague of a shared circle may be invited, and leaves when she wants
    event = await api.created(
        "/api/v1/agenda/events", {**EVENT, "patient_id": pid, "attendees": [MEMBER]}, as_user=COORD
    )
    await api.ok("DELETE", f"/api/v1/agenda/events/{event['id']}/attendees/me", as_user=MEMBER)
    again = await api.ok("GET", f"/api/v1/agenda/events/{event['id']}", as_user=COORD)
    assert again["attendees"] == []
    await api.refused(
        "DELETE", f"/api/v1/agenda/events/{event['id']}/attendees/me", 404, as_user=MEMBER
    )


async def test_a_far_future_event_cannot_break_a_colleagues_feed(api: Api) -> None:
    pid = await api.patient_with_circle()
    status, body = await api.call(
        "POST",
        "/api/v1/agenda/events",
        as_user=COORD,
        json={
            **EVENT,
            "attendees": [MEMBER],
            "starts_at": "9999-12-31T22:30:00+00:00",
            "ends_at": "9999-12-31T23:00:00+00:00",
        },
    )
    assert status == 400 and "starts_at" in body["error"], body
    del pid
    status, feed = await _feed(api, MEMBER)
    assert status == 200 and "BEGIN:VCALENDAR" in feed


BAD_INPUTS: list[tuple[str, str, dict[str, Any], str]] = [
    ("POST", "hospitalisations", {"structure": "CHU", "admission_at": "0001-01-01T00:00:00+14:00"},
     "admission_at"),
    ("POST", "lifeline", {"theme": "Suivi / Réunion", "starts_on": "2025-01-01",
                          "ends_on": "9999-12-31"}, "ends_on"),
    ("POST", "death", {"death_date": "0001-01-01"}, "death_date"),
    ("POST", "memos", {"text": "clé\x00sous le paillasson"}, "text"),
    ("POST", "notebook", {"text": "transmission\x07"}, "text"),
]  # fmt: skip


@pytest.mark.parametrize(("method", "where", "body", "field"), BAD_INPUTS)
async def test_out_of_range_dates_and_control_characters_are_a_400_naming_the_field(
    api: Api, method: str, where: str, body: dict[str, Any], field: str
) -> None:
    pid = await api.patient_with_circle()
    status, answer = await api.call(
        method, f"/api/v1/patients/{pid}/{where}", as_user=COORD, json=body
    )
    assert status == 400, answer
    assert field in answer["error"], answer


@pytest.mark.parametrize("due", ["0001-01-01", "9999-12-31"])
async def test_task_due_dates_are_bounded(api: Api, due: str) -> None:
    pid = await api.patient_with_circle()
    status, answer = await api.call(
        "POST",
        "/api/v1/tasks",
        as_user=COORD,
        json={"patient_id": pid, "type": "Soins", "label": "Pansement", "due_date": due},
    )
    assert status == 400 and "due_date" in answer["error"], answer


@pytest.mark.parametrize("value", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-12:00"])
async def test_agenda_query_dates_are_bounded(api: Api, value: str) -> None:
    status, answer = await api.call(
        "GET", f"/api/v1/agenda/events?from={quote(value)}", as_user=COORD
    )
    assert status == 400 and "from" in answer["error"], answer
