"""Issue 18 end to end through the pages: a professional without RPPS asks for an account
naming her structure, its referent (not another structure's) approves it on the structure's
page, she joins the structure and the files it is in « avec accès », she is found in the
directory marked « sans RPPS »; the referent names and removes referents and members (who
lose the files). SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from dossier_service import auth
from dossier_service.app import create_app
from dossier_service.directory.accounts import link
from dossier_service.directory.database import connect
from dossier_service.directory.importer import import_extract
from dossier_service.directory.web import setup
from dossier_service.policy import Principal
from dossier_service.schemas import CircleMemberIn, StructureMemberIn
from dossier_service.services import circle, structures
from tests.dossier_service.directory.conftest import SAMPLE
from tests.dossier_service.directory.test_social_requests import (
    FINESS,
    OTHER,
    REFERENT,
    STRANGER,
    FakeHomeserver,
    add_structure,
)
from tests.dossier_service.directory.test_social_requests import FORM as SOCIAL_FORM

from .conftest import ADMIN, Site, make_config

FORM = {**SOCIAL_FORM, "role": "educateur_specialise"}


@pytest.fixture
async def site(
    database_url: str, tmp_path: Path, aiohttp_client: Callable[..., Awaitable[TestClient]]
) -> AsyncIterator[tuple[Site, FakeHomeserver]]:
    """The pages with the directory mounted; account creation answered by a fake gateway."""
    homeserver = FakeHomeserver()
    config = make_config(tmp_path, database_url=database_url, public_url="http://dossier.test")

    @contextlib.asynccontextmanager
    async def gateway() -> AsyncIterator[FakeHomeserver]:
        yield homeserver

    conn = connect(database_url)
    try:
        import_extract(conn, SAMPLE)
        link(conn, "@helene:cercle.test", "810000001128", source="test", actor="test")
        add_structure(conn, FINESS, "SSIAD DU MARAIS")
        add_structure(conn, OTHER, "CCAS DE PARIS")
    finally:
        conn.close()
    app = create_app(config, extensions=[lambda app: setup(app, config, admin_api=gateway)])
    yield Site(client=await aiohttp_client(app), config=config), homeserver


def bearer(site: Site, user: str) -> dict[str, str]:
    return {
        "Authorization": "Bearer "
        + auth.issue_session(site.config.session_key, user, lifetime=3600)
    }


async def _seed(site: Site) -> str:
    """The referents of both structures, and a file whose circle holds FINESS « avec accès »."""
    admin = Principal(ADMIN, is_admin=True)
    async with site.db.transaction() as session:
        for finess, who in ((FINESS, REFERENT), (OTHER, STRANGER)):
            await structures.add_member(
                session,
                principal=admin,
                finess=finess,
                data=StructureMemberIn(matrix_user_id=who, display_name="Réf", role="referent"),
            )
    patient = await site.seed_patient()
    async with site.db.transaction() as session:
        await circle.add_member(
            session,
            principal=Principal(site.COORD),
            patient=patient,
            data=CircleMemberIn.model_validate(
                {
                    "kind": "structure",
                    "display_name": "x",
                    "directory_id": FINESS,
                    "role": "structure",
                    "has_access": True,
                },
                strict=False,
            ),
        )
    return patient.id


async def _reads_file(site: Site, user: str, pid: str) -> int:
    resp = await site.client.get(f"/api/v1/patients/{pid}", headers=bearer(site, user))
    return resp.status


async def test_a_request_without_rpps_from_the_form_to_the_files(
    site: tuple[Site, FakeHomeserver],
) -> None:
    web, homeserver = site
    pid = await _seed(web)
    client = web.client

    # the public form: the structure found by name, then chosen by its number
    found = await (await client.get("/annuaire/demande-sans-rpps?structure_q=marais")).text()
    assert f'href="/annuaire/demande-sans-rpps?finess={FINESS}"' in found
    page = await (await client.get(f"/annuaire/demande-sans-rpps?finess={FINESS}")).text()
    assert "Structure choisie" in page and "SSIAD DU MARAIS" in page
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token
    unknown = await client.post(
        "/annuaire/demande-sans-rpps",
        data={**FORM, "finess": "750000099", "csrf_token": token.group(1)},
    )
    assert unknown.status == 404 and "absente de l&#39;annuaire FINESS" in await unknown.text()
    assert await web_count(web, "annuaire_account_request") == 0
    sent = await client.post(
        "/annuaire/demande-sans-rpps", data={**FORM, "csrf_token": token.group(1)}
    )
    assert sent.status == 201, await sent.text()
    twice = await client.post(
        "/annuaire/demande-sans-rpps", data={**FORM, "csrf_token": token.group(1)}
    )
    assert twice.status == 409 and "déjà en attente" in await twice.text()

    # another structure's referent: refused on the page, in JSON, and nothing happens
    stranger = web.person(STRANGER)
    status, text, _ = await web.get(stranger, f"/structures/{FINESS}")
    assert status == 403 and "référents de la structure" in text
    resp = await client.post("/api/v1/annuaire/demandes/1/approuver", headers=bearer(web, STRANGER))
    assert resp.status == 403 and (await resp.json())["errcode"] == "M_FORBIDDEN"
    resp = await client.get(
        f"/api/v1/annuaire/demandes?finess={FINESS}", headers=bearer(web, STRANGER)
    )
    assert resp.status == 403
    status, _, _ = await web.post(stranger, f"/structures/{OTHER}/demandes/1/approuver", {})
    assert status == 404  # not a request of her structure
    assert homeserver.users == {}

    # the referent sees it and approves it on her structure's page
    referent = web.person(REFERENT)
    status, text, _ = await web.get(referent, f"/structures/{FINESS}")
    assert status == 200 and "Lefèvre Inès" in text and "Éducateur·rice spécialisé·e" in text
    pending = await client.get(
        f"/api/v1/annuaire/demandes?finess={FINESS}", headers=bearer(web, REFERENT)
    )
    assert [d["id"] for d in (await pending.json())["demandes"]] == [1]
    # the JSON API from a browser's cookie session wants the CSRF header
    resp = await client.post(
        "/api/v1/annuaire/demandes/1/refuser", json={"motif": "x"}, headers=referent.headers
    )
    assert resp.status == 403 and "CSRF" in (await resp.json())["error"]
    status, _, _ = await web.post(
        referent, f"/structures/{FINESS}/demandes/1/approuver", {}, csrf=False
    )
    assert status == 403  # no CSRF token
    status, text, _ = await web.post(referent, f"/structures/{FINESS}/demandes/1/approuver", {})
    assert status == 200 and "approuvée" in text and "accès à 1 dossier(s)" in text, web.text_of(
        text
    )
    assert "http://dossier.test/annuaire/activation/" in text
    mxid = "@ines.lefevre:cercle.test"
    assert homeserver.users[mxid]["displayname"] == "LEFÈVRE Inès — Éducateur·rice spécialisé·e"
    assert await _reads_file(web, mxid, pid) == 200  # through the structure « avec accès »

    # a second request, refused by the referent through the JSON API (a program's bearer)
    second = {**FORM, "email": "autre@example.org", "nom": "Martin", "csrf_token": token.group(1)}
    assert (await client.post("/annuaire/demande-sans-rpps", data=second)).status == 201
    resp = await client.post(
        "/api/v1/annuaire/demandes/2/refuser",
        json={"motif": "Inconnue du service"},
        headers=bearer(web, REFERENT),
    )
    body = await resp.json()
    assert resp.status == 200 and body["demande"]["statut"] == "refusee", body
    assert body["demande"]["decide_par"] == REFERENT

    # found in the directory like other professionals, marked « sans RPPS », her structure
    resp = await client.get("/api/v1/annuaire?q=lefevre", headers=bearer(web, ADMIN))
    (hit,) = (await resp.json())["sans_rpps"]
    assert hit["compte_matrix"] == mxid and hit["structure"]["finess"] == FINESS
    status, text, _ = await web.get(referent, "/annuaire?q=educateur+marais")
    assert "sans RPPS" in text and "SSIAD DU MARAIS" in text and mxid in text

    # the referent names her referent, then removes her: she loses the file
    status, text, _ = await web.get(referent, f"/structures/{FINESS}")
    ids = re.findall(r"/membres/([0-9a-f\-]{36})/role", text)
    assert len(ids) == 2, web.text_of(text)  # the referent, then the newcomer
    member_id = re.match(".*", ids[1])
    assert member_id
    status, text, _ = await web.post(
        referent, f"/structures/{FINESS}/membres/{member_id.group(0)}/role", {"role": "referent"}
    )
    assert status == 200 and "désormais référent·e" in text
    status, text, _ = await web.post(
        referent, f"/structures/{FINESS}/membres/{member_id.group(0)}/retirer", {}
    )
    assert status == 200 and "ne fait plus partie" in text
    assert await _reads_file(web, mxid, pid) == 404
    ended = await client.get(
        "/api/v1/events?limit=1000", headers={"Authorization": f"Bearer {web.config.service_token}"}
    )
    assert any(
        e["type"] == "circle.ended" and e["payload"]["matrix_user_id"] == mxid
        for e in (await ended.json())["events"]
    )

    # a member added from the directory search reads the file
    status, text, _ = await web.get(referent, f"/structures/{FINESS}?q=d%27almeida")
    assert "@helene:cercle.test" in text and "Ajouter" in text
    status, text, _ = await web.post(
        referent,
        f"/structures/{FINESS}/membres",
        {"matrix_user_id": "@helene:cercle.test", "display_name": "D'ALMEIDA Hélène"},
    )
    assert status == 200 and "est membre de la structure" in text
    assert await _reads_file(web, "@helene:cercle.test", pid) == 200
    status, text, _ = await web.post(
        referent, f"/structures/{FINESS}/membres", {"matrix_user_id": "pas un id"}
    )
    assert status == 400

    # every step audited, the refusals too
    async with web.db.transaction() as session:
        from sqlalchemy import text as sql

        rows = (
            await session.execute(
                sql(
                    "SELECT resource, outcome FROM audit_log WHERE resource LIKE 'page:structures%'"
                )
            )
        ).all()
        actions = [
            r[0]
            for r in await session.execute(sql("SELECT action FROM annuaire_audit ORDER BY id"))
        ]
    assert (f"page:structures/{FINESS}", "refusé") in rows
    assert sum(1 for r in rows if r[1] == "ok") >= 6
    assert actions[:2] == ["compte.lie", "demande.creee"] and "demande.decision_refusee" in actions
    assert actions[-4:] == [
        "structure.membre_ajoute",
        "demande.approuvee",
        "demande.creee",
        "demande.refusee",
    ]


async def web_count(site: Site, table: str) -> int:
    from sqlalchemy import text

    async with site.db.transaction() as session:
        return int((await session.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())


async def test_members_left_without_their_files_get_them_back_from_the_structure_page(
    site: tuple[Site, FakeHomeserver],
) -> None:
    """An approval commits the membership, then gives the places in a second transaction;
    when that second step failed, « Vérifier les accès aux dossiers » gives them (once), for
    the structure's referents only."""
    from dossier_service.models.circle import StructureMember

    web, _ = site
    pid = await _seed(web)
    newcomer = "@sans-acces:cercle.test"
    async with web.db.transaction() as session:  # the membership without its places
        session.add(
            StructureMember(
                finess=FINESS,
                matrix_user_id=newcomer,
                display_name="SANS ACCÈS Léa",
                role="membre",
                source="demande",
                without_rpps=True,
                added_by=ADMIN,
            )
        )
    assert await _reads_file(web, newcomer, pid) == 404  # not in the circle
    stranger = web.person(STRANGER)
    status, _, _ = await web.post(stranger, f"/structures/{FINESS}/acces", {})
    assert status == 403 and await _reads_file(web, newcomer, pid) == 404
    referent = web.person(REFERENT)
    status, text, _ = await web.post(referent, f"/structures/{FINESS}/acces", {})
    assert status == 200 and "1 accès à des dossiers donné(s)" in web.text_of(text)
    assert await _reads_file(web, newcomer, pid) == 200
    status, text, _ = await web.post(referent, f"/structures/{FINESS}/acces", {})
    assert status == 200 and "déjà accès" in web.text_of(text)
