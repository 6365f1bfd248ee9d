"""The directory's rows in the dossier's database: opening a connection, links to accounts.

The tables are declared in :mod:`dossier_service.models.directory` and created by Alembic
(``dossier_service/migrations``); a directory kept in its own ``annuaire.db`` before issue 14
is copied in once by :mod:`.legacy`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .database import Connection, connect, is_sqlite

__all__ = ["Connection", "bulk_indexes", "connect", "legacy_database_path", "save_link"]


def bulk_indexes(conn: Connection) -> dict[str, str]:
    """name -> ``CREATE INDEX`` of the secondary indexes a first bulk import drops and
    rebuilds, compiled from the models for this connection's engine (one declaration).
    The models are imported here, not at the top: the Synapse module imports this package."""
    from sqlalchemy.dialects import postgresql, sqlite
    from sqlalchemy.schema import CreateIndex

    from dossier_service.models.directory import BULK_INDEXES as _BULK_INDEX_NAMES
    from dossier_service.models.directory import Activity, SearchKey

    dialect = sqlite.dialect() if is_sqlite(conn) else postgresql.dialect()  # type: ignore[no-untyped-call]
    statements = {}
    for table in (SearchKey.__table__, Activity.__table__):  # type: ignore[attr-defined]
        for index in table.indexes:
            if index.name in _BULK_INDEX_NAMES:
                sql = str(CreateIndex(index, if_not_exists=True).compile(dialect=dialect))
                statements[str(index.name)] = sql
    return statements


def mark_linked(conn: Connection, national_id: str, linked: bool) -> None:
    """Flag (or unflag) a professional's search rows as linked to a Matrix account.
    The caller owns the transaction (with the ``annuaire_account_link`` change)."""
    flag = 1 if linked else 0
    for table in ("annuaire_search_key", "annuaire_activity"):
        conn.execute(
            f"UPDATE {table} SET linked = ? WHERE professional_id IN "
            "(SELECT id FROM annuaire_professional WHERE national_id = ?)",
            (flag, national_id),
        )


def legacy_database_path(section: Mapping[str, Any], var_dir: Path) -> Path:
    """Where a directory of before issue 14 kept its own SQLite file: ``annuaire.database``
    of the profile, default ``<var>/annuaire/annuaire.db``."""
    configured = section.get("database") if section else None
    return Path(configured) if configured else Path(var_dir) / "annuaire" / "annuaire.db"


def save_link(conn: Connection, mxid: str, national_id: str, *, source: str, at: str) -> None:
    """Record ``mxid`` as the account of the professional ``national_id`` and flag that
    professional's search rows; one the account was linked to before loses its flag. The
    caller owns the transaction."""
    previous = conn.execute(
        "SELECT national_id FROM annuaire_account_link WHERE mxid = ?", (mxid,)
    ).fetchone()
    if previous and previous[0] != national_id:
        mark_linked(conn, previous[0], False)
    conn.execute(
        "INSERT INTO annuaire_account_link (mxid, national_id, source, linked_at) "
        "VALUES (?,?,?,?) ON CONFLICT(mxid) DO UPDATE SET national_id=excluded.national_id, "
        "source=excluded.source, linked_at=excluded.linked_at",
        (mxid, national_id, source, at),
    )
    mark_linked(conn, national_id, True)
