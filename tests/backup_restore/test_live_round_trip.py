"""A running Cercle backed up under load, restored on a fresh clone: nothing lost.

Deployment A runs (`cercle up`): a professional talks with the bot in an encrypted room,
uploads a photo, the dossier gets a file, documents and notebook entries, the directory is
imported. `cercle backup` runs while messages and dossier writes keep coming. Deployment B
(another var directory, other ports) is restored from the archive and started: the
professional logs in, every message acknowledged before the backup is there, the bot answers
on the same device with the same cross-signed keys and decrypts the old events, documents
match their hashes, audit rows and the directory are all there.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sqlite3
import subprocess
import urllib.parse
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from nio import AsyncClient, AsyncClientConfig, LoginResponse, MegolmEvent, UploadResponse
from support import free_port

from backup.crypto import load_private_key
from backup.restore import read_archive
from bots.config import BotConfig
from bots.matrix.session import open_session
from deployment.profile import load_profile
from deployment.secrets import Secrets
from homeserver.accounts import ADMIN_TOKEN_FILE
from homeserver.process import SynapseProcess
from homeserver.render import render
from tests.bots.conftest import Pro, dm_with_bot
from tests.cercle.test_run import cercle
from tests.dossier_service.directory.conftest import SAMPLE

pytestmark = pytest.mark.integration

PASSWORD = "correct-horse-battery-staple-42"


def deployment_env(root: Path, backups: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CERCLE")}
    env.update(
        {
            "CERCLE__VAR_DIR": str(root / "var"),
            "CERCLE__HOMESERVER__PORT": str(free_port()),
            "CERCLE__DOSSIER__PORT": str(free_port()),
            "CERCLE__BACKUP__DIRECTORY": str(backups),
            # test users do not accept the Documents juridiques (as in tests/support.py)
            "CERCLE__HOMESERVER__LEGAL__ENABLED": "false",
            "CERCLE__HOMESERVER__RATE_LIMITS__MESSAGE_PER_SECOND": "1000",
            "CERCLE__HOMESERVER__RATE_LIMITS__MESSAGE_BURST": "10000",
            "CERCLE__HOMESERVER__RATE_LIMITS__LOGIN_PER_SECOND": "100",
            "CERCLE__HOMESERVER__RATE_LIMITS__LOGIN_BURST": "100",
        }
    )
    return env


def urls(env: dict[str, str]) -> tuple[str, str]:
    return (
        f"http://127.0.0.1:{env['CERCLE__HOMESERVER__PORT']}",
        f"http://127.0.0.1:{env['CERCLE__DOSSIER__PORT']}",
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


class Http:
    def __init__(self, session: aiohttp.ClientSession, base: str, token: str) -> None:
        self.session, self.base, self.token = session, base, token

    async def call(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        async with self.session.request(
            method, self.base + path, headers=headers, **kwargs
        ) as resp:
            body = await resp.read()
            assert resp.status < 300, (resp.status, body[:500])
            ctype = resp.headers.get("Content-Type", "")
            return json.loads(body) if "json" in ctype else body


async def login(base_url: str, user_id: str, store: Path) -> AsyncClient:
    store.mkdir(parents=True, exist_ok=True)
    client = AsyncClient(
        base_url,
        user_id,
        store_path=str(store),
        config=AsyncClientConfig(encryption_enabled=True, store_sync_tokens=True),
    )
    resp = await client.login(PASSWORD)
    assert isinstance(resp, LoginResponse), resp
    await client.keys_upload()
    await client.sync(timeout=0, full_state=True)
    return client


async def room_event_ids(admin: Http, room_id: str) -> set[str]:
    path = f"/_synapse/admin/v1/rooms/{urllib.parse.quote(room_id)}/messages"
    out = await admin.call("GET", path, params={"limit": "1000", "dir": "b"})
    return {ev["event_id"] for ev in out["chunk"]}


async def bot_keys(admin: Http, bot_user_id: str) -> dict[str, Any]:
    out = await admin.call(
        "POST", "/_matrix/client/v3/keys/query", json={"device_keys": {bot_user_id: []}}
    )
    return {
        "devices": out["device_keys"][bot_user_id],
        "self_signing": out["self_signing_keys"][bot_user_id],
        "master": out["master_keys"][bot_user_id],
    }


def audit_ids(var: Path) -> set[str]:
    with sqlite3.connect(var / "dossier" / "dossier.db") as db:
        rows = db.execute("SELECT seq, at, actor, action, resource FROM audit_log")
        return {"|".join(map(str, r)) for r in rows}


async def bot_decrypts_old_events(env: dict[str, str], room: str, acked: set[str]) -> None:
    """The restored crypto store, opened as the bot opens it: same device, no new login,
    and every old message of the room decrypts."""
    profile = load_profile(env=env)
    secrets = Secrets.load_or_create(profile.var_dir)
    synapse = SynapseProcess(render(profile, secrets))
    synapse.start()
    client = await open_session(
        BotConfig.from_profile(profile),
        password=secrets.bot_password,
        pickle_key=secrets.bot_pickle_key,
    )
    try:
        assert client.device_id == "CERCLEBOT"
        await client.sync(timeout=0, full_state=True)
        resp = await client.room_messages(room, start="", limit=1000)
        events = {ev.event_id: ev for ev in resp.chunk}
        assert acked <= set(events)
        for event_id in acked:
            event = events[event_id]
            if isinstance(event, MegolmEvent):
                event = client.decrypt_event(event)
            assert not isinstance(event, MegolmEvent), event_id
            assert event.body.startswith("transmission")
    finally:
        await client.close()
        synapse.stop()


async def retention_archives_then_purges(
    env: dict[str, str], alice: Pro, dossier: Http, admin: Http, bot_id: str, key: Path
) -> None:
    """A closed file past its period (0 years here): its conversation, file and documents
    are archived (encrypted, verifiable), then its room is purged by Synapse; the open
    file's room is untouched."""
    room = await alice.create_room(invite=[bot_id], name="Suivi clos")
    await alice.wait_member(room, bot_id, timeout=120)
    said = [await alice.say(room, f"passage {i}") for i in range(3)]
    assert said
    patient = await dossier.call(
        "POST",
        "/api/v1/patients",
        json={"label": "Suivi clos", "room_id": room, "coordinator": alice.user_id},
    )
    pid = patient["id"]
    form = aiohttp.FormData()
    form.add_field(
        "file", b"%PDF-1.4 dernier compte rendu", filename="cr.pdf", content_type="application/pdf"
    )
    form.add_field("category", "compte rendu")
    await dossier.call("POST", f"/api/v1/patients/{pid}/documents", data=form)
    await dossier.call("POST", f"/api/v1/patients/{pid}/status", json={"status": "clos"})

    legal = dict(env, CERCLE__RETENTION__YEARS_AFTER_CLOSURE="20")
    listed = ok(await asyncio.to_thread(cercle, legal, "retention"))
    assert pid not in listed and "Aucun dossier clos" in listed
    now = dict(env, CERCLE__RETENTION__YEARS_AFTER_CLOSURE="0")
    listed = ok(await asyncio.to_thread(cercle, now, "retention"))
    assert f"À archiver puis purger : {pid}" in listed
    assert await admin.call("GET", f"/_synapse/admin/v1/rooms/{room}")  # nothing done yet

    applied = await asyncio.to_thread(cercle, now, "retention", "--apply")
    out = ok(applied)
    assert f"Archivé : {pid}" in out and "salon purgé" in out, (out, applied.stderr)
    archive = Path(out.split(" → ")[1].split(" ; ")[0])
    contents = read_archive(archive, load_private_key(key), lambda _: None)
    members = {e["path"] for e in contents.manifest["stores"][0]["entries"]}
    assert {"conversation.pdf", "dossier.json", "cahier.json"} <= members
    assert any(m.startswith("documents/") for m in members)
    async with aiohttp.ClientSession() as http:
        probe = await http.get(
            f"{admin.base}/_synapse/admin/v1/rooms/{room}",
            headers={"Authorization": f"Bearer {admin.token}"},
        )
        assert probe.status == 404  # purged by Synapse
    listed = await dossier.call("GET", f"/api/v1/patients/{pid}/documents")
    assert listed["items"] == []  # and the documents left the dossier
    again = ok(await asyncio.to_thread(cercle, now, "retention", "--apply"))
    assert f"Déjà archivé : {pid}" in again  # not archived twice, nothing else purged


