"""Issue 18: after each RPPS import the structures' members from the RPPS are refreshed
(added and removed), audited, idempotent; the care circles "avec accès" follow."""

from __future__ import annotations

from sqlalchemy import text

from dossier_service import appkeys
from dossier_service.services.structure_refresh import refresh_after_import
from tests.dossier_service.conftest import ADMIN, Api
from tests.dossier_service.test_structures_circle import (
    FINESS,
    OTHER_FINESS,
    REFERENT,
    _add_structure,
    _give_siret,
    _member,
    _rpps_professional,
    _structures,
)


async def test_refresh_after_an_import_adds_and_removes_rpps_members(api: Api) -> None:
    await _structures(api)
    await _give_siret(api, OTHER_FINESS, "12345678900011")
    db = api.app[appkeys.DATABASE]
    ide1, ide2, unlinked_place = "@ide1:cercle.test", "@ide2:cercle.test", "@ide3:cercle.test"
    await _rpps_professional(api, 1, ide1, FINESS, "")
    await _rpps_professional(api, 2, ide2, "", "12345678900011")  # OTHER_FINESS by its SIRET
    await _rpps_professional(api, 3, unlinked_place, "999999999", "")  # no such structure
    await _member(api, REFERENT, "referent")
    pid = await api.new_patient()
    await _add_structure(api, pid, FINESS, True)
    assert (await api.call("GET", f"/api/v1/patients/{pid}", as_user=ide1))[0] == 404
    audits = await api.count("audit_log", "WHERE resource LIKE 'structures/%/members/%'")

    report = await refresh_after_import(db)
    assert sorted(report.added) == [(FINESS, ide1), (OTHER_FINESS, ide2)]
    assert report.ended == []
    # through the circle "avec accès", the new member reads the file; the room is told
    assert (await api.call("GET", f"/api/v1/patients/{pid}", as_user=ide1))[0] == 200
    events = (await api.ok("GET", "/api/v1/events?limit=1000", service=True))["events"]
    assert any(
        e["type"] == "circle.added" and e["payload"]["matrix_user_id"] == ide1 for e in events
    )
    after = await api.count("audit_log", "WHERE resource LIKE 'structures/%/members/%'")
    assert after == audits + 2

    # a second run changes nothing and writes no audit row
    again = await refresh_after_import(db)
    assert (again.added, again.ended) == ([], [])
    assert await api.count("audit_log", "WHERE resource LIKE 'structures/%/members/%'") == after

    # the next extract no longer names the structure: the membership and the file go;
    # members added by hand (the referent) stay
    async with db.sessions() as session:
        await session.execute(
            text("UPDATE annuaire_activity SET finess = '' WHERE professional_id = 1")
        )
        await session.commit()
    gone = await refresh_after_import(db)
    assert (gone.added, gone.ended) == ([], [(FINESS, ide1)])
    assert (await api.call("GET", f"/api/v1/patients/{pid}", as_user=ide1))[0] == 404
    members = await api.ok("GET", f"/api/v1/structures/{FINESS}/members", as_user=ADMIN)
    assert {m["matrix_user_id"] for m in members["items"]} == {REFERENT}
    assert await api.count("audit_log", "WHERE resource LIKE 'structures/%/members/%'") == (
        after + 1
    )
