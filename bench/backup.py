#!/usr/bin/env python3
"""Benchmark of `cercle backup` / `cercle restore`: time and size, then an incremental
backup after 1 % of change, side by side in one run.

    .venv/bin/python bench/backup.py [--rooms 50] [--messages 3000] [--media-mb 300]
                                     [--documents-mb 100] [--workdir DIR]
    .venv/bin/python bench/backup.py --full   # the issue's 1,000 rooms / 100,000 messages / 2 GB

A real Synapse (the deployment's rendering, tests/support.py) gets ``--rooms`` rooms and
``--messages`` encrypted-shaped messages (300 bytes of ciphertext, a short message) through
the client API. Media (1 MiB random files) are written straight into Synapse's media store and
documents into the dossier's content-addressed store: the backup reads files, so their
origin does not change its cost. Then: a full backup while Synapse runs, a verify + restore
into an empty var directory, 1 % more messages and media, an incremental backup. Printed:
times, sizes, the ratio incremental / full (target ≤ 10 %), the machine's load.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import aiohttp  # noqa: E402
from support import start_synapse  # noqa: E402

from backup.crypto import generate_key_pair, load_private_key  # noqa: E402
from backup.layout import PUBLIC_KEY_FILE  # noqa: E402
from backup.restore import restore_archive  # noqa: E402
from backup.snapshot import make_backup  # noqa: E402
from deployment.profile import load_profile  # noqa: E402

MIB = 1 << 20


def tree_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


async def fill_rooms(base: str, token: str, rooms: list[str] | int, messages: int) -> list[str]:
    """Create rooms (an int) or reuse them (a list), then send ``messages`` spread over them."""
    headers = {"Authorization": f"Bearer {token}"}
    # what an encrypted message weighs (the rooms are encrypted: plain text is refused)
    content = {
        "algorithm": "m.megolm.v1.aes-sha2",
        "ciphertext": base64.b64encode(os.urandom(300)).decode(),
        "sender_key": base64.b64encode(os.urandom(32)).decode(),
        "session_id": base64.b64encode(os.urandom(32)).decode(),
        "device_id": "BENCH",
    }
    async with aiohttp.ClientSession(headers=headers) as http:
        async with http.get(f"{base}/_matrix/client/v3/account/whoami") as resp:
            me = (await resp.json())["user_id"]
        async with http.post(  # the default 10 messages/s would make this a 1,000 s wait
            f"{base}/_synapse/admin/v1/users/{me}/override_ratelimit",
            json={"messages_per_second": 0, "burst_count": 0},
        ) as resp:
            assert resp.status == 200, await resp.text()
        if isinstance(rooms, int):
            created = []
            for i in range(rooms):
                async with http.post(
                    f"{base}/_matrix/client/v3/createRoom", json={"name": f"Suivi {i}"}
                ) as resp:
                    created.append((await resp.json())["room_id"])
            rooms = created
        queue: asyncio.Queue[int] = asyncio.Queue()
        for n in range(messages):
            queue.put_nowait(n)

        async def sender() -> None:
            while not queue.empty():
                n = queue.get_nowait()
                room = rooms[n % len(rooms)]
                url = f"{base}/_matrix/client/v3/rooms/{room}/send/m.room.encrypted/b{time.time_ns()}{n}"
                async with http.put(url, json=content) as resp:
                    assert resp.status == 200, await resp.text()

        await asyncio.gather(*(sender() for _ in range(8)))
    return rooms


def write_media(var: Path, count: int, start: int = 0) -> None:
    for i in range(start, start + count):
        media_id = hashlib.sha1(str(i).encode()).hexdigest()[:24]
        path = var / "synapse" / "media_store" / "local_content" / media_id[:2] / media_id[2:4]
        path.mkdir(parents=True, exist_ok=True)
        (path / media_id[4:]).write_bytes(os.urandom(MIB))


def write_documents(var: Path, count: int) -> None:
    for _ in range(count):
        data = b"%PDF-1.4\n" + os.urandom(MIB)
        digest = hashlib.sha256(data).hexdigest()
        path = var / "dossier" / "documents" / digest[:2]
        path.mkdir(parents=True, exist_ok=True)
        (path / digest).write_bytes(data)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rooms", type=int, default=50)
    parser.add_argument("--messages", type=int, default=3_000)
    parser.add_argument("--media-mb", type=int, default=300)
    parser.add_argument("--documents-mb", type=int, default=100)
    parser.add_argument("--full", action="store_true", help="1,000 rooms, 100,000 messages, 2 GB")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    if args.full:
        args.rooms, args.messages, args.media_mb, args.documents_mb = 1000, 100_000, 1536, 512
    work = args.workdir or Path(tempfile.mkdtemp(prefix="cercle-bench-backup-"))
    var, backups = work / "var", work / "backups"
    print(
        f"Jeu : {args.rooms} salons, {args.messages} messages, {args.media_mb} Mo de médias, "
        f"{args.documents_mb} Mo de documents ; charge au départ {os.getloadavg()[0]:.1f}"
    )
    synapse = start_synapse(var)
    try:
        t = time.monotonic()
        rooms = asyncio.run(
            fill_rooms(synapse.base_url, synapse.admin_token, args.rooms, args.messages)
        )
        write_media(var, args.media_mb)
        write_documents(var, args.documents_mb)
        print(f"Génération : {time.monotonic() - t:.0f} s")
        private, public = generate_key_pair()
        (var / "secrets" / PUBLIC_KEY_FILE).write_text(public)
        key_file = work / "backup.key"
        key_file.write_text(private)
        profile = synapse.profile
        db_mb = (var / "synapse" / "homeserver.db").stat().st_size / 1e6

        full = make_backup(profile, backups, lambda _: None)
        size = tree_size(backups) / 1e6
        print(
            f"Sauvegarde complète (Synapse en marche) : {full.seconds:.1f} s ; "
            f"archive + contenus {size:.0f} Mo (base Synapse {db_mb:.0f} Mo)"
        )
        clone = load_profile(env={}, extra={"var_dir": str(work / "clone" / "var")})
        t = time.monotonic()
        restore_archive(clone, full.archive, load_private_key(key_file), lambda _: None)
        restore_s = time.monotonic() - t
        print(f"Restauration (vérification comprise) : {restore_s:.1f} s")
        shutil.rmtree(work / "clone")

        # 1 % of change: messages and media
        t = time.monotonic()
        asyncio.run(
            fill_rooms(synapse.base_url, synapse.admin_token, rooms, max(1, args.messages // 100))
        )
        write_media(var, max(1, args.media_mb // 100), start=args.media_mb)
        print(f"Changement de 1 % : {time.monotonic() - t:.0f} s")
        incremental = make_backup(profile, backups, lambda _: None)
        added = (tree_size(backups) / 1e6) - size
        ratio = incremental.seconds / full.seconds
        print(
            f"Sauvegarde incrémentale : {incremental.seconds:.1f} s ({ratio:.1%} du temps "
            f"complet ; objectif ≤ 10 %), {added:.0f} Mo ajoutés, "
            f"{incremental.manifest['totals']['new_blobs']} contenus nouveaux"
        )
        print(f"Charge à la fin : {os.getloadavg()[0]:.1f} (2 cœurs partagés)")
    finally:
        synapse.stop()
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
