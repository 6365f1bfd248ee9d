"""The extraction API end to end (the real app and its background worker): asked for,
produced, listed, downloaded by its requester alone; refused to non-admins; and the bot's
activity counts (idempotent, the largest running total stands, unknown rooms refused)."""

from __future__ import annotations

import asyncio
import io
import zipfile
from typing import Any
from urllib.parse import unquote

from openpyxl import load_workbook
from sqlalchemy import text

from dossier_service import appkeys
from tests.directory_support import structure_row
from tests.dossier_service.conftest import ADMIN, COORD, MEMBER, Api

PERIOD = {"start": "2026-03-01", "end": "2026-05-31"}
FINESS = "310000001"
ROOM = "!salle:cercle.test"


async def wait_ready(api: Api, report_id: str, user: str = ADMIN) -> dict[str, Any]:
    for _ in range(300):
        body = await api.ok("GET", f"/api/v1/extractions/{report_id}", as_user=user)
        if body["status"] != "en cours":
            return dict(body)
        await asyncio.sleep(0.1)
    raise AssertionError("extraction jamais produite")


async def add_structure(api: Api) -> None:
    async with api.app[appkeys.DATABASE].transaction() as session:
        session.add(structure_row(FINESS, "SSIAD Garonne", city="TOULOUSE", category="SSIAD"))


async def test_an_admin_asks_gets_and_downloads_an_extraction(api: Api) -> None:
    pid = await api.new_patient()
    await api.add_member(pid, MEMBER)
    body = await api.ok(
        "POST", "/api/v1/extractions", 202, as_user=ADMIN, json={"scope": "plateforme", **PERIOD}
    )
    assert body["status"] == "en cours" and body["xlsx"] is None
    ready = await wait_ready(api, body["id"])
    assert ready["status"] == "prête", ready
    assert ready["title"].startswith("Document d'extraction brute des données pour toute")

    listed = await api.ok("GET", "/api/v1/extractions", as_user=ADMIN)
    assert [r["id"] for r in listed["items"]] == [body["id"]]
    assert await api.ok("GET", "/api/v1/extractions", as_user=COORD) == {"items": []}

    resp = await api.client.get(ready["xlsx"], headers=_h(ADMIN))
    assert resp.status == 200
    assert resp.content_type == (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    disposition = resp.headers["Content-Disposition"]
    assert "Extraction d'activité – toute la plateforme – du 01-03-2026 au 31-05-2026.xlsx" in (
        unquote(disposition)
    )
    book = load_workbook(io.BytesIO(await resp.read()))
    assert len(book.sheetnames) > 2
    resp = await api.client.get(ready["csv"], headers=_h(ADMIN))
    assert resp.status == 200 and resp.content_type == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(await resp.read())).namelist()
    assert names and all(n.endswith(".csv") for n in names)

    # somebody else's report does not exist for them, its files neither
    for path in (f"/api/v1/extractions/{body['id']}", ready["xlsx"], ready["csv"]):
        status, err = await api.call("GET", path, as_user=COORD)
        assert (status, err["errcode"]) == (404, "M_NOT_FOUND")
    audit = await api.count("audit_log", "WHERE resource LIKE 'extractions/%'")
    assert audit >= 4


async def test_a_non_admin_is_refused_and_bad_demands_are_refused_in_french(api: Api) -> None:
    await add_structure(api)
    for scope in ("plateforme", FINESS):
        status, err = await api.call(
            "POST", "/api/v1/extractions", as_user=COORD, json={"scope": scope, **PERIOD}
        )
        assert (status, err["errcode"], err["error"]) == (403, "M_FORBIDDEN", "Accès refusé.")
    status, err = await api.call(
        "POST", "/api/v1/extractions", service=True, json={"scope": "plateforme", **PERIOD}
    )
    assert status == 403
    assert await api.count("extraction_reports") == 0
    refusals = await api.count("audit_log", "WHERE resource = 'extractions' AND outcome = 'refusé'")
    assert refusals >= 2

    for wrong, said in (
        (
            {"scope": "plateforme", "start": "2026-05-01", "end": "2026-04-01"},
            "Champ invalide : corps (la fin de la période précède son début).",
        ),
        ({"scope": "plateforme", "start": "0001-01-01", "end": "2026-04-01"}, None),
        (
            {"scope": "plateforme", "start": "2020-01-01", "end": "2026-04-01"},
            "Période trop longue : trois ans au plus par extraction.",
        ),
        ({"scope": "ma structure", **PERIOD}, None),
        ({"scope": "plateforme", **PERIOD, "extra": 1}, None),
    ):
        status, err = await api.call("POST", "/api/v1/extractions", as_user=ADMIN, json=wrong)
        assert status == 400 and err["errcode"].startswith("M_"), (wrong, err)
        if said is not None:
            assert err["error"] == said
    status, err = await api.call(
        "POST", "/api/v1/extractions", as_user=ADMIN, json={"scope": "999999999", **PERIOD}
    )
    assert (status, err["error"]) == (404, "Structure inconnue (numéro FINESS).")

    body = await api.ok(
        "POST", "/api/v1/extractions", 202, as_user=ADMIN, json={"scope": FINESS, **PERIOD}
    )
    assert body["scope"] == FINESS and body["scope_label"] == "la structure SSIAD Garonne"
    ready = await wait_ready(api, body["id"])
    assert "pour la structure SSIAD Garonne" in ready["title"]
    status, err = await api.call("GET", "/api/v1/extractions/" + "x" * 200, as_user=ADMIN)
    assert status == 404


