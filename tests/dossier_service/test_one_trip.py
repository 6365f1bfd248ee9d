"""On PostgreSQL a file's sections come in one round trip (issue 15: the region profile's
dossier paid a round trip per section, sixteen per read after each write), with exactly the
rows, order and JSON forms the per-statement path gives."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import aiohttp
import pytest
from sqlalchemy import event

from dossier_service import appkeys
from dossier_service.policy import Principal
from dossier_service.services import one_trip, read_models
from tests.dossier_service.conftest import COORD, MEMBER, Api
from tests.dossier_service.test_api_patients import QUAL_IDENTITY, with_key

pytestmark = pytest.mark.parametrize(
    "database_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


async def _rich_file(api: Api) -> str:
    """A file with a row in every section, several in some (their order is checked)."""
    pid = await api.patient_with_circle()
    base = f"/api/v1/patients/{pid}"
    for text in ("Première", "Deuxième", "Troisième"):
        await api.created(f"{base}/notebook", {"kind": "note", "text": text}, as_user=MEMBER)
    for text in ("Clés chez la voisine", "Chien au jardin"):
        await api.created(f"{base}/memos", {"text": text}, as_user=COORD)
    for admission, discharge in (
        ("2025-01-01T10:00:00Z", "2025-01-03T10:00:00Z"),
        ("2031-05-02T08:30:00.250000Z", None),
    ):
        await api.created(
            f"{base}/hospitalisations",
            {"structure": "CHU", "admission_at": admission, "discharge_at": discharge},
            as_user=COORD,
        )
    await api.created(
        f"{base}/lifeline",
        {"theme": "Intervention / Réunion", "title": "RCP", "starts_on": "2025-03-04"},
        as_user=COORD,
    )
    await api.ok(
        "PUT",
        f"{base}/forms/medical",
        as_user=COORD,
        json={"answers": {"pathologies": "Diabète"}, "base_version": 0},
    )
    for label, due in (
        ("Pansement", "2025-02-01"),
        ("Bilan", None),
        ("Prise de sang", "2024-12-01"),
    ):
        await api.created(
            "/api/v1/tasks",
            {
                "type": "Soins",
                "label": label,
                "patient_id": pid,
                "due_date": due,
                "assignees": [
                    {"kind": "personne", "ref": MEMBER},
                    {"kind": "personne", "ref": COORD},
                ],
            },
            as_user=COORD,
        )
    await api.ok(
        "PATCH",
        f"{base}/identity",
        as_user=COORD,
        json={**QUAL_IDENTITY, "ins_number": with_key("2450331555123"), "identity_status": "VALI"},
    )
    form = aiohttp.FormData()
    form.add_field("category", "ordonnance")
    form.add_field("file", b"%PDF-1.4\n%%EOF\n", filename="o.pdf")
    await api.ok("POST", f"{base}/documents", 201, as_user=COORD, data=form)
    return pid


async def test_sections_in_one_round_trip_are_those_of_each_statement(api: Api) -> None:
    pid = await _rich_file(api)
    params: dict[str, Any] = {"pid": pid, "notebook_limit": 2}
    statements = read_models._section_statements()
    db = api.app[appkeys.DATABASE]
    async with db.transaction() as session:
        each = {name: await read_models.rows(session, s, params) for name, s in statements.items()}
        together = await one_trip.rows_by_name(
            session, statements, params, plan=read_models._plan, json_decoded=read_models._db_json
        )
    assert together == each
    assert [name for name in statements if not each[name]] == ["death"]
    newest = [n["created_at"] for n in together["notebook"]]
    assert len(newest) == 2 and newest == sorted(newest, reverse=True)  # the limit, in order
    labels = list(dict.fromkeys(t["label"] for t in together["tasks"]))  # a row per assignee
    assert labels == ["Prise de sang", "Pansement", "Bilan"]


async def test_a_file_read_after_a_change_is_one_statement(api: Api) -> None:
    pid = await _rich_file(api)
    db = api.app[appkeys.DATABASE]
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    try:
        async with db.transaction() as session:
            await read_models.file_sections(
                session,
                patient_id=pid,
                principal=Principal(COORD),
                membership=None,
                now=datetime.now(UTC),
                today=date.today(),
            )
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", count)
    assert len(statements) == 1


async def test_the_file_answered_is_the_same_on_both_paths(api: Api) -> None:
    """The API's whole file, read through the one-trip path, equals a fresh per-statement
    load of the same sections (what SQLite serves)."""
    pid = await _rich_file(api)
    file = await api.ok("GET", f"/api/v1/patients/{pid}", as_user=COORD)
    db = api.app[appkeys.DATABASE]
    params: dict[str, Any] = {"pid": pid, "notebook_limit": 50}
    async with db.transaction() as session:
        each = {
            name: await read_models.rows(session, s, params)
            for name, s in read_models._section_statements().items()
        }
    assert [n["id"] for n in file["notebook"]] == [n["id"] for n in each["notebook"]]
    assert file["memos"] == each["memos"]
    assert [t["id"] for t in file["tasks"]] == list(dict.fromkeys(t["id"] for t in each["tasks"]))
    assert file["hospitalisations"][0]["admission_at"] == "2031-05-02T08:30:00.250000Z"
