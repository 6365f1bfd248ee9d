"""The deployment of the backup benchmark (issue 19): generated once, kept on disk.

``prepare(...)`` gives the var directory of a deployment of its own for one run, copied
from a cache keyed by its size (``backup-<key>/`` under the cache directory, on the disk),
generating the cache first when it is missing.

Generation: a real Synapse (the deployment's rendering, tests/support.py) gets the encrypted
rooms and real ``m.room.encrypted`` events (megolm, one outbound session per room and sender,
as a client has) through the client API, from accounts whose message rate limit is lifted
(admin ``override_ratelimit``), many requests in flight. Synapse writes its SQLite database
with an fsync per commit; on this machine's disk (~5 ms an fsync) that, not the events,
would set the pace, so the var directory is built under ``--build-dir`` (``/dev/shm`` by
default: tmpfs, where fsync costs nothing). The events are the same either way. Generation
is checkpointed every chunk of messages (``state.json``: accounts, rooms, messages sent,
deterministic transaction ids so a chunk sent again is not doubled): a run stopped by its
timeout is resumed by the next one. Then Synapse is stopped, the var directory copied to the
cache on the disk, and media (1 MiB random files, Synapse's media store) and documents (the
dossier's content-addressed store) written there as files: the backup reads files, so
their origin does not change its cost.

For a run, the cache is copied to the run's directory (on the disk), flushed and dropped
from the page cache (``posix_fadvise(DONTNEED)``, these files only): the backup then reads
from the disk, as on a server whose media are not all in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import shutil
import sqlite3
import time
from dataclasses import asdict, dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import aiohttp
import vodozemac

from tests.support import SynapseUnderTest, start_synapse

SEED_VERSION = 1  # change it when what is generated changes: the cache is rebuilt
MIB = 1 << 20
CHUNK = 2_000  # messages between two checkpoints


@dataclass(frozen=True)
class Size:
    rooms: int
    messages: int
    media_mb: int
    documents_mb: int

    def key(self) -> str:
        text = json.dumps([SEED_VERSION, asdict(self), version("matrix-synapse")])
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class Sender:
    """A professional's account and device: its own connection, its own megolm sessions."""

    user_id: str
    token: str
    device_id: str
    curve25519: str  # the device's identity key, as real m.room.encrypted events carry
    sessions: dict[str, vodozemac.GroupSession] = field(default_factory=dict, repr=False)

    def encrypt(self, room_id: str, body: str) -> dict[str, str]:
        """A real megolm event: one outbound session per room and sender, as a client has."""
        session = self.sessions.setdefault(room_id, vodozemac.GroupSession())
        payload = {
            "type": "m.room.message",
            "room_id": room_id,
            "content": {"msgtype": "m.text", "body": body},
        }
        return {
            "algorithm": "m.megolm.v1.aes-sha2",
            "ciphertext": session.encrypt(json.dumps(payload).encode()).to_base64(),
            "sender_key": self.curve25519,
            "session_id": session.session_id,
            "device_id": self.device_id,
        }

    def saved(self) -> dict[str, str]:
        return {k: v for k, v in asdict(self).items() if k != "sessions"}


@dataclass
class Deployment:
    """A run's copy of the cached deployment: its var directory, the accounts and rooms."""

    var: Path
    size: Size
    senders: list[Sender]
    rooms: list[tuple[int, str]]  # (index of the sender who owns it, room id)
    facts: dict[str, Any]  # how the cache was generated (date, seconds, rate, load)


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
    def __init__(self, what: str, total: int, done: int = 0) -> None:
        self.what, self.total, self.done, self.first = what, total, done, done
        self.start = self.last = time.monotonic()

    def tick(self) -> None:
        self.done += 1
        now = time.monotonic()
        if now - self.last >= 30 or self.done == self.total:
            self.last = now
            rate = self.rate
            left = (self.total - self.done) / rate if rate else 0
            print(
                f"  {self.what} : {self.done}/{self.total} ({rate:.0f}/s, reste ~{left:.0f} s, "
                f"charge {os.getloadavg()[0]:.1f})",
                flush=True,
            )

    @property
    def rate(self) -> float:
        return (self.done - self.first) / max(time.monotonic() - self.start, 1e-9)


