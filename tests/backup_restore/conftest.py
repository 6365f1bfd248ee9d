"""A deployment's data on disk without running it: every kind of store, real SQLite."""

from __future__ import annotations

import hashlib
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pytest

from backup.crypto import generate_key_pair
from backup.layout import PUBLIC_KEY_FILE
from deployment.profile import Profile, load_profile
from deployment.secrets import Secrets


@dataclass
class Deployment:
    profile: Profile
    key_file: Path
    backups: Path

    @property
    def var(self) -> Path:
        return self.profile.var_dir


def make_profile(var: Path, backups: Path) -> Profile:
    return load_profile(env={}, extra={"var_dir": str(var), "backup": {"directory": str(backups)}})


def sqlite_db(path: Path, rows: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, body TEXT)")
        db.executemany("INSERT INTO t (body) VALUES (?)", [(f"ligne {i}",) for i in range(rows)])


def add_document(var: Path, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    path = var / "dossier" / "documents" / digest[:2] / digest
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return digest


def add_media(var: Path, media_id: str, data: bytes) -> None:
    path = var / "synapse" / "media_store" / "local_content" / media_id[:2] / media_id[2:]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


@pytest.fixture
def deployment(tmp_path: Path) -> Deployment:
    var = tmp_path / "var"
    profile = make_profile(var, tmp_path / "backups")
    Secrets.load_or_create(var)
    private, public = generate_key_pair()
    key_file = tmp_path / "cle" / "backup.key"
    key_file.parent.mkdir()
    key_file.write_text(private)
    (var / "secrets" / PUBLIC_KEY_FILE).write_text(public)
    sqlite_db(var / "synapse" / "homeserver.db", 200)
    sqlite_db(var / "dossier" / "dossier.db", 50)
    sqlite_db(var / "annuaire" / "annuaire.db", 30)
    sqlite_db(var / "bot" / "store" / "@cercle-bot:cercle.localhost_CERCLEBOT.db", 10)
    (var / "bot" / "session.json").write_text('{"device_id": "CERCLEBOT"}')
    add_media(var, "abcdefMEDIA1", os.urandom(3000))
    add_document(var, b"%PDF-1.4 compte rendu")
    return Deployment(profile, key_file, tmp_path / "backups")
