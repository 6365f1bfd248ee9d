"""The directory's pages (the public account request form included) link the Documents
juridiques like every other page of the dossier."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from aiohttp import web

from dossier_service.directory.settings import DirectorySettings
from dossier_service.directory.store import connect
from dossier_service.directory.web import setup


async def test_request_form_links_the_documents_juridiques(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    connect(tmp_path / "annuaire.db").close()
    settings = DirectorySettings(
        database=tmp_path / "annuaire.db",
        server_name="cercle.test",
        homeserver_url="http://127.0.0.1:9",
        public_url="http://dossier.test",
        csrf_key=secrets.token_urlsafe(32),
        legal_url="https://matrix.cercle.test/_matrix/consent",
    )
    app = web.Application()
    setup(app, settings, authenticate=lambda request: None)
    client = await aiohttp_client(app)
    page = await client.get("/annuaire/demande")
    assert page.status == 200
    assert '<a href="https://matrix.cercle.test/_matrix/consent"' in await page.text()
