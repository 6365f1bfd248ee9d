"""Fixtures of the dossier-sync tests: a real dossier service (the real app, a fresh migrated
SQLite file) listening on a free port, which a test can stop and start again."""

from __future__ import annotations

import asyncio
import shutil
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web

from dossier_service.app import create_app
from dossier_service.config import DossierConfig
from dossier_service.migrate import upgrade

SERVICE_TOKEN = "sync-test-service-token-" + "y" * 16


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class DossierServer:
    """The dossier service in this process, on 127.0.0.1:<port>; stop() / start() keep the
    same database and port (the "dossier down" fault)."""

    config: DossierConfig
    runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return self.config.public_url

    async def start(self) -> None:
        app = create_app(self.config, with_pages=False)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", self.config.port, reuse_address=True)
        for _ in range(50):
            try:
                await site.start()
                break
            except OSError:
                await asyncio.sleep(0.1)
        else:
            raise RuntimeError("port du dossier indisponible")
        self.runner = runner

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None


@pytest.fixture(scope="session")
def dossier_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sync-dossier-template") / "template.db"
    asyncio.run(upgrade(f"sqlite+aiosqlite:///{path}"))
    return path


def dossier_config(tmp_path: Path, template: Path, *, homeserver_url: str = "http://127.0.0.1:9",
                   server_name: str = "cercle.test") -> DossierConfig:  # fmt: skip
    db = tmp_path / "dossier.db"
    shutil.copyfile(template, db)
    port = free_port()
    return DossierConfig(
        database_url=f"sqlite+aiosqlite:///{db}",
        documents_dir=tmp_path / "documents",
        homeserver_url=homeserver_url,
        server_name=server_name,
        session_key="sync-test-session-key",
        service_token=SERVICE_TOKEN,
        port=port,
        public_url=f"http://127.0.0.1:{port}",
    )


@pytest.fixture
async def dossier_server(tmp_path: Path, dossier_template: Path) -> AsyncIterator[DossierServer]:
    server = DossierServer(dossier_config(tmp_path, dossier_template))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
