#!/usr/bin/env python3
"""Benchmark of `cercle backup` / `cercle restore`: time and size, then an incremental
backup after 1 % of change, side by side in one run.

    .venv/bin/python bench/backup.py [--rooms 50] [--messages 3000] [--media-mb 300]
                                     [--documents-mb 100] [--workdir DIR]
    .venv/bin/python bench/backup.py --full   # the issue's 1,000 rooms / 100,000 messages / 2 GB

A real Synapse (the deployment's rendering, tests/support.py) gets ``--rooms`` encrypted
rooms and ``--messages`` real ``m.room.encrypted`` events (megolm, one outbound session per
room and sender, as a client has) through the client API, from ``--senders`` accounts whose
rate limit is lifted (admin ``override_ratelimit``), ``--workers`` requests in flight. Media (1 MiB random files) are written straight into Synapse's media store and
documents into the dossier's content-addressed store: the backup reads files, so their
origin does not change its cost. Then: a full backup while Synapse runs, a verify + restore
into an empty var directory, 1 % more messages and media, an incremental backup. Printed:
times, sizes, the ratio incremental / full (target ≤ 10 %), the machine's load.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import vodozemac  # noqa: E402

from backup.crypto import generate_key_pair, load_private_key  # noqa: E402
from backup.layout import PUBLIC_KEY_FILE  # noqa: E402
from backup.restore import restore_archive  # noqa: E402
from backup.snapshot import make_backup  # noqa: E402
from deployment.profile import load_profile  # noqa: E402
from tests.support import SynapseUnderTest, start_synapse  # noqa: E402

MIB = 1 << 20


def tree_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


@dataclass
class Sender:
    """A professional's account and device: its own connection, its own megolm sessions."""

    user_id: str
    token: str
    device_id: str
    curve25519: str  # the device's identity key, as real m.room.encrypted events carry
    sessions: dict[str, vodozemac.GroupSession] = field(default_factory=dict)

    def encrypt(self, room_id: str, body: str) -> dict[str, str]:
        """A real megolm event: one outbound session per room and sender, as a client has."""
        session = self.sessions.setdefault(room_id, vodozemac.GroupSession())
        payload = {"type": "m.room.message", "room_id": room_id,
                   "content": {"msgtype": "m.text", "body": body}}  # fmt: skip
        return {
            "algorithm": "m.megolm.v1.aes-sha2",
            "ciphertext": session.encrypt(json.dumps(payload).encode()).to_base64(),
            "sender_key": self.curve25519,
            "session_id": session.session_id,
            "device_id": self.device_id,
        }


def make_senders(synapse: SynapseUnderTest, count: int) -> list[Sender]:
    """``count`` accounts, their message rate limit lifted (``override_ratelimit``, in
    ``support.register``): the bench measures the backup, not Synapse's anti-flood."""
    senders = []
    for i in range(count):
        login = synapse.register(f"bench{i}-{os.urandom(3).hex()}", os.urandom(12).hex())
        key = vodozemac.Account().curve25519_key.to_base64()
        senders.append(Sender(login["user_id"], login["access_token"], login["device_id"], key))
    return senders


class Progress:
    def __init__(self, what: str, total: int) -> None:
        self.what, self.total, self.done = what, total, 0
        self.start = self.last = time.monotonic()

    def tick(self) -> None:
        self.done += 1
        now = time.monotonic()
        if now - self.last >= 15 or self.done == self.total:
            self.last = now
            rate = self.done / max(now - self.start, 1e-9)
            left = (self.total - self.done) / rate if rate else 0
            print(f"  {self.what} : {self.done}/{self.total} ({rate:.0f}/s, reste ~{left:.0f} s, "
                  f"charge {os.getloadavg()[0]:.1f})", flush=True)  # fmt: skip

    @property
    def rate(self) -> float:
        return self.done / max(time.monotonic() - self.start, 1e-9)


