"""Fixtures of the dossier-sync tests: the real dossier service on a free port."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bots.dossier_client import DossierClient
from dossier_service.migrate import upgrade
from tests.dossier_link.dossier_support import DossierServer, dossier_config


@pytest.fixture(scope="session")
def dossier_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sync-dossier-template") / "template.db"
    asyncio.run(upgrade(f"sqlite+aiosqlite:///{path}"))
    return path


@pytest.fixture
async def dossier_server(tmp_path: Path, dossier_template: Path) -> AsyncIterator[DossierServer]:
    server = DossierServer(dossier_config(tmp_path, dossier_template))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def dossier(dossier_server: DossierServer) -> AsyncIterator[DossierClient]:
    """The bot's client to that dossier service, with its service token."""
    client = DossierClient(dossier_server.url, dossier_server.config.service_token)
    try:
        yield client
    finally:
        await client.close()
