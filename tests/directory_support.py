"""The directory's tables live in the dossier's database (issue 14): tests get a fresh SQLite
database migrated by Alembic, copied from a template migrated once per test process (a full
``upgrade head`` takes seconds; a copy, milliseconds)."""

from __future__ import annotations

import secrets
import shutil
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

from dossier_service.config import DossierConfig
from dossier_service.directory.database import Connection
from dossier_service.directory.database import connect as _connect
from dossier_service.migrate import upgrade_blocking

_template: list[Path] = []


def migrated_database(path: Path | str) -> Path:
    """A migrated dossier database at ``path`` (created from the template when absent)."""
    path = Path(path)
    if not path.exists():
        if not _template:
            folder = Path(tempfile.mkdtemp(prefix="cercle-template-db-"))
            template = folder / "dossier.db"
            upgrade_blocking(f"sqlite:///{template}")
            with sqlite3.connect(template) as db:
                db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            _template.append(template)
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_template[0], path)
    return path


def url_of(path: Path | str) -> str:
    """The dossier's ``database_url`` of a SQLite file."""
    return f"sqlite+aiosqlite:///{path}"


def connect(path: Path | str) -> Connection:
    """A directory connection on a migrated database at ``path``."""
    return _connect(migrated_database(path), check_same_thread=False)


def dossier_config(db: Path | str, **fields: Any) -> DossierConfig:
    """The dossier's settings over the database ``db`` (the directory's settings included,
    ``directory=DirectorySettings(...)``); random keys."""
    values: dict[str, Any] = {
        "database_url": url_of(migrated_database(db)),
        "documents_dir": Path(db).parent / "docs",
        "homeserver_url": "http://127.0.0.1:9",
        "server_name": "cercle.test",
        "session_key": secrets.token_urlsafe(32),
        "service_token": secrets.token_urlsafe(32),
    }
    values.update(fields)
    return DossierConfig(**values)
