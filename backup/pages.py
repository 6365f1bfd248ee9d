"""SQLite databases by page: an incremental backup writes only the pages that changed.

A database's snapshot (SQLite's backup API copies it page for page, in place) is cut into
its pages. Each page is named by a keyed digest; the pages that none of the backup
directory's *packs* holds yet go, in order, into one new pack: an encrypted pool blob, like
a media file, named by a keyed hash of its content. The archive keeps the database's *page
map*: for each page, which pack and which place in it. A restore decrypts each pack the map
names once, writes its pages where the map puts them, then checks the whole database's
SHA-256 against the manifest.

Which pages the directory's packs hold is remembered on the server (``var/backup/pages.db``,
per backup directory), written only once an archive is complete, and never trusted blindly:
a pack that rotation removed, or that someone deleted, drops its pages before any is used.
When the packs an archive would need carry more than :data:`MAX_PACKED` times the
database's pages (pages long replaced), the database is written whole again: a restore
never reads more than about twice the database.

Why pages and not whole files: on the issue's deployment (Synapse 316 MB) copying the whole
database made an incremental backup after 1 % of change cost 13 % of a full one; messages
change pages all over the file (random event ids in every index), but few of them.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import struct
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nacl.public import PrivateKey, PublicKey

from backup import layout
from backup.crypto import ArchiveError, DecryptingReader, EncryptingWriter

MAP_RECORD = struct.Struct(">II")  # (pack number in the archive's list, page number in it)
MAX_PACKED = 2.0
DEFAULT_PAGE_SIZE = 4096
MAP_SUFFIX = ".pages"


def page_size_of(path: Path) -> int:
    """The database's page size, from its header (bytes 16–17; 1 means 65,536)."""
    with open(path, "rb") as fh:
        header = fh.read(100)
    if len(header) < 100:
        return DEFAULT_PAGE_SIZE  # empty file: no page at all
    (raw,) = struct.unpack(">H", header[16:18])
    return 65536 if raw == 1 else raw


def page_key(name_key: str) -> bytes:
    """The key of the pages' digests (derived from the pool's naming key)."""
    return hashlib.sha256(b"cercle-backup-pages:" + name_key.encode()).digest()


def _pages(path: Path, page_size: int) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        while page := fh.read(page_size):
            if len(page) != page_size:
                raise ArchiveError(f"base SQLite tronquée : {path.name}")
            yield page


@dataclass
class PageIndex:
    """The pages the packs of ONE backup directory hold: digest → (pack, page number)."""

    path: Path
    directory: Path
    known: dict[bytes, tuple[str, int]] = field(default_factory=dict)
    pack_pages: dict[str, int] = field(default_factory=dict)
    _new: list[tuple[str, list[bytes]]] = field(default_factory=list)

    @classmethod
    def open(cls, path: Path, directory: Path) -> PageIndex:
        """Loads the index, without the packs that are no longer in the pool."""
        index = cls(path, directory)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with _connect(path) as db:
            key = str(directory.resolve())
            gone = []
            for name, pages in db.execute("SELECT name, pages FROM packs WHERE dir = ?", (key,)):
                if layout.blob_path(directory, name).is_file():
                    index.pack_pages[name] = pages
                else:
                    gone.append(name)
            for name in gone:
                db.execute("DELETE FROM pages WHERE dir = ? AND pack = ?", (key, name))
                db.execute("DELETE FROM packs WHERE dir = ? AND name = ?", (key, name))
            for digest, name, number in db.execute(
                "SELECT digest, pack, number FROM pages WHERE dir = ?", (key,)
            ):
                if name in index.pack_pages:
                    index.known[digest] = (name, number)
        return index

    def record(self, pack: str, digests: list[bytes]) -> None:
        """A pack written by this run: its pages join the index when :meth:`save` runs."""
        self._new.append((pack, digests))

    def save(self) -> None:
        """Called once the archive naming the new packs is complete."""
        key = str(self.directory.resolve())
        with _connect(self.path) as db:
            for pack, digests in self._new:
                db.execute(
                    "INSERT OR REPLACE INTO packs VALUES (?, ?, ?)", (key, pack, len(digests))
                )
                db.executemany(  # the newest pack wins: older ones can then be let go
                    "INSERT OR REPLACE INTO pages VALUES (?, ?, ?, ?)",
                    ((key, d, pack, n) for n, d in enumerate(digests)),
                )
        self._new.clear()


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path)
    os.chmod(path, 0o600)
    db.execute(
        "CREATE TABLE IF NOT EXISTS packs (dir TEXT, name TEXT, pages INTEGER, "
        "PRIMARY KEY (dir, name))"
    )
    db.execute(
        "CREATE TABLE IF NOT EXISTS pages (dir TEXT, digest BLOB, pack TEXT, number INTEGER, "
        "PRIMARY KEY (dir, digest)) WITHOUT ROWID"
    )
    return db


class PackWriter:
    """One new pack: pages appended in order, encrypted, then named by their hash."""

    def __init__(self, directory: Path, recipient: PublicKey) -> None:
        work = directory / "blobs" / "pk"
        work.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._directory = directory
        self._tmp = work / f".pack-{os.getpid()}.tmp"
        self._out = open(self._tmp, "wb")  # noqa: SIM115
        os.fchmod(self._out.fileno(), 0o600)
        self._writer = EncryptingWriter(self._out, recipient)
        self._digest = hashlib.sha256()
        self.digests: list[bytes] = []

    def add(self, page: bytes, digest: bytes) -> int:
        self._writer.write(page)
        self._digest.update(page)
        self.digests.append(digest)
        return len(self.digests) - 1

    def finish(self, name_key: str) -> str:
        self._writer.close()
        self._out.flush()
        os.fsync(self._out.fileno())
        self._out.close()
        name = layout.blob_name(name_key, self._digest.hexdigest())
        target = layout.blob_path(self._directory, name)
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._tmp.replace(target)
        return name

    def abandon(self) -> None:
        self._out.close()
        self._tmp.unlink(missing_ok=True)