def _pools(senders: list[Sender], workers: int) -> list[aiohttp.ClientSession]:
    return [
        aiohttp.ClientSession(
            headers={"Authorization": f"Bearer {s.token}"},
            connector=aiohttp.TCPConnector(limit=max(2, workers // len(senders) + 1)),
            timeout=aiohttp.ClientTimeout(total=300),
        )
        for s in senders
    ]


async def create_rooms(
    base: str, senders: list[Sender], count: int, workers: int
) -> list[tuple[int, str]]:
    """``count`` encrypted rooms, owned in turn by each sender."""
    pools = _pools(senders, workers)
    made = Progress("salons chiffrés créés", count)
    created: list[tuple[int, str]] = []
    indexes: asyncio.Queue[int] = asyncio.Queue()
    for i in range(count):
        indexes.put_nowait(i)

    async def creator() -> None:
        while not indexes.empty():
            i = indexes.get_nowait()
            owner = i % len(senders)
            body = {
                "name": f"Suivi {i}",
                "preset": "private_chat",
                "initial_state": [
                    {
                        "type": "m.room.encryption",
                        "state_key": "",
                        "content": {"algorithm": "m.megolm.v1.aes-sha2"},
                    }
                ],
            }
            url = f"{base}/_matrix/client/v3/createRoom"
            async with pools[owner].post(url, json=body) as resp:
                assert resp.status == 200, resp.status
                created.append((owner, (await resp.json())["room_id"]))
            made.tick()

    try:
        await asyncio.gather(*(creator() for _ in range(min(workers, 8))))
    finally:
        for pool in pools:
            await pool.close()
    return sorted(created, key=lambda r: r[1])


async def send_messages(
    base: str,
    senders: list[Sender],
    rooms: list[tuple[int, str]],
    numbers: range,
    workers: int,
    txn_prefix: str,
    progress: Progress,
) -> float:
    """Messages ``numbers`` (message n in room n mod len(rooms), by its owner), ``workers``
    requests in flight. Transaction ids ``<prefix>-<n>``: the same message sent again (a
    resumed chunk) is answered with the first event, not doubled. Returns messages/s."""
    pools = _pools(senders, workers)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in numbers:
        queue.put_nowait(n)
    start = time.monotonic()

    async def sender() -> None:
        while not queue.empty():
            n = queue.get_nowait()
            owner, room = rooms[n % len(rooms)]
            content = senders[owner].encrypt(room, f"Transmission {n} : constantes stables")
            url = f"{base}/_matrix/client/v3/rooms/{room}/send/m.room.encrypted/{txn_prefix}-{n}"
            async with pools[owner].put(url, json=content) as resp:
                assert resp.status == 200, resp.status
            progress.tick()

    try:
        await asyncio.gather(*(sender() for _ in range(workers)))
    finally:
        for pool in pools:
            await pool.close()
    return len(numbers) / max(time.monotonic() - start, 1e-9)


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


def tree_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def copy_cold(source: Path, target: Path) -> None:
    """Copy a tree, then flush it and drop it from the page cache (these files only), so
    what reads it next reads the disk."""
    shutil.copytree(source, target, symlinks=True)
    evict(target)


def evict(tree: Path) -> None:
    """Flush a tree's files and drop them from the page cache (these files only)."""
    for path in tree.rglob("*"):
        if path.is_file() and not path.is_symlink():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


class GenerationIncomplete(Exception):
    """The generation's timeout came first; its checkpoint is kept for the next run."""


def _save(path: Path, state: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state))
    tmp.replace(path)


def generate(
    size: Size, cache: Path, build_dir: Path, *, senders: int, workers: int, timeout: float
) -> None:
    """Generate (or resume generating) the deployment of ``size`` into ``cache``."""
    deadline = time.monotonic() + timeout
    building = build_dir / f"cercle-bench-{cache.name}.building"
    parked = cache.with_name(cache.name + ".partial")  # a checkpoint kept on the disk
    state_file = building / "state.json"
    if not state_file.exists() and (parked / "state.json").exists():
        shutil.rmtree(building, ignore_errors=True)
        shutil.copytree(parked, building, symlinks=True)
    state: dict[str, Any] = json.loads(state_file.read_text()) if state_file.exists() else {}
    if not state:  # nothing usable: from scratch
        shutil.rmtree(building, ignore_errors=True)
        building.mkdir(parents=True)
    print(f"Génération dans {building} ({'reprise' if state else 'début'})", flush=True)
    synapse = start_synapse(building / "var")
    try:
        if not state:
            t = time.monotonic()
            accounts = make_senders(synapse, senders)
            rooms = asyncio.run(create_rooms(synapse.base_url, accounts, size.rooms, workers))
            state = {
                "senders": [s.saved() for s in accounts],
                "rooms": rooms,
                "sent": 0,
                "seconds": 0.0,
                "rooms_seconds": time.monotonic() - t,
                "started": time.time(),
                "loads": [os.getloadavg()[0]],
            }
            _save(state_file, state)
        accounts = [Sender(**s) for s in state["senders"]]
        rooms = [(int(o), str(r)) for o, r in state["rooms"]]
        progress = Progress("messages chiffrés envoyés", size.messages, state["sent"])
        while state["sent"] < size.messages:
            if time.monotonic() > deadline:
                synapse.stop()
                park(building, parked)
                raise GenerationIncomplete(
                    f"délai de génération atteint : {state['sent']}/{size.messages} messages "
                    f"envoyés, reprise au prochain lancement (point de reprise : {parked})"
                )
            t = time.monotonic()
            chunk = range(state["sent"], min(size.messages, state["sent"] + CHUNK))
            asyncio.run(
                send_messages(synapse.base_url, accounts, rooms, chunk, workers, "g", progress)
            )
            state["sent"] = chunk.stop
            state["seconds"] += time.monotonic() - t
            state["loads"].append(os.getloadavg()[0])
            _save(state_file, state)
    finally:
        synapse.stop()
    # Synapse stopped: its database is whole on tmpfs; now onto the disk
    t = time.monotonic()
    tmp = cache.with_name(cache.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    shutil.copytree(building / "var", tmp / "var", symlinks=True)
    write_media(tmp / "var", size.media_mb)
    write_documents(tmp / "var", size.documents_mb)
    os.sync()
    loads = state["loads"]
    facts = {
        "size": asdict(size),
        "senders": state["senders"],
        "rooms": state["rooms"],
        "generated": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "rooms_seconds": round(state.get("rooms_seconds", 0)),
        "message_seconds": round(state["seconds"]),
        "messages_per_second": round(size.messages / max(state["seconds"], 1e-9), 1),
        "load_mean": round(sum(loads) / len(loads), 1),
        "build_dir": str(build_dir),
        "copy_and_files_seconds": round(time.monotonic() - t),
    }
    (tmp / "deployment.json").write_text(json.dumps(facts, indent=1))
    tmp.rename(cache)
    shutil.rmtree(building, ignore_errors=True)
    shutil.rmtree(parked, ignore_errors=True)


def park(building: Path, parked: Path) -> None:
    """Keep the checkpoint on the disk too (tmpfs does not outlive a reboot); Synapse is
    stopped, its database whole."""
    tmp = parked.with_name(parked.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(building, tmp, symlinks=True)
    shutil.rmtree(parked, ignore_errors=True)
    tmp.rename(parked)
    print(f"Point de reprise gardé sur le disque : {parked}", flush=True)


def prepare(
    size: Size,
    cache_dir: Path,
    build_dir: Path,
    run_dir: Path,
    *,
    senders: int,
    workers: int,
    timeout: float,
    checkpoint: bool = False,
) -> Deployment:
    """The run's own copy (``run_dir/var``) of the cached deployment, generated if missing.
    ``checkpoint``: instead, the generation's last checkpoint (its messages so far), media and
    documents written into the copy: a partial deployment, said as such."""
    cache = cache_dir / f"backup-{size.key()}"
    if checkpoint:
        return _from_checkpoint(size, cache, build_dir, run_dir)
    if not (cache / "deployment.json").exists():
        generate(size, cache, build_dir, senders=senders, workers=workers, timeout=timeout)
    facts = json.loads((cache / "deployment.json").read_text())
    print(
        f"Déploiement en cache : {cache} ({tree_size(cache) / 1e6:.0f} Mo ; généré le "
        f"{facts['generated']}, {facts['messages_per_second']} messages/s, "
        f"charge moyenne {facts['load_mean']})",
        flush=True,
    )
    t = time.monotonic()
    copy_cold(cache / "var", run_dir / "var")
    print(f"Copié pour ce passage (hors cache de pages) en {time.monotonic() - t:.0f} s")
    senders_ = [Sender(**s) for s in facts["senders"]]
    rooms = [(int(o), str(r)) for o, r in facts["rooms"]]
    return Deployment(run_dir / "var", size, senders_, rooms, facts)


def _from_checkpoint(size: Size, cache: Path, build_dir: Path, run_dir: Path) -> Deployment:
    """A run's copy of the generation's checkpoint (its generation must not be running)."""
    source = build_dir / f"cercle-bench-{cache.name}.building"
    if not (source / "state.json").exists():
        source = cache.with_name(cache.name + ".partial")
    state = json.loads((source / "state.json").read_text())
    print(
        f"PARTIEL : point de reprise {source}, {state['sent']}/{size.messages} messages "
        f"(générés à {state['sent'] / max(state['seconds'], 1e-9):.1f}/s)",
        flush=True,
    )
    t = time.monotonic()
    var = run_dir / "var"
    shutil.copytree(source / "var", var, symlinks=True)
    with contextlib.closing(sqlite3.connect(var / "synapse" / "homeserver.db")) as db:
        (events,) = db.execute(
            "SELECT count(*) FROM events WHERE type = 'm.room.encrypted'"
        ).fetchone()
    write_media(var, size.media_mb)
    write_documents(var, size.documents_mb)
    evict(var)
    print(
        f"Copié et complété pour ce passage (hors cache de pages) en {time.monotonic() - t:.0f} s ; "
        f"messages chiffrés dans la base : {events}",
        flush=True,
    )
    partial = Size(size.rooms, events, size.media_mb, size.documents_mb)
    senders = [Sender(**s) for s in state["senders"]]
    rooms = [(int(o), str(r)) for o, r in state["rooms"]]
    facts = {"partial": True, "generated": "(point de reprise)", "sent": state["sent"]}
    return Deployment(var, partial, senders, rooms, facts)
