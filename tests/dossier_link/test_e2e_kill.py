"""The bot process killed (SIGKILL) in the middle of a sync: after a restart no command is
lost, no liaison-notebook entry is written twice, no file event is lost or shown twice.

The bot runs as ``python -m bots`` with a profile pointing at the test Synapse and at the
dossier service (in this process, real app, fresh SQLite).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
import yaml
from nio import Event, MegolmEvent
from support import eventually as poll_until

from bots.dossier_client import DossierClient
from deployment.processes import stop_child
from tests.bots.conftest import Pro, dm_with_bot, room_id_in
from tests.dossier_link.dossier_support import coordination_task, dossier_beside, last_file_event

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


eventually = partial(poll_until, timeout=60.0)


async def room_notices(pro: Pro, base_url: str, room_id: str) -> list[str]:
    """Every notice of the room, read back through /messages (a sync timeline can be
    "limited" and skip events) and decrypted with the professional's keys."""
    url = f"{base_url}/_matrix/client/v3/rooms/{quote(room_id)}/messages"
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            url,
            params={"dir": "b", "limit": "500"},
            headers={"Authorization": f"Bearer {pro.client.access_token}"},
        ) as resp,
    ):
        chunk = (await resp.json())["chunk"]
    bodies = []
    for raw in reversed(chunk):
        event = Event.parse_event(raw)
        if isinstance(event, MegolmEvent):
            event = pro.client.decrypt_event(event)
        content = event.source.get("content", {})
        if content.get("msgtype") == "m.notice":
            bodies.append(str(content.get("body")))
    return bodies


def count_notes(db: sqlite3.Connection) -> int:
    row = db.execute(
        "SELECT count(*) FROM notebook_entries WHERE text LIKE 'kill-note-%'"
    ).fetchone()
    return int(row[0])


async def bot_backlog(bot_db: Path) -> tuple[int, int]:
    """The bot process's position in the dossier's feed and its outbox items not delivered
    yet, read from its own SQLite file."""
    db = sqlite3.connect(bot_db)
    try:
        cursor = db.execute("SELECT seq FROM feed_cursor WHERE name='dossier'").fetchone()
        pending = db.execute("SELECT count(*) FROM dossier_outbox WHERE status='pending'")
        return (int(cursor[0]) if cursor else 0, int(pending.fetchone()[0]))
    finally:
        db.close()


class BotProcess:
    def __init__(self, profile_file: Path, log_file: Path) -> None:
        self.profile_file = profile_file
        self.log_file = log_file
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CERCLE")}
        env["CERCLE_CONFIG"] = str(self.profile_file)
        log = open(self.log_file, "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bots"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()

    def kill(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            stop_child(self.proc, timeout=15)
        self.proc = None


async def test_bot_sigkilled_mid_sync_loses_nothing_and_doubles_nothing(
    synapse: Any, tmp_path: Path, dossier_template: Path, nio_client_factory: Callable[..., Any]
) -> None:
    # the bot's deployment: the test Synapse's secrets and bot identity, its own var dir
    var = tmp_path / "var"
    shutil.copytree(synapse.var_dir / "secrets", var / "secrets")
    (var / "bot").mkdir(parents=True)
    shared_key = synapse.var_dir / "bot" / "cross_signing.enc"
    if shared_key.exists():
        shutil.copy(shared_key, var / "bot" / "cross_signing.enc")
    token = synapse.secrets.dossier_service_token
    server = await dossier_beside(synapse, tmp_path / "dossier", dossier_template, token)
    profile = {
        "var_dir": str(var),
        "server_name": synapse.server_name,
        "homeserver": {"port": synapse.profile.section("homeserver")["port"]},
        "bot": {"device_id": "CERCLEBOTK" + secrets.token_hex(3).upper()},
        "dossier": {"public_url": server.url},
    }
    profile_file = tmp_path / "profile.yaml"
    profile_file.write_text(yaml.safe_dump(profile), encoding="utf-8")
    bot = BotProcess(profile_file, tmp_path / "bot.log")
    dossier = DossierClient(server.url, token)
    nurse = Pro(await nio_client_factory(None))
    try:
        bot.start()
        dm = await dm_with_bot(nurse, synapse.bot_user_id)
        await nurse.say(dm, "!patient nouveau Suivi kill")
        notice = await nurse.wait_notice(dm, "Salon patient « Suivi kill » créé", timeout=60)
        room_id = room_id_in(notice.source["content"]["body"])
        await nurse.wait_member(room_id, nurse.user_id)
        found = await eventually(
            lambda: dossier.patient_by_room(room_id), bool, what="dossier créé"
        )
        pid = str(found["id"])

        notes = [f"kill-note-{n}" for n in range(40)]
        tasks = [f"kill-task-{n}" for n in range(4)]
        for n, label in enumerate(tasks):  # file events: the feed is busy with them
            await coordination_task(dossier, pid, label, assignee=nurse.user_id, key=f"kill-t{n}")

        async def send_notes() -> None:
            for text in notes:
                await nurse.say(room_id, f"!note {text}")

        sending = asyncio.create_task(send_notes())
        # kill as soon as the first notes reach the file: in the middle of the batch
        db = sqlite3.connect(server.config.database_url.split(":///", 1)[1])
        deadline = time.monotonic() + 60
        while count_notes(db) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        bot.kill()
        at_kill = count_notes(db)
        db.close()
        assert 2 <= at_kill < len(notes), f"{at_kill} notes écrites au moment du SIGKILL"
        await sending

        bot.start()
        file = await eventually(
            lambda: dossier.get_file(pid),
            lambda f: (
                sum(str(e["text"]).startswith("kill-note-") for e in f["notebook"]) >= len(notes)
            ),
            timeout=90,
            what="toutes les notes",
        )
        texts = [str(e["text"]) for e in file["notebook"]]
        assert sorted(t for t in texts if t.startswith("kill-note-")) == sorted(notes)  # once each

        def count(bodies: list[str], prefix: str) -> int:
            return sum(b.startswith(prefix) for b in bodies)

        await nurse.sync_once()  # the room keys of the bot's latest messages
        await eventually(
            lambda: room_notices(nurse, synapse.base_url, room_id),
            lambda bs: count(bs, "📋 Nouvelle tâche « kill-task-") >= len(tasks),
            what="annonces des tâches",
        )
        # the restarted bot has done everything, so anything it sent twice is in the room:
        # every file event handled (announced before its feed position moves past it), its
        # outbox empty, and the commands answered before a later one
        last = await last_file_event(dossier)
        await eventually(
            lambda: bot_backlog(var / "bot" / "dossier.sqlite3"),
            lambda backlog: backlog[0] >= last and backlog[1] == 0,
            what="fil du dossier et boîte d'envoi du bot traités",
        )
        await nurse.bot_notices_so_far(room_id, synapse.bot_user_id)
        await nurse.sync_once()
        shown = await room_notices(nurse, synapse.base_url, room_id)
        for label in tasks:
            assert sum(f"« {label} »" in b for b in shown) == 1, shown
        # one reply per command: none lost, none doubled
        assert count(shown, "🗒 Note enregistrée") == len(notes), shown
    finally:
        bot.stop()
        await dossier.close()
        await server.stop()
        own_key = var / "bot" / "cross_signing.enc"
        if not shared_key.exists() and own_key.exists():  # keep one bot identity per session
            shared_key.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(own_key, shared_key)
