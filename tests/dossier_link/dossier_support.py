"""A real dossier service (the real app, a fresh migrated SQLite file) on a free port, which
a test can stop and start again, and what the tests write in it through the bot's client."""

from __future__ import annotations

import asyncio
import shutil
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from bots.dossier_client import DossierClient
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


async def dossier_beside(synapse: Any, folder: Path, template: Path, token: str) -> DossierServer:
    """A dossier service started for the users of ``synapse``, its files in ``folder``, taking
    the bot's service ``token``."""
    config = dossier_config(
        folder,
        template,
        homeserver_url=synapse.base_url,
        server_name=synapse.server_name,
        service_token=token,
    )
    server = DossierServer(config)
    await server.start()
    return server


# ------------------------------------------------------- what the tests write in it
COORD = "@coord:cercle.test"
NURSE = "@nurse:cercle.test"


def professional(
    user_id: str, name: str, profession: str, role: str = "intervenant"
) -> dict[str, Any]:
    """A professional of the care circle with access to the file, as the dossier takes one."""
    return {
        "kind": "professionnel",
        "display_name": name,
        "matrix_user_id": user_id,
        "profession": profession,
        "role": role,
        "has_access": True,
    }


async def new_file(client: DossierClient, room: str = "!room:cercle.test") -> str:
    """A file for `room` coordinated by COORD, with NURSE in its circle, with access."""
    created = await client.create_patient(
        room_id=room, label="Mme A.", coordinator=COORD, key="k-create"
    )
    # the bot writes on the nurse's behalf: the dossier checks her access (issue 12)
    member = {
        "kind": "professionnel",
        "display_name": "Infirmière",
        "matrix_user_id": NURSE,
        "role": "intervenant",
        "has_access": True,
    }
    await client.add_circle_member(
        str(created["id"]), member, actor=COORD, key=f"k-nurse-{created['id']}"
    )
    return str(created["id"])


async def coordination_task(
    client: DossierClient,
    pid: str,
    label: str,
    *,
    assignee: str,
    key: str,
    actor: str | None = None,
) -> dict[str, Any]:
    """A "Coordination" task without a due date for `assignee`, written on `actor`'s behalf
    (by default the assignee's own)."""
    return await client.create_task(
        pid,
        label=label,
        type="Coordination",
        assignees=[assignee],
        due_date=None,
        actor=actor or assignee,
        key=key,
    )


async def file_with_tasks(
    client: DossierClient, labels: Sequence[str]
) -> tuple[str, list[dict[str, Any]]]:
    """`new_file`, then a coordination task for NURSE per label: the file and the feed's events
    (the file, the nurse added to its circle, one per task)."""
    pid = await new_file(client)
    for label in labels:
        await coordination_task(client, pid, label, assignee=NURSE, actor=COORD, key=label)
    return pid, await client.events(0)


async def set_identity(
    client: DossierClient,
    pid: str,
    birth_name: str,
    first_name: str,
    sex: str,
    birth_date: str,
    *,
    actor: str,
    key: str,
) -> None:
    """The patient's identity on the file, written on ``actor``'s behalf."""
    identity = {
        "birth_name": birth_name,
        "birth_first_names": [first_name],
        "sex": sex,
        "birth_date": birth_date,
    }
    await client.request(
        "PATCH", f"/patients/{pid}/identity", json_body=identity, actor=actor, key=key
    )


async def last_file_event(dossier: DossierClient) -> int:
    """The ``seq`` of the dossier's latest event (0: none yet)."""
    seq = 0
    while events := await dossier.events(seq):
        seq = int(events[-1]["seq"])
    return seq
