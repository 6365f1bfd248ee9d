"""Issue 12, finding 7 (the dossier's side): a person cannot link a file to a room by the
API (only the bot, which checks the room in Matrix), and every write the bot makes on
someone's behalf is checked against that person's access to the file."""

from __future__ import annotations

from tests.dossier_service.conftest import COORD, MEMBER, NOACCESS, OUTSIDER, Api, service_headers


async def test_a_person_cannot_link_a_room_by_the_api(api: Api) -> None:
    room = {"room_id": "!autre:cercle.test"}
    body = await api.refused(
        "POST", "/api/v1/patients", 403, as_user=COORD, json={"label": "Dossier", **room}
    )
    assert "!patient lier" in body["error"]
    pid = await api.patient_with_circle()
    await api.refused("PUT", f"/api/v1/patients/{pid}/room", 403, as_user=COORD, json=room)
    assert await api.count("patients", "WHERE room_id IS NOT NULL") == 0


async def test_the_bot_links_for_a_coordinator_only_and_never_a_room_linked_elsewhere(
    api: Api,
) -> None:
    pid = await api.patient_with_circle()
    other = await api.patient_with_circle()
    room = {"room_id": "!salon:cercle.test"}
    await api.refused(  # a member, not a coordinator
        "PUT", f"/api/v1/patients/{pid}/room", 403, json=room, headers=service_headers(MEMBER)
    )
    await api.ok("PUT", f"/api/v1/patients/{pid}/room", json=room, headers=service_headers(COORD))
    await api.refused(
        "PUT", f"/api/v1/patients/{other}/room", 409, json=room, headers=service_headers(COORD)
    )


async def test_writes_on_behalf_of_someone_need_her_access(api: Api) -> None:
    pid = await api.patient_with_circle()
    before = await api.count("notebook_entries")
    for person, expected in ((OUTSIDER, 404), (NOACCESS, 403)):
        status, _ = await api.call(
            "POST",
            f"/api/v1/patients/{pid}/notebook",
            json={"text": "Passage fait"},
            headers=service_headers(person),
        )
        assert status == expected, person
    assert await api.count("notebook_entries") == before
    await api.created(
        f"/api/v1/patients/{pid}/notebook",
        {"text": "Passage fait"},
        headers=service_headers(MEMBER),
    )
