"""The directory's routes on a real aiohttp app, authenticated by the dossier's sessions."""

from __future__ import annotations

import email
import email.policy
import re
import secrets
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from support import eventually, password_login

from dossier_service.auth import SESSION_COOKIE, csrf_token, issue_session, read_session
from dossier_service.config import DossierConfig
from dossier_service.directory.importer import import_extract
from dossier_service.directory.mail import SmtpSettings
from dossier_service.directory.settings import DirectorySettings
from dossier_service.directory.web import setup
from tests.directory_support import connect, dossier_config

from .conftest import SAMPLE

ADMIN = "@admin:cercle.test"
PRO = "@pro:cercle.test"


def make_app(
    tmp_path: Path,
    *,
    limit: int = 5,
    homeserver_url: str = "http://127.0.0.1:9",
    gateway: tuple[Path, str] | None = None,
    server_name: str = "cercle.test",
    smtp: SmtpSettings | None = None,
) -> tuple[web.Application, DossierConfig, Path]:
    db = tmp_path / "annuaire.db"
    conn = connect(db)
    import_extract(conn, SAMPLE)
    conn.close()
    config = dossier_config(
        db,
        homeserver_url=homeserver_url,
        server_name=server_name,
        admins=frozenset({ADMIN}),
        public_url="http://dossier.test",
        account_gateway_socket=gateway[0] if gateway else None,
        account_gateway_secret=gateway[1] if gateway else "",
        directory=DirectorySettings(request_limit=limit, request_window_seconds=600, smtp=smtp),
    )
    app = web.Application()
    setup(app, config)
    return app, config, db


def bearer(config: DossierConfig, user_id: str) -> dict[str, str]:
    return {"Authorization": "Bearer " + issue_session(config.session_key, user_id, lifetime=3600)}


def browser(config: DossierConfig, user_id: str) -> dict[str, str]:
    """A person's browser: the dossier's session cookie (whose forms carry its CSRF token)."""
    token = issue_session(config.session_key, user_id, lifetime=3600)
    return {"Cookie": f"{SESSION_COOKIE}={token}"}


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


VALID = {
    "nom": "Boyer",
    "prenom": "Raphaël",
    "identifiant": "10000000008",
    "profession": "Infirmier",
    "structure": "Cabinet Boyer",
    "email": "r.boyer@example.org",
    "telephone": "06 45 74 62 82",
    "consentement": "on",
}


async def test_search_api(aiohttp_client: Any, tmp_path: Path) -> None:
    app, config, _ = make_app(tmp_path)
    client = await aiohttp_client(app)
    resp = await client.get("/api/v1/annuaire", params={"q": "beziers"})
    assert resp.status == 401
    assert (await resp.json())["errcode"] == "M_MISSING_TOKEN"
    resp = await client.get(
        "/api/v1/annuaire",
        params={"q": "kiné béziers", "par_page": "3"},
        headers=bearer(config, PRO),
    )
    assert resp.status == 200
    body = await resp.json()
    assert body["par_page"] == 3 and len(body["resultats"]) <= 3 and body["total"] > 0
    assert all(r["profession"] == "Masseur-Kinésithérapeute" for r in body["resultats"])
    assert body["requete"]["lieu"]["valeur"] == "Béziers"
    page2 = await (
        await client.get(
            "/api/v1/annuaire",
            params={"q": "toulouse", "page": "2", "par_page": "5"},
            headers=bearer(config, PRO),
        )
    ).json()
    assert page2["page"] == 2
    resp = await client.get(
        "/api/v1/annuaire", params={"q": "x" * 300}, headers=bearer(config, PRO)
    )
    assert resp.status == 400 and (await resp.json())["errcode"] == "M_INVALID_PARAM"
    resp = await client.get(
        "/api/v1/annuaire",
        params={"q": "", "profession": "infirmier", "departement": "34", "mode": "L"},
        headers=bearer(config, PRO),
    )
    assert all(r["profession"] == "Infirmier" for r in (await resp.json())["resultats"])
    page = await client.get("/annuaire", params={"q": "d'almeida"}, headers=bearer(config, PRO))
    assert page.status == 200 and "ALMEIDA" in await page.text()


