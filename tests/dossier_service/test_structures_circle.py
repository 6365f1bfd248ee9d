"""Issue 18: structures in the care circle, their members and referents, through the API
(SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any

import pytest

from dossier_service import appkeys
from dossier_service.models.directory import Structure
from dossier_service.policy import Principal
from dossier_service.services import structures
from dossier_service.services.errors import Conflict
from tests.directory_support import structure_row
from tests.dossier_service.conftest import ADMIN, COORD, OUTSIDER, Api

FINESS = "750000001"
OTHER_FINESS = "750000002"
REFERENT = "@referente:cercle.test"
SOCIAL = "@assistante:cercle.test"
EDUC = "@educateur:cercle.test"


async def _structures(api: Api) -> None:
    db = api.app[appkeys.DATABASE]
    async with db.sessions() as session:
        for finess, name in ((FINESS, "SSIAD DU MARAIS"), (OTHER_FINESS, "CCAS DE PARIS")):
            session.add(
                structure_row(
                    finess, name, city="PARIS", category="Service de soins infirmiers à domicile"
                )
            )
        await session.commit()


async def _events(api: Api) -> list[dict[str, Any]]:
    body = await api.ok("GET", "/api/v1/events?limit=1000", service=True)
    return list(body["events"])


async def _add_structure(
    api: Api, pid: str, finess: str, has_access: bool, expect: int = 201
) -> Any:
    return await api.ok(
        "POST",
        f"/api/v1/patients/{pid}/circle",
        expect,
        as_user=COORD,
        json={
            "kind": "structure",
            "display_name": "x",
            "directory_id": finess,
            "role": "structure",
            "has_access": has_access,
        },
    )


async def _member(
    api: Api, user: str, role: str = "membre", by: str = ADMIN, finess: str = FINESS
) -> Any:
    return await api.created(
        f"/api/v1/structures/{finess}/members",
        {"matrix_user_id": user, "display_name": user[1:].split(":")[0].title(), "role": role},
        as_user=by,
    )


async def test_structure_with_access_brings_its_members_and_the_room_follows(api: Api) -> None:
    await _structures(api)
    await _member(api, REFERENT, "referent")
    await _member(api, SOCIAL, by=REFERENT)  # a referent manages members
    pid = await api.new_patient()
    assert (await api.call("GET", f"/api/v1/patients/{pid}", as_user=SOCIAL))[0] == 404

    row = await _add_structure(api, pid, FINESS, True)
    assert row["kind"] == "structure" and row["display_name"] == "SSIAD DU MARAIS"
    for user in (REFERENT, SOCIAL):
        status, _ = await api.call("GET", f"/api/v1/patients/{pid}", as_user=user)
        assert status == 200, user
    added = [
        e for e in await _events(api) if e["type"] == "circle.added" and e["patient_id"] == pid
    ]
    invited = {e["payload"]["matrix_user_id"] for e in added if e["payload"]["has_access"]}
    assert invited == {REFERENT, SOCIAL, None}  # None: the structure's own row (no account)

    # a member joining later joins the circle too (and is invited)
    await _member(api, EDUC, by=REFERENT)
    assert (await api.call("GET", f"/api/v1/patients/{pid}", as_user=EDUC))[0] == 200
    assert any(
        e["type"] == "circle.added" and e["payload"]["matrix_user_id"] == EDUC
        for e in await _events(api)
    )

    # a member leaving the structure loses the file, and the room is told
    members = await api.ok("GET", f"/api/v1/structures/{FINESS}/members", as_user=REFERENT)
    social = next(m for m in members["items"] if m["matrix_user_id"] == SOCIAL)
    await api.ok(
        "POST", f"/api/v1/structures/{FINESS}/members/{social['id']}/end", as_user=REFERENT
    )
    assert (await api.call("GET", f"/api/v1/patients/{pid}", as_user=SOCIAL))[0] == 404
    assert (await api.call("GET", f"/api/v1/patients/{pid}", as_user=EDUC))[0] == 200
    ended = [e for e in await _events(api) if e["type"] == "circle.ended"]
    assert [e["payload"]["matrix_user_id"] for e in ended] == [SOCIAL]

    # the structure leaves the circle: everyone it brought goes
    circle = await api.ok("GET", f"/api/v1/patients/{pid}/circle", as_user=COORD)
    structure_row = next(m for m in circle["items"] if m["kind"] == "structure")
    await api.ok("POST", f"/api/v1/patients/{pid}/circle/{structure_row['id']}/end", as_user=COORD)
    for user in (REFERENT, EDUC):
        assert (await api.call("GET", f"/api/v1/patients/{pid}", as_user=user))[0] == 404
    assert (await api.call("GET", f"/api/v1/patients/{pid}", as_user=COORD))[0] == 200


async def test_structure_without_access_is_shown_and_nobody_gains_access(api: Api) -> None:
    await _structures(api)
    await _member(api, SOCIAL)
    pid = await api.new_patient()
    before = len(await _events(api))
    await _add_structure(api, pid, FINESS, False)
    assert (await api.call("GET", f"/api/v1/patients/{pid}", as_user=SOCIAL))[0] == 404
    circle = await api.ok("GET", f"/api/v1/patients/{pid}/circle", as_user=COORD)
    shown = [m for m in circle["items"] if m["kind"] == "structure"]
    assert [(m["directory_id"], m["has_access"]) for m in shown] == [(FINESS, False)]
    new = (await _events(api))[before:]
    assert [e["payload"]["matrix_user_id"] for e in new if e["type"] == "circle.added"] == [None]
    # twice the same structure, an unknown FINESS: refused
    await _add_structure(api, pid, FINESS, True, expect=409)
    await _add_structure(api, pid, "999999999", True, expect=400)
    # granting access later brings the members in; taking it back sends them out
    structure = f"/api/v1/patients/{pid}/circle/{shown[0]['id']}"
    for access, member_sees in ((True, 200), (False, 404)):
        await api.ok("PATCH", structure, as_user=COORD, json={"has_access": access})
        assert (await api.call("GET", f"/api/v1/patients/{pid}", as_user=SOCIAL))[0] == member_sees


async def test_only_admins_and_referents_manage_members(api: Api) -> None:
    await _structures(api)
    await _member(api, REFERENT, "referent")
    member = await _member(api, SOCIAL)
    payload = {"matrix_user_id": OUTSIDER, "display_name": "Intrus", "role": "referent"}
    for who in (SOCIAL, OUTSIDER, COORD):
        status, body = await api.call(
            "POST", f"/api/v1/structures/{FINESS}/members", as_user=who, json=payload
        )
        assert status == 403 and body["errcode"] == "M_FORBIDDEN", who
    # a referent of another structure is nobody here
    await _member(api, EDUC, "referent", finess=OTHER_FINESS)
    status, _ = await api.call(
        "POST", f"/api/v1/structures/{FINESS}/members", as_user=EDUC, json=payload
    )
    assert status == 403
    status, _ = await api.call(
        "POST", f"/api/v1/structures/{FINESS}/members/{member['id']}/end", as_user=EDUC
    )
    assert status == 403
    # outsiders do not see the members; a member may leave herself
    assert (await api.call("GET", f"/api/v1/structures/{FINESS}/members", as_user=OUTSIDER))[
        0
    ] == 403
    await api.ok("POST", f"/api/v1/structures/{FINESS}/members/{member['id']}/end", as_user=SOCIAL)
    assert (await api.call("GET", "/api/v1/structures/999999999/members", as_user=ADMIN))[0] == 404
    # every call is audited
    assert await api.count("audit_log", "WHERE resource LIKE 'structures%'") >= 8


async def test_the_last_referent_cannot_leave_the_structure_without_one(api: Api) -> None:
    await _structures(api)
    only = await _member(api, REFERENT, "referent")
    end = f"/api/v1/structures/{FINESS}/members/{only['id']}/end"
    status, body = await api.call("POST", end, as_user=REFERENT)
    assert status == 409 and body["errcode"] == "CERCLE_CONFLICT", body
    assert "plus de référent" in body["error"]
    db = api.app[appkeys.DATABASE]
    with pytest.raises(Conflict, match="plus de référent"):  # made a member again: the same
        async with db.transaction() as session:
            await structures.set_role(
                session,
                principal=Principal(REFERENT),
                finess=FINESS,
                member_id=only["id"],
                role="membre",
            )
    members = await api.ok("GET", f"/api/v1/structures/{FINESS}/members", as_user=REFERENT)
    assert [m["role"] for m in members["items"]] == ["referent"]
    # with another referent she may go; an admin may remove the last one
    other = await _member(api, EDUC, "referent")
    await api.ok("POST", end, as_user=REFERENT)
    await api.ok("POST", f"/api/v1/structures/{FINESS}/members/{other['id']}/end", as_user=ADMIN)


async def _rpps_professional(api: Api, pid: int, mxid: str, finess: str, siret: str) -> None:
    from dossier_service.models.directory import AccountLink, Activity, Professional

    db = api.app[appkeys.DATABASE]
    async with db.sessions() as session:
        session.add(
            Professional(
                id=pid,
                national_id=f"8100{pid:07d}",
                id_type="8",
                civility="MME",
                last_name=f"NOM{pid}",
                first_name="Claire",
                profession_code="60",
                profession="Infirmier",
                sort_key=f"nom{pid}",
                content_hash=b"x",
                seen_run=1,
                updated_at="2026",
            )
        )
        await session.flush()
        session.add(
            Activity(
                professional_id=pid,
                profession_code="60",
                specialty_code="",
                specialty="",
                mode_code="S",
                mode="Salarié",
                structure="SSIAD",
                address="",
                postcode="75003",
                commune_code="75103",
                city="PARIS",
                dept="75",
                phone="",
                email="",
                siret=siret,
                finess=finess,
                linked=1,
            )
        )
        session.add(
            AccountLink(mxid=mxid, national_id=f"8100{pid:07d}", source="test", linked_at="2026")
        )
        await session.commit()


async def _give_siret(api: Api, finess: str, siret: str) -> None:
    """The structure ``finess`` now has this SIRET (as a FINESS import would record it)."""
    async with api.app[appkeys.DATABASE].sessions() as session:
        found = await session.get(Structure, finess)
        assert found is not None
        found.siret = siret
        session.add(found)
        await session.commit()


async def test_members_from_the_rpps_activity(api: Api) -> None:
    """A linked professional whose RPPS activity names the structure (FINESS, or its SIRET)
    becomes a member (source rpps) and, through a circle "avec accès", reads the file."""
    await _structures(api)
    await _give_siret(api, FINESS, "12345678900011")
    db = api.app[appkeys.DATABASE]
    by_finess, by_siret, elsewhere = "@ide1:cercle.test", "@ide2:cercle.test", "@ide3:cercle.test"
    await _rpps_professional(api, 1, by_finess, FINESS, "")
    await _rpps_professional(api, 2, by_siret, "", "12345678900011")
    await _rpps_professional(api, 3, elsewhere, OTHER_FINESS, "99999999900011")
    await _member(api, REFERENT, "referent")
    pid = await api.new_patient()
    await _add_structure(api, pid, FINESS, True)
    status, _ = await api.call("POST", f"/api/v1/structures/{FINESS}/members/rpps", as_user=SOCIAL)
    assert status == 403
    body = await api.ok("POST", f"/api/v1/structures/{FINESS}/members/rpps", as_user=REFERENT)
    assert {m["matrix_user_id"] for m in body["added"]} == {by_finess, by_siret}
    assert {m["source"] for m in body["added"]} == {"rpps"} and body["ended"] == []
    for user, expected in ((by_finess, 200), (by_siret, 200), (elsewhere, 404)):
        assert (await api.call("GET", f"/api/v1/patients/{pid}", as_user=user))[0] == expected
    again = await api.ok("POST", f"/api/v1/structures/{FINESS}/members/rpps", as_user=ADMIN)
    assert again == {"added": [], "ended": []}
    # the activity moves elsewhere: the membership (and the file) go
    async with db.sessions() as session:
        from sqlalchemy import text

        await session.execute(
            text("UPDATE annuaire_activity SET finess = '' WHERE professional_id = 1")
        )
        await session.commit()
    body = await api.ok("POST", f"/api/v1/structures/{FINESS}/members/rpps", as_user=REFERENT)
    assert [m["matrix_user_id"] for m in body["ended"]] == [by_finess]
    assert (await api.call("GET", f"/api/v1/patients/{pid}", as_user=by_finess))[0] == 404
    # a referent is never ended by the sync (added by hand)
    members = await api.ok("GET", f"/api/v1/structures/{FINESS}/members", as_user=REFERENT)
    assert {m["matrix_user_id"] for m in members["items"]} == {REFERENT, by_siret}


async def test_a_structure_outside_finess_is_recorded_without_access_only(api: Api) -> None:
    pid = await api.new_patient()
    body = {"kind": "structure", "display_name": "Association Aide 31", "role": "structure"}
    refused = await api.ok(
        "POST",
        f"/api/v1/patients/{pid}/circle",
        400,
        as_user=COORD,
        json={**body, "has_access": True},
    )
    assert "annuaire FINESS" in refused["error"]
    added = await api.created(
        f"/api/v1/patients/{pid}/circle", {**body, "has_access": False}, as_user=COORD
    )
    member = added.get("member", added)
    assert member["display_name"] == "Association Aide 31" and not member["has_access"]
    grant = await api.ok(
        "PATCH",
        f"/api/v1/patients/{pid}/circle/{member['id']}",
        400,
        as_user=COORD,
        json={"has_access": True},
    )
    assert "hors annuaire FINESS" in grant["error"]
