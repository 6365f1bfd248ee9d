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
from dossier_service.models.directory import Structure

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


def structure_row(finess: str, name: str, **fields: Any) -> Structure:
    """A structure of the FINESS extract as its import leaves it: ``name``, what the test
    names in ``fields`` (``city``, ``category`` …), the other columns blank."""
    values: dict[str, Any] = {
        "legal_finess": "",
        "long_name": name,
        "address": "",
        "postcode": "",
        "city": "",
        "commune_code": "",
        "dept": "",
        "phone": "",
        "category_code": "",
        "category": "",
        "aggregate": "",
        "siret": "",
        "sort_key": name.lower(),
        "content_hash": b"x",
        "seen_run": 1,
        "updated_at": "2026-01-01T00:00:00Z",
    }
    return Structure(finess=finess, name=name, **(values | fields))