async def test_request_form_validation(aiohttp_client: Any, tmp_path: Path) -> None:
    app, _, db = make_app(tmp_path)
    client = await aiohttp_client(app)
    form = await client.get("/annuaire/demande")
    assert form.status == 200
    token = csrf_of(await form.text())
    # no CSRF token: refused
    resp = await client.post("/annuaire/demande", data=VALID)
    assert resp.status == 403
    # missing fields: each named, nothing written
    resp = await client.post("/annuaire/demande", data={"csrf_token": token, "nom": "Boyer"})
    assert resp.status == 400
    text = await resp.text()
    for message in (
        "Prénom : champ obligatoire",
        "N° RPPS ou ADELI : champ obligatoire",
        "Adresse e-mail : champ obligatoire",
        "conditions d'utilisation",
    ):
        assert message in text
    # scripts in fields: refused, and what was typed comes back escaped
    evil = dict(
        VALID,
        csrf_token=token,
        nom="<script>alert(1)</script>",
        structure='"><img src=x onerror=alert(1)>',
    )
    resp = await client.post("/annuaire/demande", data=evil)
    assert resp.status == 400
    text = await resp.text()
    assert "<script>alert(1)" not in text and "<img src=x" not in text
    assert "&lt;script&gt;" in text
    assert "Structure d&#39;exercice : caractères non autorisés" in text
    bad = dict(VALID, csrf_token=token, identifiant="12AB", email="pas-un-mail")
    text = await (await client.post("/annuaire/demande", data=bad)).text()
    assert "11 chiffres" in text and "Adresse e-mail invalide" in text
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT count(*) FROM annuaire_account_request").fetchone()[0] == 0
    # a good request is queued and matched against the directory
    resp = await client.post("/annuaire/demande", data=dict(VALID, csrf_token=token))
    assert resp.status == 201
    row = conn.execute("SELECT status, match, national_id FROM annuaire_account_request").fetchone()
    assert row == ("en_attente", "trouve", "810000000008")
    audit = conn.execute("SELECT actor, action FROM annuaire_audit").fetchall()
    assert audit == [("public", "demande.creee")]


async def test_request_matching(aiohttp_client: Any, tmp_path: Path) -> None:
    app, _, db = make_app(tmp_path)
    client = await aiohttp_client(app)
    token = csrf_of(await (await client.get("/annuaire/demande")).text())
    await client.post("/annuaire/demande", data=dict(VALID, csrf_token=token, nom="Durand"))
    await client.post(
        "/annuaire/demande", data=dict(VALID, csrf_token=token, identifiant="19999999999")
    )
    conn = sqlite3.connect(db)
    rows = conn.execute(
        "SELECT match, match_detail FROM annuaire_account_request ORDER BY id"
    ).fetchall()
    assert rows[0][0] == "incoherent" and "BOYER" in rows[0][1]
    assert rows[1][0] == "introuvable"


async def test_flooding_is_limited(aiohttp_client: Any, tmp_path: Path) -> None:
    app, _, db = make_app(tmp_path, limit=3)
    client = await aiohttp_client(app)
    token = csrf_of(await (await client.get("/annuaire/demande")).text())
    statuses = []
    for n in range(6):
        resp = await client.post(
            "/annuaire/demande", data=dict(VALID, csrf_token=token, email=f"x{n}@example.org")
        )
        statuses.append(resp.status)
    assert statuses == [201, 201, 201, 429, 429, 429]
    assert int(resp.headers["Retry-After"]) > 0
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT count(*) FROM annuaire_account_request").fetchone()[0] == 3


async def test_admin_page_is_for_admins(aiohttp_client: Any, tmp_path: Path) -> None:
    app, config, db = make_app(tmp_path)
    client = await aiohttp_client(app)
    token = csrf_of(await (await client.get("/annuaire/demande")).text())
    await client.post("/annuaire/demande", data=dict(VALID, csrf_token=token))
    assert (await client.get("/annuaire/admin/demandes")).status == 401
    assert (await client.get("/annuaire/admin/demandes", headers=bearer(config, PRO))).status == 403
    resp = await client.post(
        "/annuaire/admin/demandes/1/refuser",
        data={"csrf_token": token, "motif": "x"},
        headers=bearer(config, PRO),
    )
    assert resp.status == 403
    admin = browser(config, ADMIN)
    page = await client.get("/annuaire/admin/demandes", headers=admin)
    text = await page.text()
    assert page.status == 200 and "Boyer" in text and "trouve" in text
    # the dossier's one CSRF scheme: the token bound to the admin's session
    admin_token = csrf_of(text)
    session = read_session(config.session_key, admin["Cookie"].split("=", 1)[1])
    assert session is not None and admin_token == csrf_token(config.session_key, session)
    for wrong in ({}, {"csrf_token": token}, {"csrf_token": csrf_of(text) + "x"}):
        resp = await client.post(
            "/annuaire/admin/demandes/1/refuser", data={**wrong, "motif": "x"}, headers=admin
        )
        assert resp.status == 403 and "Formulaire expiré" in await resp.text()
    resp = await client.post(
        "/annuaire/admin/demandes/1/refuser",
        data={"csrf_token": admin_token, "motif": "Hors région"},
        headers=admin,
    )
    assert "Demande 1 refusée" in await resp.text()
    conn = sqlite3.connect(db)
    assert conn.execute(
        "SELECT status, refusal_reason, decided_by FROM annuaire_account_request"
    ).fetchone() == ("refusee", "Hors région", ADMIN)
    assert conn.execute("SELECT action, actor FROM annuaire_audit ORDER BY id DESC").fetchone() == (
        "demande.refusee",
        ADMIN,
    )


