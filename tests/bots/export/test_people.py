from typing import Any

from bots.export.people import DossierRoomPeople, RoomPeople, patient_name


class Directory:
    """A real in-memory directory with the dossier client's two calls (no mock library)."""

    def __init__(
        self, patients: dict[str, dict[str, Any]], circles: dict[str, list[dict[str, Any]]]
    ) -> None:
        self.patients, self.circles = patients, circles

    async def patient_by_room(self, room_id: str) -> dict[str, Any] | None:
        return self.patients.get(room_id)

    async def circle(self, patient_id: str, *, include_ended: bool = False) -> list[dict]:
        if patient_id == "broken":
            raise ConnectionError("dossier down")
        return self.circles.get(patient_id, [])


def test_patient_name_prefers_used_names() -> None:
    assert patient_name({"used_first_name": "Jeanne", "birth_name": "Dupont"}) == "Jeanne DUPONT"
    assert (
        patient_name({"first_birth_first_name": "Zoé", "used_name": "Œillet", "birth_name": "X"})
        == "Zoé ŒILLET"
    )
    assert patient_name({"label": "Mme D."}) == "Mme D."
    assert patient_name({}) is None


async def test_professions_from_the_circle() -> None:
    directory = Directory(
        {
            "!r": {"id": "p1", "used_first_name": "Jeanne", "used_name": "Dupont"},
            "!b": {"id": "broken"},
        },
        {
            "p1": [
                {"matrix_user_id": "@a:x", "profession": "infirmière"},
                {"matrix_user_id": None, "profession": "aidante"},
                {"matrix_user_id": "@b:x", "profession": ""},
            ]
        },
    )
    people = await DossierRoomPeople(directory)("!r")
    assert people == RoomPeople("Jeanne DUPONT", {"@a:x": "infirmière"})
    assert await DossierRoomPeople(directory)("!unknown") == RoomPeople()
    assert await DossierRoomPeople(directory)("!b") == RoomPeople()
