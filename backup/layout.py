"""Where things live in a backup directory, and the manifest's format version.

<dir>/cercle-20261202T061500Z.cbk          encrypted tar: databases, small files, manifest
<dir>/cercle-20261202T061500Z.cbk.sha256   checksum of the archive file (no key needed)
<dir>/cercle-20261202T061500Z.cbk.blobs    names of the pool blobs it refers to (rotation)
<dir>/blobs/ab/ab12…                       media and documents, one encrypted file per
                                           content (named by a keyed hash of it), and the
                                           packs of SQLite pages (backup/pages.py)
<dir>/LATEST                               name of the newest COMPLETE archive
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

FORMAT = 2  # manifest format written (2: SQLite databases by page, backup/pages.py)
READABLE_FORMATS = (1, 2)  # what a restore reads
ARCHIVE_RE = re.compile(r"^cercle-(\d{8}T\d{6}Z)\.cbk$")
LATEST = "LATEST"
MANIFEST = "manifest.json"
PUBLIC_KEY_FILE = "backup.pub"  # in var/secrets: backups are written with it
BLOB_NAME_KEY = "backup_blob_key"  # in var/secrets: pool names do not reveal content hashes


def archive_name(when: datetime) -> str:
    return f"cercle-{when.astimezone(UTC):%Y%m%dT%H%M%SZ}.cbk"


def archive_time(path: Path) -> datetime | None:
    match = ARCHIVE_RE.match(path.name)
    if not match:
        return None
    return datetime.strptime(match.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


def archives(directory: Path) -> list[Path]:
    """Complete archives, oldest first (a partial one never has the final name)."""
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if ARCHIVE_RE.match(p.name))


@contextlib.contextmanager
def directory_lock(directory: Path, *, wait: bool) -> Iterator[bool]:
    """The backup directory's lock: one writer at a time (a backup, or a rotation that
    removes blobs). Yields False, without the lock, when it is taken and ``wait`` is off."""
    fd = os.open(directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def sidecar(archive: Path, suffix: str) -> Path:
    return archive.with_name(archive.name + suffix)


def blob_name(name_key: str, sha256: str) -> str:
    return hmac.new(name_key.encode(), sha256.encode(), hashlib.sha256).hexdigest()


def blob_path(directory: Path, name: str) -> Path:
    return directory / "blobs" / name[:2] / name


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class HashingReader:
    """Reads through ``src`` and hashes what passes."""

    def __init__(self, src: BinaryIO) -> None:
        self._src = src
        self.digest = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        data = self._src.read(size)
        self.digest.update(data)
        self.size += len(data)
        return data


def safe_relpath(text: str) -> Path:
    """A path from a manifest, refused if it could leave the directory it is restored to."""
    path = Path(text)
    if path.is_absolute() or not path.parts or any(p in ("", ".", "..") for p in path.parts):
        raise ValueError(text)
    return path