async def test_backup_under_load_restores_everything_on_a_fresh_clone(tmp_path: Path) -> None:
    backups = tmp_path / "backups"
    key = tmp_path / "hors-serveur" / "cercle-backup.key"
    env_a = deployment_env(tmp_path / "a", backups)
    env_b = deployment_env(tmp_path / "b", backups)
    hs_a, dossier_a = urls(env_a)
    hs_b, dossier_b = urls(env_b)
    var_a, var_b = tmp_path / "a" / "var", tmp_path / "b" / "var"
    try:
        ok(cercle(env_a, "up", "--detach"))
        ok(cercle(env_a, "backup", "--init-key", str(key)))
        ok(cercle(env_a, "admin", "user", "create", "alice", "--password", PASSWORD))
        status = json.loads(ok(cercle(env_a, "status", "--json")))
        bot_id, alice_id = status["bot_user_id"], f"@alice:{status['server_name']}"
        secrets_a = var_a / "secrets"
        service_token = (secrets_a / "dossier_service_token").read_text().strip()
        admin_token_a = (secrets_a / ADMIN_TOKEN_FILE).read_text().strip()
        ok(cercle(env_a, "annuaire", "importer", str(SAMPLE), "--json"))
        sample_name = SAMPLE.read_text(encoding="utf-8").splitlines()[1].split("|")[7]
        directory_before = ok(cercle(env_a, "annuaire", "chercher", sample_name, "--json"))

        async with aiohttp.ClientSession() as http:
            admin = Http(http, hs_a, admin_token_a)
            dossier = Http(http, dossier_a, service_token)
            alice = Pro(await login(hs_a, alice_id, tmp_path / "alice-store"))
            alice_device, alice_token = alice.client.device_id, alice.client.access_token
            room = await dm_with_bot(alice, bot_id)
            mark = alice.mark(room)
            await alice.say(room, "!aide")
            await alice.wait_notice(room, "Commandes", start=mark)
            photo = os.urandom(200_000)
            up = await alice.client.upload(
                lambda *_: photo, "image/png", "photo.png", filesize=len(photo)
            )
            assert isinstance(up[0], UploadResponse), up
            acked = {await alice.say(room, f"transmission {i}") for i in range(15)}

            patient = await dossier.call(
                "POST", "/api/v1/patients", json={"label": "Suivi M. Test", "coordinator": alice_id}
            )
            pid = patient["id"]
            documents = {}
            for i in range(3):
                data = b"%PDF-1.4\n" + os.urandom(50_000) + f"doc {i}".encode()
                form = aiohttp.FormData()
                form.add_field("file", data, filename=f"cr-{i}.pdf", content_type="application/pdf")
                form.add_field("category", "compte rendu")
                doc = await dossier.call("POST", f"/api/v1/patients/{pid}/documents", data=form)
                documents[doc["id"]] = hashlib.sha256(data).hexdigest()
            keys_before = await bot_keys(admin, bot_id)
            audit_before = audit_ids(var_a)

            # the load: messages and dossier writes all along the backup
            stop = asyncio.Event()
            during: list[str] = []

            async def load() -> None:
                i = 0
                while not stop.is_set() and i < 150:
                    during.append(await alice.say(room, f"pendant {i}"))
                    await dossier.call(
                        "POST",
                        f"/api/v1/patients/{pid}/notebook",
                        json={"kind": "note", "text": f"note {i}", "idempotency_key": f"k{i}"},
                        headers={"X-Cercle-On-Behalf-Of": alice_id},
                    )
                    i += 1

            writer = asyncio.create_task(load())
            backup = await asyncio.to_thread(cercle, env_a, "backup")
            stop.set()
            await writer
            out = ok(backup)
            assert "Sauvegarde faite" in out and during, (out, backup.stderr)
            assert "Sauvegarde : synapse-media" in backup.stderr  # progress is shown
            await alice.client.close()
        verify = ok(cercle(env_a, "backup", "--verify", str(backups), "--key", str(key)))
        assert verify.startswith("Archive valide")
        ok(cercle(env_a, "down"))

        # --- deployment B: an empty clone restored from the archive -----------------------
        refused = cercle(env_b, "restore", str(backups), "--key", str(tmp_path / "absente"))
        assert refused.returncode == 1 and "clé de sauvegarde introuvable" in refused.stderr
        assert not var_b.exists() or not any(var_b.iterdir())
        ok(cercle(env_b, "restore", str(backups), "--key", str(key)))
        for path in var_b.rglob("*"):
            assert path.stat().st_mode & 0o077 == 0, path
        ok(cercle(env_b, "up", "--detach"))
        async with aiohttp.ClientSession() as http:
            admin = Http(http, hs_b, admin_token_a)  # the admin token came back too
            dossier = Http(http, dossier_b, service_token)
            # users log in (a new device), with their old password
            fresh = await login(hs_b, alice_id, tmp_path / "alice-new-device")
            await fresh.close()
            # every message acknowledged before the backup began is there
            restored_ids = await room_event_ids(admin, room)
            assert acked <= restored_ids
            # the same bot device, with the same keys, still cross-signed
            keys_after = await bot_keys(admin, bot_id)
            assert keys_after == keys_before
            assert list(keys_after["devices"]) == ["CERCLEBOT"]
            # the bot answers on it (alice's old device and session, now talking to B)
            alice_client = AsyncClient(
                hs_b,
                alice_id,
                device_id=alice_device,
                store_path=str(tmp_path / "alice-store"),
                config=AsyncClientConfig(encryption_enabled=True, store_sync_tokens=True),
            )
            alice_client.restore_login(alice_id, alice_device, alice_token)
            alice = Pro(alice_client)
            await alice.sync_once(0)
            mark = alice.mark(room)
            await alice.say(room, "!aide")
            # (the restored bot first reads again what followed its snapshot: under load, slow)
            await alice.wait_notice(room, "Commandes", start=mark, timeout=150)
            assert not alice.undecrypted(room)
            # documents by hash, the photo byte for byte
            for doc_id, digest in documents.items():
                data = await dossier.call(
                    "GET", f"/api/v1/patients/{pid}/documents/{doc_id}/content"
                )
                assert hashlib.sha256(data).hexdigest() == digest
            media = up[0].content_uri.removeprefix("mxc://")
            got = await admin.call("GET", f"/_matrix/client/v1/media/download/{media}")
            assert got == photo
            await retention_archives_then_purges(env_b, alice, dossier, admin, bot_id, key)
            await alice_client.close()
        assert audit_before <= audit_ids(var_b)
        directory_after = ok(cercle(env_b, "annuaire", "chercher", sample_name, "--json"))
        assert json.loads(directory_after) == json.loads(directory_before)
        ok(cercle(env_b, "down"))
        await bot_decrypts_old_events(env_b, room, acked)
    finally:
        cercle(env_a, "down")
        cercle(env_b, "down")
