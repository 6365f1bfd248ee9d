"""Authorisation matrix of the pages: every route of a patient's file, for an outsider, a
member without access, a member, a coordinator and an admin — the expected status, no data
of the file in refusals, and an audit row for every answer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import FormData
from sqlmodel import col, select

from dossier_service.models.audit import AuditEntry
from dossier_service.policy import Principal
from dossier_service.schemas import EpisodeIn, HospitalisationIn, MemoIn
from dossier_service.services import followup, lifeline

PDF = b"%PDF-1.4\n%%EOF\n"
ROLES = ("outsider", "noaccess", "member", "coord", "admin")


@dataclass(frozen=True)
class Case:
    method: str
    path: str
    kind: str  # "read", "write" or "manage"
    data: dict[str, Any] | None = None
    upload: bool = False


CASES = {
    "fiche": Case("GET", "/patients/{pid}", "read"),
    "formulaire": Case("GET", "/patients/{pid}/formulaires/medical", "read"),
    "document": Case("GET", "/patients/{pid}/documents/{doc}", "read"),
    "statut": Case("POST", "/patients/{pid}/statut", "write", {"status": "en veille"}),
    "identite": Case("POST", "/patients/{pid}/identite", "write", {"postcode": "31400"}),
    "deces": Case("POST", "/patients/{pid}/deces", "write", {"death_date": "2025-01-01"}),
    "memo": Case("POST", "/patients/{pid}/memos", "write", {"text": "Digicode chez la gardienne"}),
    "memo-archive": Case("POST", "/patients/{pid}/memos/{memo}/archiver", "write", {}),
    "hospitalisation": Case("POST", "/patients/{pid}/hospitalisations", "write",
                            {"structure": "CHU", "admission_at": "2026-01-02T10:00"}),
    "tache": Case("POST", "/patients/{pid}/taches", "write", {"label": "Appeler", "type": "Coordination"}),
    "parcours": Case("POST", "/patients/{pid}/parcours", "write",
                     {"theme": "Suivi / Réunion", "starts_on": "2026-01-05"}),
    "liaison": Case("POST", "/patients/{pid}/liaison", "write", {"kind": "note", "text": "Vu ce jour."}),
    "formulaire-save": Case("POST", "/patients/{pid}/formulaires/cadre_de_vie", "write",
                            {"type_logement": "maison", "_version": "0"}),
    "document-add": Case("POST", "/patients/{pid}/documents", "write", {"category": "bilan"}, upload=True),
    "cercle-add": Case("POST", "/patients/{pid}/cercle", "manage",
                       {"display_name": "Pharmacie du Centre", "kind": "structure", "role": "structure"}),
    "cercle-role": Case("POST", "/patients/{pid}/cercle/{member}/role", "manage", {"role": "medecin_traitant"}),
    "memo-edit": Case("POST", "/patients/{pid}/memos/{memo}", "write", {"text": "Nouveau texte"}),
    "cercle-acces": Case("POST", "/patients/{pid}/cercle/{member}/acces", "manage", {"has_access": "non"}),
    "hospitalisation-sortie": Case("POST", "/patients/{pid}/hospitalisations/{stay}/sortie", "write",
                                   {"discharge_at": "2026-01-09T10:00"}),
    "parcours-fin": Case("POST", "/patients/{pid}/parcours/{episode}/fin", "write", {"ends_on": "2026-01-09"}),
    "cercle-fin": Case("POST", "/patients/{pid}/cercle/{member}/fin", "manage", {}),
}  # fmt: skip

EXPECTED = {
    "read": {"outsider": 404, "noaccess": 403, "member": 200, "coord": 200, "admin": 200},
    "write": {"outsider": 404, "noaccess": 403, "member": 303, "coord": 303, "admin": 303},
    "manage": {"outsider": 404, "noaccess": 403, "member": 403, "coord": 303, "admin": 303},
}


async def prepared_file(site) -> dict[str, str]:
    patient = await site.seed_patient(birth_name="DURAND", birth_first_names=["Marie"])
    async with site.db.transaction() as session:
        coord_p = Principal(site.COORD)
        memo = await followup.add_memo(
            session, principal=coord_p, patient=patient, data=MemoIn(text="Mémo")
        )
        stay = await followup.add_hospitalisation(
            session,
            principal=coord_p,
            patient=patient,
            data=HospitalisationIn.model_validate(
                {"structure": "CHU", "admission_at": "2026-01-02T10:00:00+01:00"}, strict=False
            ),
        )
        episode = await lifeline.add_episode(
            session,
            principal=coord_p,
            patient=patient,
            themes=site.config.lifeline_themes,
            form_ids=[],
            data=EpisodeIn.model_validate(
                {"theme": "Suivi / Réunion", "starts_on": "2026-01-02"}, strict=False
            ),
        )
    coord = site.person(site.COORD)
    data = FormData()
    data.add_field("csrf_token", coord.csrf)
    data.add_field("category", "bilan")
    data.add_field("file", PDF, filename="bilan.pdf")
    resp = await site.client.post(
        f"/patients/{patient.id}/documents", data=data, headers=coord.headers, allow_redirects=False
    )
    assert resp.status == 303
    page = await (await site.client.get(f"/patients/{patient.id}", headers=coord.headers)).text()
    doc = page.split(f"/patients/{patient.id}/documents/", 1)[1].split('"', 1)[0]
    nurse = next(m for m in await site.members(patient.id) if m.matrix_user_id == site.NURSE)
    return {
        "pid": patient.id,
        "memo": memo.id,
        "doc": doc,
        "member": nurse.id,
        "stay": stay.id,
        "episode": episode.id,
    }


@pytest.mark.parametrize("name", list(CASES))
async def test_page_route_authorisation(site, name: str) -> None:
    case = CASES[name]
    users = {
        "outsider": site.OUTSIDER,
        "noaccess": site.NO_ACCESS,
        "member": site.NURSE,
        "coord": site.COORD,
        "admin": site.ADMIN,
    }
    shared: dict[str, str] | None = None
    for role in ROLES:
        expected = EXPECTED[case.kind][role]
        if expected in (403, 404):  # refusals change nothing: one file serves them all
            shared = shared or await prepared_file(site)
            ids = shared
        else:  # a fresh file for each allowed caller: every write can succeed
            ids = await prepared_file(site)
        who = site.person(users[role])
        path = case.path.format(**ids)
        if case.method == "GET":
            status, body, _ = await site.get(who, path)
        elif case.upload:
            data = FormData()
            data.add_field("csrf_token", who.csrf)
            for key, value in (case.data or {}).items():
                data.add_field(key, value)
            data.add_field("file", PDF + b"%autre\n", filename="autre.pdf")
            resp = await site.client.post(
                path, data=data, headers=who.headers, allow_redirects=False
            )
            status, body = resp.status, await resp.text()
        else:
            status, body, _ = await site.post(who, path, dict(case.data or {}))
        assert status == expected, (name, role, status, body[-300:])
        if status in (403, 404):
            assert "DURAND" not in body and ids["pid"] not in body and "Mémo" not in body
        async with site.db.transaction() as session:
            rows = (
                await session.exec(
                    select(AuditEntry)
                    .where(AuditEntry.patient_id == ids["pid"], AuditEntry.actor == users[role])
                    .order_by(col(AuditEntry.seq))
                )
            ).all()
        assert rows, (name, role, "pas de ligne d'audit")
        outcome = "refusé" if status in (403, 404) else "ok"
        assert rows[-1].outcome == outcome, (name, role)
        assert rows[-1].resource.startswith("page:")
        if role == "admin":
            assert rows[-1].actor_kind == "admin"
