"""The directory mounted into the real dossier application (its ``extensions`` hook)."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from dossier_service.app import create_app
from dossier_service.auth import issue_session
from dossier_service.config import DossierConfig
from dossier_service.directory.importer import import_extract
from dossier_service.directory.web import setup
from dossier_service.migrate import upgrade
from tests.directory_support import connect

from .conftest import SAMPLE


async def test_routes_inside_the_dossier_app(aiohttp_client: Any, tmp_path: Path) -> None:
    # one database: the directory's tables are the dossier's (Alembic, as the service does)
    config = DossierConfig(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'dossier.db'}",
        documents_dir=tmp_path / "docs",
        homeserver_url="http://127.0.0.1:9",
        server_name="cercle.test",
        session_key=secrets.token_urlsafe(32),
        service_token=secrets.token_urlsafe(32),
        element_origin="http://element.test",
        public_url="http://dossier.test",
    )
    await upgrade(config.database_url)
    conn = connect(tmp_path / "dossier.db")
    import_extract(conn, SAMPLE)
    conn.close()

    def mount(app: Any) -> None:
        setup(app, config)

    client = await aiohttp_client(create_app(config, with_pages=False, extensions=[mount]))
    page = await client.get("/annuaire/demande")
    assert page.status == 200
    assert "frame-ancestors 'self' http://element.test" in page.headers["Content-Security-Policy"]
    # the bot's service token reads the directory
    resp = await client.get(
        "/api/v1/annuaire",
        params={"q": "d'almeida"},
        headers={"Authorization": f"Bearer {config.service_token}"},
    )
    assert resp.status == 200
    assert {r["nom"] for r in (await resp.json())["resultats"]} == {"D'ALMEIDA"}
    session = issue_session(config.session_key, "@pro:cercle.test", lifetime=600)
    resp = await client.get(
        "/api/v1/annuaire",
        params={"q": "kiné béziers"},
        headers={"Authorization": f"Bearer {session}"},
    )
    assert resp.status == 200 and (await resp.json())["total"] > 0
    assert (await client.get("/api/v1/annuaire", params={"q": "x"})).status == 401