@pytest.mark.integration
async def test_request_approval_activation_login(
    aiohttp_client: Any,
    tmp_path: Path,
    synapse: Any,
    user_factory: Any,
    smtp_sink: Any,
    account_gateway: tuple[Path, str],
) -> None:
    from homeserver.admin_api import AdminApi

    # approvals go through the account gateway (the dossier holds no admin token)
    app, config, db = make_app(
        tmp_path,
        homeserver_url=synapse.base_url,
        gateway=account_gateway,
        server_name=synapse.server_name,
        smtp=SmtpSettings(host="127.0.0.1", port=smtp_sink.port, sender="cercle@cercle.test"),
    )
    client = await aiohttp_client(app)
    token = csrf_of(await (await client.get("/annuaire/demande")).text())
    assert (
        await client.post("/annuaire/demande", data=dict(VALID, csrf_token=token))
    ).status == 201
    admin = browser(config, ADMIN)
    page = await client.get("/annuaire/admin/demandes", headers=admin)
    resp = await client.post(
        "/annuaire/admin/demandes/1/approuver",
        data={"csrf_token": csrf_of(await page.text())},
        headers=admin,
    )
    text = await resp.text()
    assert "approuvée" in text, text
    link = re.search(r"http://dossier\.test(/annuaire/activation/[A-Za-z0-9_\-]+)", text)
    assert link, text
    # the link also went by e-mail to the address of the request
    assert "envoyé par e-mail à r.boyer@example.org" in text
    ((sender, rcpts, data),) = smtp_sink.messages
    assert (sender, rcpts) == ("cercle@cercle.test", ["r.boyer@example.org"])
    mail = email.message_from_bytes(data, policy=email.policy.default)
    assert link.group(0) in mail.get_body().get_content()  # type: ignore[union-attr]
    conn = sqlite3.connect(db)
    mxid = conn.execute("SELECT mxid FROM annuaire_account_request").fetchone()[0]
    assert mxid.startswith("@raphael.boyer") and mxid.endswith(":" + synapse.server_name)
    assert conn.execute(
        "SELECT national_id FROM annuaire_account_link WHERE mxid=?", (mxid,)
    ).fetchone() == ("810000000008",)
    async with AdminApi(synapse.base_url, synapse.admin_token) as api:
        user = await api.get_user(mxid)
    assert user is not None
    assert user["displayname"] == "BOYER Raphael — Infirmier, Narbonne"
    assert user.get("approved") is not False
    assert {"auth_provider": "rpps", "external_id": "810000000008"} in user["external_ids"]
    # the activation page sets the password through the Admin API, once
    form = await client.get(link.group(1))
    assert form.status == 200 and mxid in await form.text()
    csrf = csrf_of(await form.text())
    short = await client.post(
        link.group(1), data={"csrf_token": csrf, "mot_de_passe": "court", "confirmation": "court"}
    )
    assert short.status == 400 and "trop court" in await short.text()
    password = secrets.token_urlsafe(16)
    done = await client.post(
        link.group(1), data={"csrf_token": csrf, "mot_de_passe": password, "confirmation": password}
    )
    assert done.status == 200 and "activé" in await done.text()
    again = await client.get(link.group(1))
    assert again.status == 404
    # first login with the new password
    status, session = await password_login(client.session, synapse.base_url, mxid, password)
    assert status == 200, session
    assert session["user_id"] == mxid
    actions = [r[0] for r in conn.execute("SELECT action FROM annuaire_audit ORDER BY id")]
    assert actions == ["demande.creee", "demande.approuvee", "demande.lien_envoye", "compte.active"]
    assert conn.execute("SELECT status FROM annuaire_account_request").fetchone() == ("activee",)
    # a second request for the same professional cannot create a second account
    token = csrf_of(await (await client.get("/annuaire/demande")).text())
    await client.post(
        "/annuaire/demande", data=dict(VALID, csrf_token=token, email="autre@example.org")
    )
    page = await client.get("/annuaire/admin/demandes", headers=admin)
    twice = await client.post(
        "/annuaire/admin/demandes/2/approuver",
        data={"csrf_token": csrf_of(await page.text())},
        headers=admin,
    )
    assert f"déjà un compte : {mxid}" in await twice.text()
    assert conn.execute("SELECT status FROM annuaire_account_request WHERE id=2").fetchone() == (
        "en_attente",
    )
    # Element's "start chat" search (Synapse's user directory) finds the professional by
    # profession and city, because they are part of the display name
    colleague = user_factory()

    async def directory_search() -> list[str]:
        async with client.session.post(
            f"{synapse.base_url}/_matrix/client/v3/user_directory/search",
            json={"search_term": "infirmier narbonne", "limit": 10},
            headers={"Authorization": f"Bearer {colleague.access_token}"},
        ) as search:
            assert search.status == 200
            return [r["user_id"] for r in (await search.json())["results"]]

    # indexed by Synapse's user directory in the background
    await eventually(
        directory_search, lambda found: mxid in found, timeout=10, what="recherche d'Element"
    )
