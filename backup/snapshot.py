"""`cercle backup`: an online, consistent, encrypted snapshot of every declared store.

Order: the archive is opened under a hidden ``.partial`` name; databases are snapshotted
(SQLite backup API / pg_dump) into it; media and documents go to the content pool (only
new contents are encrypted and written); the manifest closes the archive; only then is it
renamed to its final name and named in LATEST. A backup killed midway leaves a partial
file (removed by the next run) and LATEST still naming the previous, complete archive.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets as _random
import shutil
import sqlite3
import subprocess
import tarfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from importlib.metadata import version
from pathlib import Path
from typing import Any
from urllib.parse import quote

from backup import layout, pages
from backup.crypto import EncryptingWriter, load_public_key, write_private
from backup.hash_cache import HashCache
from backup.stores import Store, declared_stores
from deployment.profile import Profile
from deployment.secrets import read_or_create

Say = Callable[[str], None]
SQLITE_HEADER = b"SQLite format 3\x00"
_SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")


class BackupError(Exception):
    """The backup cannot be made; French message for the operator."""


@dataclass(frozen=True)
class BackupResult:
    archive: Path
    manifest: dict[str, Any]
    seconds: float


class Progress:
    """Prints a line per step, and at most one progress line every ``every`` seconds."""

    def __init__(self, say: Say, every: float = 2.0) -> None:
        self._say = say
        self._every = every
        self._last = 0.0

    def step(self, text: str) -> None:
        self._say(text)
        self._last = time.monotonic()

    def tick(self, text: str) -> None:
        now = time.monotonic()
        if now - self._last >= self._every:
            self._say(text)
            self._last = now


def versions() -> dict[str, str]:
    return {"cercle": version("cercle"), "synapse": version("matrix-synapse")}


def public_key_path(profile: Profile) -> Path:
    return profile.var_dir / "secrets" / layout.PUBLIC_KEY_FILE


@contextlib.contextmanager
def backup_lock(directory: Path) -> Iterator[None]:
    with layout.directory_lock(directory, wait=False) as held:
        if not held:
            raise BackupError("une sauvegarde est déjà en cours vers ce répertoire")
        yield


def snapshot_sqlite(source: Path, target: Path, *, read_only: bool = False) -> None:
    """A consistent private copy (0600) of a live SQLite database (the backup API, in one
    step). ``read_only``: from a connection that cannot write (``mode=ro``), so another
    process's database is read, consistently, and never changed."""
    src = (
        sqlite3.connect(f"file:{quote(str(source))}?mode=ro", uri=True, timeout=60)
        if read_only
        else sqlite3.connect(source, timeout=60)
    )
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()
    os.chmod(target, 0o600)


def dump_postgres(dsn: str, target: Path) -> None:
    result = subprocess.run(
        ["pg_dump", "--format=custom", "--no-owner", "--no-privileges", "-f", str(target), dsn],
        capture_output=True,
        timeout=3600,
        check=False,
    )
    if result.returncode != 0:
        raise BackupError("pg_dump a échoué (base PostgreSQL injoignable ou droits insuffisants)")


