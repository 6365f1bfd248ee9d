"""Content hashes of media files, remembered by (path, size, mtime) so that an incremental
backup does not read again the files it already knows (Synapse's media are immutable)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from backup.layout import file_sha256


class HashCache:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._db = sqlite3.connect(path)
        os.chmod(path, 0o600)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS hashes (key TEXT PRIMARY KEY, size INTEGER, "
            "mtime_ns INTEGER, sha256 TEXT)"
        )

    def sha256(self, key: str, path: Path, stat: os.stat_result) -> str:
        row = self._db.execute(
            "SELECT size, mtime_ns, sha256 FROM hashes WHERE key = ?", (key,)
        ).fetchone()
        if row and row[0] == stat.st_size and row[1] == stat.st_mtime_ns:
            return str(row[2])
        digest = file_sha256(path)
        self._db.execute(
            "INSERT OR REPLACE INTO hashes VALUES (?, ?, ?, ?)",
            (key, stat.st_size, stat.st_mtime_ns, digest),
        )
        return digest

    def commit(self) -> None:
        self._db.commit()

    def close(self) -> None:
        self._db.commit()
        self._db.close()
