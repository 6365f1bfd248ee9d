"""A real dossier service (the real app, a fresh migrated SQLite file) on a free port, which
a test can stop and start again."""

from __future__ import annotations

import asyncio
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from dossier_service.app import create_app
from dossier_service.config import DossierConfig

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


def dossier_config(
    tmp_path: Path,
    template: Path,
    *,
    homeserver_url: str = "http://127.0.0.1:9",
    server_name: str = "cercle.test",
    service_token: str = SERVICE_TOKEN,
) -> DossierConfig:
    tmp_path.mkdir(parents=True, exist_ok=True)
    db = tmp_path / "dossier.db"
    shutil.copyfile(template, db)
    port = free_port()
    return DossierConfig(
        database_url=f"sqlite+aiosqlite:///{db}",
        documents_dir=tmp_path / "documents",
        homeserver_url=homeserver_url,
        server_name=server_name,
        session_key="sync-test-session-key",
        service_token=service_token,
        port=port,
        public_url=f"http://127.0.0.1:{port}",
    )
