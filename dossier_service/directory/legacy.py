"""Upgrading a deployment of before issue 14: its directory lived in its own SQLite file
(``var/annuaire/annuaire.db``, schema versions 1-2 in ``PRAGMA user_version``). At start the
dossier copies it into its own database, once — the imported professionals, the account
links, the account requests (pending ones included), activation links and the directory's
audit — and renames the old file ``annuaire.db.importe`` so that nothing is copied twice
and the operator keeps it until they delete it.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from pathlib import Path

from .database import Connection, connect, is_sqlite, transaction
from .store import bulk_indexes

log = logging.getLogger(__name__)

# old table -> new table, in an order that satisfies the foreign keys
TABLES = (
    ("import_run", "annuaire_import_run"),
    ("professional", "annuaire_professional"),
    ("activity", "annuaire_activity"),
    ("search_key", "annuaire_search_key"),
    ("commune", "annuaire_commune"),
    ("account_link", "annuaire_account_link"),
    ("account_request", "annuaire_account_request"),
    ("activation", "annuaire_activation"),
    ("audit", "annuaire_audit"),
)
BATCH = 5_000
DONE_SUFFIX = ".importe"


class LegacyError(RuntimeError):
    """The old file cannot be copied (message in French, for the operator)."""


def _columns(conn: sqlite3.Connection | Connection, table: str, sqlite: bool) -> list[str]:
    if sqlite:
        return [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]
    return [
        row[0]
        for row in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ?", (table,)
        )
    ]


def import_legacy_database(database_url: str, legacy: Path | None) -> dict[str, int] | None:
    """Copy ``legacy`` (an ``annuaire.db`` of before issue 14) into the directory's tables of
    ``database_url`` (already migrated by Alembic) and rename it; None when there is none.
    Refuses (:class:`LegacyError`) when the new tables already hold a directory."""
    if legacy is None or not legacy.exists():
        return None
    source = sqlite3.connect(str(legacy), isolation_level=None)
    try:
        version = source.execute("PRAGMA user_version").fetchone()[0]
        if version not in (1, 2):
            raise LegacyError(
                f"{legacy} : base de l'annuaire en version {version}, attendu 1 ou 2."
            )
        source.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # all of it in the main file
        with contextlib.closing(connect(database_url)) as target:
            counts = _copy(source, target)
            if version == 1:  # v2 flagged the rows of linked professionals
                _flag_linked(target)
    finally:
        source.close()
    done = legacy.with_name(legacy.name + DONE_SUFFIX)
    legacy.rename(done)
    for suffix in ("-wal", "-shm"):
        Path(str(legacy) + suffix).unlink(missing_ok=True)
    log.info(
        "annuaire : ancienne base copiée dans la base du dossier (%s), renommée %s",
        counts,
        done.name,
    )
    return counts


def _copy(source: sqlite3.Connection, target: Connection) -> dict[str, int]:
    sqlite = is_sqlite(target)
    counts: dict[str, int] = {}
    with transaction(target):
        for _old, new in TABLES:
            if target.execute(f"SELECT 1 FROM {new} LIMIT 1").fetchone() is not None:
                raise LegacyError(
                    f"l'annuaire est déjà dans la base du dossier ({new} non vide) : "
                    "l'ancienne base n'est pas copiée une seconde fois."
                )
        indexes = bulk_indexes(target)
        for name in indexes:  # rebuilt once after the copy, faster than row by row
            target.execute(f"DROP INDEX IF EXISTS {name}")
        for old, new in TABLES:
            wanted = set(_columns(target, new, sqlite))
            columns = [c for c in _columns(source, old, True) if c in wanted]
            names = ", ".join(columns)
            marks = ",".join("?" * len(columns))
            rows = source.execute(f"SELECT {names} FROM {old}")
            total = 0
            while batch := rows.fetchmany(BATCH):
                target.executemany(f"INSERT INTO {new} ({names}) VALUES ({marks})", batch)
                total += len(batch)
            counts[new] = total
            if (
                not sqlite and "id" in columns and new not in ("annuaire_professional",)
            ):  # the serial continues after the copied ids
                target.execute(
                    f"SELECT setval(pg_get_serial_sequence('{new}', 'id'), "
                    f"coalesce((SELECT max(id) FROM {new}), 0) + 1, false)"
                )
        for statement in indexes.values():
            target.execute(statement)
    return counts


def _flag_linked(target: Connection) -> None:
    with transaction(target):
        for table in ("annuaire_search_key", "annuaire_activity"):
            target.execute(
                f"UPDATE {table} SET linked = 1 WHERE professional_id IN (SELECT p.id FROM "
                "annuaire_account_link l JOIN annuaire_professional p "
                "ON p.national_id = l.national_id)"
            )
