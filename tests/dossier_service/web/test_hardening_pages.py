"""Issue 12, findings 3 and 4 on the pages: a life-line episode far in the future (written
before dates were bounded) does not break the file page, and the forms refuse out-of-range
dates and control characters with a French message naming the field."""

from __future__ import annotations

from datetime import date

from dossier_service.models.lifeline import Episode


async def test_an_episode_ending_in_9999_leaves_the_file_page_readable(site) -> None:
    patient = await site.seed_patient()
    coord = site.person(site.COORD)
    status, body, _ = await site.post(coord, f"/patients/{patient.id}/parcours", {
        "theme": "Suivi / Réunion", "starts_on": "2025-01-05", "ends_on": "9999-12-31"})  # fmt: skip
    assert status == 400 and "hors limites" in body
    # a row stored before the bounds existed
    async with site.db.transaction() as session:
        session.add(Episode(patient_id=patient.id, theme="Suivi / Réunion", title="Sans fin",
                            starts_on=date(2025, 1, 5), ends_on=date(9999, 12, 31),
                            created_by=site.COORD))  # fmt: skip
    for path in (f"/patients/{patient.id}", f"/patients/{patient.id}?widget=1"):
        status, body, _ = await site.get(coord, path)
        assert status == 200, body[:300]
        assert "Sans fin" in body


async def test_forms_refuse_out_of_range_dates_and_control_characters(site) -> None:
    patient = await site.seed_patient()
    coord = site.person(site.COORD)
    status, body, _ = await site.post(coord, f"/patients/{patient.id}/hospitalisations", {
        "structure": "CHU", "admission_at": "0001-01-01T00:00"})  # fmt: skip
    assert status == 400 and "hors limites" in body
    status, body, _ = await site.post(coord, f"/patients/{patient.id}/memos",
                                      {"text": "clé\x00paillasson"})  # fmt: skip
    assert status == 400 and "contrôle" in body