async def test_activity_is_idempotent_and_keeps_the_largest_count(api: Api) -> None:
    pid = await api.new_patient()
    async with api.app[appkeys.DATABASE].transaction() as session:
        await session.execute(
            text("UPDATE patients SET room_id = :r WHERE id = :p"), {"r": ROOM, "p": pid}
        )

    async def record(**payload: Any) -> tuple[int, Any]:
        return await api.call(
            "POST",
            "/api/v1/activity",
            service=True,
            json={"room_id": ROOM, "at_ms": 1772442000000, **payload},
        )

    day = {"kind": "messages", "ref": f"{ROOM}|2026-03-02", "day": "2026-03-02"}
    for count in (3, 7, 5, 7):  # a late replay of 5 never lowers the total
        assert (await record(**day, count=count))[0] == 200
    flag = {"kind": "signalement", "ref": "f1", "flag_kind": "urgent"}
    assert (await record(**flag))[0] == 200
    assert (await record(**flag, at_ms=1772442999000))[0] == 200  # a replay: kept once
    assert (await record(kind="prise_en_compte", ref="f1|vu", of_ref="f1"))[0] == 200
    assert (await record(kind="export", ref="$e"))[0] == 200

    # the same day's totals sent at once (a replaying bot): no conflict error, the largest stands
    other = {"kind": "messages", "ref": f"{ROOM}|2026-03-03", "day": "2026-03-03"}
    sent = await asyncio.gather(*(record(**other, count=n) for n in (4, 9, 2, 9, 6, 1, 8)))
    assert [status for status, _ in sent] == [200] * 7
    db = api.app[appkeys.DATABASE]
    async with db.sessions() as session:
        assert (
            await session.execute(
                text("SELECT count FROM activity_events WHERE ref = :r"), {"r": other["ref"]}
            )
        ).scalar() == 9
        await session.execute(
            text("DELETE FROM activity_events WHERE ref = :r"), {"r": other["ref"]}
        )
        await session.commit()
    async with db.sessions() as session:
        rows = (
            await session.execute(
                text("SELECT kind, count, day, patient_id FROM activity_events ORDER BY kind")
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        ("export", 1, "2026-03-02", pid),
        ("messages", 7, "2026-03-02", pid),
        ("prise_en_compte", 1, "2026-03-02", pid),
        ("signalement", 1, "2026-03-02", pid),
    ]
    async with db.sessions() as session:
        at = (
            await session.execute(text("SELECT at FROM activity_events WHERE kind = 'signalement'"))
        ).scalar()
    assert "1772442999" not in str(at)  # the first moment stands

    status, err = await api.call(
        "POST",
        "/api/v1/activity",
        service=True,
        json={**day, "room_id": "!inconnue:cercle.test", "at_ms": 1772442000000, "count": 2},
    )
    assert (status, err["errcode"], err["error"]) == (
        404,
        "M_NOT_FOUND",
        "Aucun dossier pour ce salon.",
    )
    status, _ = await api.call(
        "POST",
        "/api/v1/activity",
        as_user=ADMIN,
        json={**day, "room_id": ROOM, "at_ms": 1, "count": 2},
    )
    assert status == 403  # the bot's token only
    for wrong in (
        {"kind": "messages", "ref": "r", "count": 2},  # no day
        {"kind": "messages", "ref": "r", "day": "9999-01-01", "count": 2},
        {"kind": "prise_en_compte", "ref": "r"},  # no of_ref
        {"kind": "lu", "ref": "r"},
        {"kind": "export", "ref": "r", "at_ms": -1},
        {"kind": "export", "ref": "r\x00"},
    ):
        status, err = await record(**wrong)
        assert status == 400, (wrong, err)


def _h(user: str) -> dict[str, str]:
    from tests.dossier_service.conftest import session_headers

    return session_headers(user)