async def fill_rooms(
    base: str, senders: list[Sender], rooms: list[tuple[int, str]] | int, messages: int,
    workers: int,
) -> tuple[list[tuple[int, str]], float]:  # fmt: skip
    """Create encrypted rooms (an int) or reuse them, then send ``messages`` real megolm
    events spread over them, ``workers`` requests at a time over one connection pool per
    sender. Rooms are (sender index, room id). Returns the rooms and messages per second."""
    sessions = [
        aiohttp.ClientSession(
            headers={"Authorization": f"Bearer {s.token}"},
            connector=aiohttp.TCPConnector(limit=max(2, workers // len(senders) + 1)),
        )
        for s in senders
    ]
    try:
        if isinstance(rooms, int):
            wanted, made = rooms, Progress("salons chiffrés créés", rooms)
            created: list[tuple[int, str]] = []
            indexes: asyncio.Queue[int] = asyncio.Queue()
            for i in range(wanted):
                indexes.put_nowait(i)

            async def creator() -> None:
                while not indexes.empty():
                    i = indexes.get_nowait()
                    owner = i % len(senders)
                    body = {"name": f"Suivi {i}", "preset": "private_chat", "initial_state": [
                        {"type": "m.room.encryption", "state_key": "",
                         "content": {"algorithm": "m.megolm.v1.aes-sha2"}}]}  # fmt: skip
                    url = f"{base}/_matrix/client/v3/createRoom"
                    async with sessions[owner].post(url, json=body) as resp:
                        assert resp.status == 200, await resp.text()
                        created.append((owner, (await resp.json())["room_id"]))
                    made.tick()

            await asyncio.gather(*(creator() for _ in range(min(workers, 8))))
            rooms = created
        progress = Progress("messages chiffrés envoyés", messages)
        queue: asyncio.Queue[int] = asyncio.Queue()
        for n in range(messages):
            queue.put_nowait(n)
        run = os.urandom(4).hex()

        async def sender() -> None:
            while not queue.empty():
                n = queue.get_nowait()
                owner, room = rooms[n % len(rooms)]
                content = senders[owner].encrypt(room, f"Transmission {n} : constantes stables")
                url = f"{base}/_matrix/client/v3/rooms/{room}/send/m.room.encrypted/b{run}-{n}"
                async with sessions[owner].put(url, json=content) as resp:
                    assert resp.status == 200, await resp.text()
                progress.tick()

        await asyncio.gather(*(sender() for _ in range(workers)))
        return rooms, progress.rate
    finally:
        for http in sessions:
            await http.close()


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
    parser.add_argument("--senders", type=int, default=4, help="accounts sending, one pool each")
    parser.add_argument("--workers", type=int, default=24, help="requests in flight")
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
        senders = make_senders(synapse, args.senders)
        rooms, rate = asyncio.run(
            fill_rooms(synapse.base_url, senders, args.rooms, args.messages, args.workers)
        )
        write_media(var, args.media_mb)
        write_documents(var, args.documents_mb)
        print(
            f"Génération : {time.monotonic() - t:.0f} s ({rate:.0f} messages/s ; "
            f"100 000 messages prendraient ~{100_000 / rate / 60:.0f} min à ce débit)"
        )
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
            fill_rooms(synapse.base_url, senders, rooms, max(1, args.messages // 100), args.workers)
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
        # what the size would cost at the rates measured here (linear in bytes read)
        live_mb = db_mb + args.media_mb * MIB / 1e6 + args.documents_mb * MIB / 1e6
        full_mb = db_mb * 100_000 / args.messages + 2048 * MIB / 1e6
        if args.messages < 100_000 or args.media_mb + args.documents_mb < 2048:
            print(
                f"Échelle : {live_mb:.0f} Mo vivants sauvegardés à {live_mb / full.seconds:.0f} Mo/s, "
                f"restaurés à {live_mb / restore_s:.0f} Mo/s ; la taille du ticket "
                f"(~{full_mb:.0f} Mo, base extrapolée) prendrait ~{full_mb / live_mb * full.seconds:.0f} s "
                f"à sauvegarder et ~{full_mb / live_mb * restore_s:.0f} s à restaurer"
            )
        print(f"Charge à la fin : {os.getloadavg()[0]:.1f} (2 cœurs partagés)")
    finally:
        synapse.stop()
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
