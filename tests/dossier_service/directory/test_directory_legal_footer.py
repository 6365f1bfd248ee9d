"""The directory's pages (the public account request form included) link the Documents
juridiques like every other page of the dossier."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web

from dossier_service.directory.web import setup
from tests.directory_support import dossier_config


async def test_request_form_links_the_documents_juridiques(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    config = dossier_config(
        tmp_path / "dossier.db", legal_url="https://matrix.cercle.test/_matrix/consent"
    )
    app = web.Application()
    setup(app, config, authenticate=lambda request: None)  # type: ignore[arg-type,return-value]
    client = await aiohttp_client(app)
    page = await client.get("/annuaire/demande")
    assert page.status == 200
    assert '<a href="https://matrix.cercle.test/_matrix/consent"' in await page.text()