def _is_sqlite(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(len(SQLITE_HEADER)) == SQLITE_HEADER


class ArchiveWriter:
    """The encrypted tar being written; every member's hash and size go to the manifest."""

    def __init__(self, out: Any, recipient: Any) -> None:
        self._writer = EncryptingWriter(out, recipient)
        self._tar = tarfile.open(fileobj=self._writer, mode="w|")  # type: ignore[call-overload]  # noqa: SIM115

    def add_file(self, member: str, path: Path) -> dict[str, Any]:
        info = tarfile.TarInfo(member)
        info.size = path.stat().st_size
        info.mode = 0o600
        with open(path, "rb") as fh:
            reader = layout.HashingReader(fh)
            self._tar.addfile(info, reader)
        return {"sha256": reader.digest.hexdigest(), "size": reader.size}

    def add_bytes(self, member: str, data: bytes, work: Path) -> None:
        tmp = work / "member.tmp"
        tmp.write_bytes(data)
        self.add_file(member, tmp)
        tmp.unlink()

    def close(self) -> None:
        self._tar.close()
        self._writer.close()


class BackupRun:
    def __init__(self, profile: Profile, directory: Path, say: Say) -> None:
        self.profile = profile
        self.directory = directory
        self.progress = Progress(say)
        secrets_dir = profile.var_dir / "secrets"
        key_file = public_key_path(profile)
        if not key_file.exists():
            raise BackupError(
                "aucune clé de sauvegarde : créez-la avec « cercle backup --init-key FICHIER » "
                "(FICHIER hors du serveur : il faudra ce fichier pour restaurer)"
            )
        self.recipient = load_public_key(key_file.read_text(encoding="utf-8"))
        self.name_key = read_or_create(
            secrets_dir, layout.BLOB_NAME_KEY, partial(_random.token_urlsafe, 32)
        )
        self.work = profile.var_dir / "backup" / f"work-{os.getpid()}"
        self.cache = HashCache(profile.var_dir / "backup" / "hashes.db")
        self.page_index = pages.PageIndex.open(profile.var_dir / "backup" / "pages.db", directory)
        self.new_blobs = 0
        self.new_blob_bytes = 0

    # --- one handler per kind of store -------------------------------------------------
    def _database(self, archive: ArchiveWriter, store: Store) -> list[dict[str, Any]]:
        """One database: a consistent copy in the work directory, then into the archive
        (PostgreSQL: its dump, whole; SQLite: by page, only the pages the directory's packs
        lack are written: backup/pages.py)."""
        copy = self.work / f"{store.name}.snapshot"
        if store.kind == "postgres":
            assert store.dsn is not None
            dump_postgres(store.dsn, copy)
            entry = archive.add_file(f"stores/{store.name}/database.dump", copy)
            copy.unlink()
            return [{"path": "database.dump", **entry}]
        assert store.path is not None
        snapshot_sqlite(store.path, copy)
        paged = pages.store_database(
            copy,
            self.page_index,
            self.directory,
            self.recipient,
            self.name_key,
            tick=lambda text: self.progress.tick(f"  {store.name} :{text[1:]}"),
        )
        copy.unlink()
        name = store.path.name
        archive.add_bytes(
            f"stores/{store.name}/{name}{pages.MAP_SUFFIX}", paged.page_map, self.work
        )
        self.new_blobs += 1 if paged.new_pages else 0
        self.new_blob_bytes += paged.new_pages * paged.page_size
        return [paged.manifest_entry(name)]

    def _files(self, archive: ArchiveWriter, store: Store) -> list[dict[str, Any]]:
        assert store.path is not None
        entries = []
        for path in _walk(store.path):
            if path.name.endswith(_SQLITE_COMPANIONS):
                continue
            rel = path.relative_to(store.path).as_posix()
            source = path
            if _is_sqlite(path):
                source = self.work / "file.sqlite"
                snapshot_sqlite(path, source)
            entries.append({"path": rel, **archive.add_file(f"stores/{store.name}/{rel}", source)})
            if source != path:
                source.unlink()
        return entries

    def _blobs(self, store: Store) -> list[dict[str, Any]]:
        assert store.path is not None
        entries = []
        files = list(_walk(store.path))
        done_bytes = 0
        for index, path in enumerate(files, 1):
            rel = path.relative_to(store.path).as_posix()
            try:
                stat = path.stat()
                sha256 = self.cache.sha256(f"{store.name}/{rel}", path, stat)
                name = layout.blob_name(self.name_key, sha256)
                self._store_blob(path, name)
            except FileNotFoundError:
                continue  # removed while we walked: it is not in this snapshot
            entries.append({"path": rel, "sha256": sha256, "size": stat.st_size, "blob": name})
            done_bytes += stat.st_size
            self.progress.tick(
                f"  {store.name} : {index}/{len(files)} fichiers, {done_bytes / 1e6:.0f} Mo"
            )
        self.cache.commit()
        return entries

    def _store_blob(self, path: Path, name: str) -> None:
        target = layout.blob_path(self.directory, name)
        if target.exists():
            return
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = target.with_name(f".{name}.{os.getpid()}.tmp")
        with open(path, "rb") as src, open(tmp, "wb") as out:
            os.fchmod(out.fileno(), 0o600)
            writer = EncryptingWriter(out, self.recipient)
            while chunk := src.read(1 << 20):
                writer.write(chunk)
            writer.close()
            out.flush()
            os.fsync(out.fileno())
        tmp.replace(target)
        self.new_blobs += 1
        self.new_blob_bytes += path.stat().st_size

    # --- the whole run ---------------------------------------------------------------------
    def run(self) -> BackupResult:
        started = time.monotonic()
        now = datetime.now(UTC)
        while (self.directory / layout.archive_name(now)).exists():  # one name per second
            time.sleep(0.05)
            now = datetime.now(UTC)
        name = layout.archive_name(now)
        final = self.directory / name
        partial_path = self.directory / f".{name}.partial"
        self.work.mkdir(parents=True, exist_ok=True, mode=0o700)
        manifest: dict[str, Any] = {
            "format": layout.FORMAT,
            "created_at": now.isoformat(),
            "server_name": self.profile.server_name,
            "versions": versions(),
            "stores": [],
        }
        try:
            with open(partial_path, "wb") as out:
                os.fchmod(out.fileno(), 0o600)
                archive = ArchiveWriter(out, self.recipient)
                for store in declared_stores(self.profile):
                    manifest["stores"].append(self._store(archive, store))
                manifest["totals"] = _totals(manifest, self.new_blobs, self.new_blob_bytes)
                archive.add_bytes(layout.MANIFEST, json.dumps(manifest).encode(), self.work)
                archive.close()
                out.flush()
                os.fsync(out.fileno())
            # the sidecars first: a complete archive always has them
            blobs = sorted(referenced_blobs(manifest))
            write_private(layout.sidecar(final, ".blobs"), "\n".join(blobs).encode())
            checksum = f"{layout.file_sha256(partial_path)}  {name}\n"
            write_private(layout.sidecar(final, ".sha256"), checksum.encode())
            partial_path.replace(final)
            self.page_index.save()  # the new packs are named by a complete archive now
        finally:
            self.cache.close()
            shutil.rmtree(self.work, ignore_errors=True)
            partial_path.unlink(missing_ok=True)
        write_private(self.directory / layout.LATEST, name.encode())
        _fsync_dir(self.directory)
        return BackupResult(final, manifest, time.monotonic() - started)

    def _store(self, archive: ArchiveWriter, store: Store) -> dict[str, Any]:
        record: dict[str, Any] = {"name": store.name, "kind": store.kind, "present": False}
        if not store.present():
            if not store.optional:
                raise BackupError(f"donnée introuvable : {store.name} ({store.path})")
            record["entries"] = []
            return record
        self.progress.step(f"Sauvegarde : {store.name}…")
        handler: dict[str, Callable[[Store], list[dict[str, Any]]]] = {
            "sqlite": partial(self._database, archive),
            "postgres": partial(self._database, archive),
            "files": partial(self._files, archive),
            "blobs": self._blobs,
        }
        record["present"] = True
        record["entries"] = handler[store.kind](store)
        return record


def _walk(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if path.is_file() and not path.is_symlink():
                yield path


def referenced_blobs(manifest: dict[str, Any]) -> set[str]:
    """The pool blobs an archive needs: media and documents, and its databases' packs."""
    names = set()
    for store in manifest["stores"]:
        for entry in store["entries"]:
            if store["kind"] == "blobs":
                names.add(entry["blob"])
            names.update(entry.get("pages", {}).get("packs", ()))
    return names


def _totals(manifest: dict[str, Any], new_blobs: int, new_blob_bytes: int) -> dict[str, int]:
    entries = [e for s in manifest["stores"] for e in s["entries"]]
    return {
        "files": len(entries),
        "bytes": sum(e["size"] for e in entries),
        "new_blobs": new_blobs,
        "new_blob_bytes": new_blob_bytes,
    }


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def clean_partials(directory: Path) -> None:
    """Remove what a killed backup left (never a complete archive)."""
    for path in directory.glob(".cercle-*.partial"):
        path.unlink(missing_ok=True)
    for path in directory.glob("blobs/*/.*.tmp"):
        path.unlink(missing_ok=True)
    for suffix in (".blobs", ".sha256"):  # sidecars of an archive that never got its name
        for path in directory.glob(f"cercle-*.cbk{suffix}"):
            if not path.with_name(path.name.removesuffix(suffix)).exists():
                path.unlink()


def make_backup(profile: Profile, directory: Path, say: Say) -> BackupResult:
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    with backup_lock(directory):
        clean_partials(directory)
        return BackupRun(profile, directory, say).run()