@dataclass(frozen=True)
class PagedDatabase:
    """What the manifest says of one database stored by page, and its map's bytes."""

    sha256: str
    size: int
    page_size: int
    packs: list[str]
    page_map: bytes
    new_pages: int

    def manifest_entry(self, name: str) -> dict[str, Any]:
        return {
            "path": name,
            "sha256": self.sha256,
            "size": self.size,
            "pages": {"page_size": self.page_size, "packs": self.packs, "map": name + MAP_SUFFIX},
        }


def store_database(
    snapshot: Path,
    index: PageIndex,
    directory: Path,
    recipient: PublicKey,
    name_key: str,
    max_packed: float = MAX_PACKED,
    tick: Callable[[str], None] | None = None,
) -> PagedDatabase:
    """Writes the pages of ``snapshot`` that the directory's packs lack into one new pack
    (in one reading of the snapshot; a second one only when the database goes whole)."""
    page_size = page_size_of(snapshot)
    key = page_key(name_key)
    total = snapshot.stat().st_size // page_size

    def write(known: dict[bytes, tuple[str, int]]) -> _Written:
        return _write_pages(
            snapshot, page_size, key, known, directory, recipient, name_key, total, tick
        )

    written = write(index.known)
    old = {name for name, _ in written.records if name is not None}
    if sum(index.pack_pages[p] for p in old) > max_packed * max(len(written.records), 1):
        # too many replaced pages in the old packs: the database whole again (the pack just
        # written is named by no archive: the next rotation takes it)
        written = write({})
    if written.pack is not None:
        index.record(written.pack, written.pack_digests)
    packs: list[str] = []
    numbers: dict[str, int] = {}
    page_map = bytearray()
    for name, number in written.records:
        name = name if name is not None else written.pack
        assert name is not None
        if name not in numbers:
            numbers[name] = len(packs)
            packs.append(name)
        page_map += MAP_RECORD.pack(numbers[name], number)
    return PagedDatabase(
        written.sha256,
        len(written.records) * page_size,
        page_size,
        packs,
        bytes(page_map),
        len(written.pack_digests),
    )


@dataclass(frozen=True)
class _Written:
    sha256: str  # of the whole database
    records: list[tuple[str | None, int]]  # per page: (pack, or None for the new one; place)
    pack: str | None  # the new pack, if any page was new
    pack_digests: list[bytes]


def _write_pages(
    snapshot: Path,
    page_size: int,
    key: bytes,
    known: dict[bytes, tuple[str, int]],
    directory: Path,
    recipient: PublicKey,
    name_key: str,
    total: int,
    tick: Callable[[str], None] | None,
) -> _Written:
    whole = hashlib.sha256()
    records: list[tuple[str | None, int]] = []
    fresh: dict[bytes, int] = {}
    pack: PackWriter | None = None
    try:
        for page in _pages(snapshot, page_size):
            whole.update(page)
            digest = hashlib.blake2b(page, digest_size=16, key=key).digest()
            if tick is not None and len(records) % 4096 == 0:
                tick(f"  {len(records)}/{total} pages lues, {len(fresh)} nouvelles")
            if digest in known:
                records.append(known[digest])
                continue
            if digest not in fresh:
                if pack is None:
                    pack = PackWriter(directory, recipient)
                fresh[digest] = pack.add(page, digest)
            records.append((None, fresh[digest]))
        name = pack.finish(name_key) if pack is not None else None
    except BaseException:
        if pack is not None:
            pack.abandon()
        raise
    return _Written(whole.hexdigest(), records, name, pack.digests if pack else [])


def assemble(
    pages: dict[str, Any], page_map: bytes, directory: Path, key: PrivateKey, target: Path
) -> tuple[str, int]:
    """Writes the database a page map describes into ``target``; its (SHA-256, size)."""
    page_size = int(pages["page_size"])
    packs: list[str] = list(pages["packs"])
    if page_size < 512 or page_size > 65536 or len(page_map) % MAP_RECORD.size:
        raise ArchiveError("archive corrompue (carte des pages illisible)")
    wanted: dict[int, dict[int, list[int]]] = defaultdict(lambda: defaultdict(list))
    for position, (pack, number) in enumerate(MAP_RECORD.iter_unpack(page_map)):
        if pack >= len(packs):
            raise ArchiveError("archive corrompue (carte des pages illisible)")
        wanted[pack][number].append(position)
    count = len(page_map) // MAP_RECORD.size
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.ftruncate(fd, count * page_size)
        for pack, places in wanted.items():
            path = layout.blob_path(directory, packs[pack])
            if not path.is_file():
                raise ArchiveError(
                    f"contenu manquant dans {directory / 'blobs'} (pages d'une base)"
                )
            last = max(places)
            with open(path, "rb") as raw:
                reader = DecryptingReader(raw, key)
                for number in range(last + 1):
                    page = reader.read(page_size)
                    if len(page) != page_size:
                        raise ArchiveError("archive corrompue (pages manquantes)")
                    for position in places.get(number, ()):
                        os.pwrite(fd, page, position * page_size)
    finally:
        os.close(fd)
    return layout.file_sha256(target), count * page_size
