"""The directory's own SQLite database: schema created and versioned here (PRAGMA user_version).

Default file ``<var>/annuaire/annuaire.db`` (config ``annuaire.database``). The
national extract is imported into ``professional`` / ``activity``; ``search_key`` holds one
row per (name token x place of practice) so that a name prefix together with a place,
profession or specialty is one range scan of a covering index; ``commune`` is the gazetteer
the query parser uses. A key's token is "<name token> <the other name>" ("martin marie",
"marie martin"): one range scan answers "martin", "mar", "martin marie" and "marie mart". ``account_link``, ``account_request``, ``activation`` and ``audit``
belong to account requests.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from deployment.conventions import sqlite_pragmas

SCHEMA_VERSION = 2

# secondary indexes dropped before a first bulk import and rebuilt after it
BULK_INDEXES = {
    "ix_key_token": "CREATE INDEX IF NOT EXISTS ix_key_token ON search_key("
    "token, dept, commune_code, postcode, profession_code, specialty_code, mode_code)",
    "ix_key_place": "CREATE INDEX IF NOT EXISTS ix_key_place ON search_key("
    "dept, token, commune_code, postcode, profession_code, specialty_code, mode_code)",
    "ix_activity_place": "CREATE INDEX IF NOT EXISTS ix_activity_place ON activity("
    "dept, profession_code, commune_code, postcode, specialty_code, mode_code, professional_id)",
}

_SCHEMA_V1 = """
CREATE TABLE import_run (
    id INTEGER PRIMARY KEY,
    file_name TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    lines INTEGER NOT NULL DEFAULT 0,
    added INTEGER NOT NULL DEFAULT 0,
    updated INTEGER NOT NULL DEFAULT 0,
    unchanged INTEGER NOT NULL DEFAULT 0,
    deactivated INTEGER NOT NULL DEFAULT 0,
    rejected INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE professional (
    id INTEGER PRIMARY KEY,
    national_id TEXT NOT NULL UNIQUE,
    id_type TEXT NOT NULL,
    civility TEXT NOT NULL,
    last_name TEXT NOT NULL,
    first_name TEXT NOT NULL,
    profession_code TEXT NOT NULL,
    profession TEXT NOT NULL,
    sort_key TEXT NOT NULL,
    content_hash BLOB NOT NULL,
    seen_run INTEGER NOT NULL,
    active INTEGER NOT NULL DEFAULT 1,
    updated_at TEXT NOT NULL
);
CREATE TABLE activity (
    id INTEGER PRIMARY KEY,
    professional_id INTEGER NOT NULL REFERENCES professional(id),
    profession_code TEXT NOT NULL,
    specialty_code TEXT NOT NULL,
    specialty TEXT NOT NULL,
    mode_code TEXT NOT NULL,
    mode TEXT NOT NULL,
    structure TEXT NOT NULL,
    address TEXT NOT NULL,
    postcode TEXT NOT NULL,
    commune_code TEXT NOT NULL,
    city TEXT NOT NULL,
    dept TEXT NOT NULL,
    phone TEXT NOT NULL,
    email TEXT NOT NULL
);
CREATE INDEX ix_activity_professional ON activity(professional_id);
CREATE TABLE search_key (
    professional_id INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    token TEXT NOT NULL,
    dept TEXT NOT NULL,
    commune_code TEXT NOT NULL,
    postcode TEXT NOT NULL,
    profession_code TEXT NOT NULL,
    specialty_code TEXT NOT NULL,
    mode_code TEXT NOT NULL,
    PRIMARY KEY (professional_id, seq)
) WITHOUT ROWID;
CREATE TABLE commune (
    commune_code TEXT NOT NULL,
    postcode TEXT NOT NULL,
    dept TEXT NOT NULL,
    name TEXT NOT NULL,
    name_key TEXT NOT NULL,
    PRIMARY KEY (commune_code, postcode)
) WITHOUT ROWID;
CREATE TABLE account_link (
    mxid TEXT PRIMARY KEY,
    national_id TEXT NOT NULL UNIQUE,
    source TEXT NOT NULL,
    linked_at TEXT NOT NULL
);
CREATE TABLE account_request (
    id INTEGER PRIMARY KEY,
    created_at TEXT NOT NULL,
    status TEXT NOT NULL,
    last_name TEXT NOT NULL,
    first_name TEXT NOT NULL,
    identifier TEXT NOT NULL,
    profession TEXT NOT NULL,
    structure TEXT NOT NULL,
    email TEXT NOT NULL,
    phone TEXT NOT NULL,
    consent_at TEXT NOT NULL,
    match TEXT NOT NULL,
    match_detail TEXT NOT NULL,
    national_id TEXT,
    decided_at TEXT,
    decided_by TEXT,
    refusal_reason TEXT,
    mxid TEXT
);
CREATE INDEX ix_request_status ON account_request(status, id);
CREATE TABLE activation (
    token_hash TEXT PRIMARY KEY,
    request_id INTEGER NOT NULL REFERENCES account_request(id),
    mxid TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at TEXT
);
CREATE TABLE audit (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '{}'
);
"""

# v2: professionals linked to a Matrix account are flagged on their search rows, with small
# partial indexes, so that "linked accounts first" costs a scan of the linked rows only
_SCHEMA_V2 = """
ALTER TABLE search_key ADD COLUMN linked INTEGER NOT NULL DEFAULT 0;
ALTER TABLE activity ADD COLUMN linked INTEGER NOT NULL DEFAULT 0;
CREATE INDEX ix_key_linked ON search_key(
    token, dept, commune_code, postcode, profession_code, specialty_code, mode_code)
    WHERE linked = 1;
CREATE INDEX ix_activity_linked ON activity(
    dept, profession_code, commune_code, postcode, specialty_code, mode_code, professional_id)
    WHERE linked = 1;
UPDATE search_key SET linked = 1 WHERE professional_id IN (
    SELECT p.id FROM account_link l JOIN professional p ON p.national_id = l.national_id);
UPDATE activity SET linked = 1 WHERE professional_id IN (
    SELECT p.id FROM account_link l JOIN professional p ON p.national_id = l.national_id);
"""

_MIGRATIONS: dict[int, str] = {
    1: _SCHEMA_V1 + ";".join(BULK_INDEXES.values()) + ";",
    2: _SCHEMA_V2,
}


def mark_linked(conn: sqlite3.Connection, national_id: str, linked: bool) -> None:
    """Flag (or unflag) a professional's search rows as linked to a Matrix account.
    The caller owns the transaction (with the ``account_link`` change)."""
    flag = 1 if linked else 0
    for table in ("search_key", "activity"):
        conn.execute(
            f"UPDATE {table} SET linked = ? WHERE professional_id IN "
            "(SELECT id FROM professional WHERE national_id = ?)",
            (flag, national_id),
        )


class SchemaError(RuntimeError):
    pass


def database_path(section: Mapping[str, Any], var_dir: Path) -> Path:
    """``annuaire.database`` from the profile, default ``<var>/annuaire/annuaire.db``."""
    configured = section.get("database") if section else None
    return Path(configured) if configured else Path(var_dir) / "annuaire" / "annuaire.db"


def connect(path: Path | str, *, check_same_thread: bool = True) -> sqlite3.Connection:
    """Open (creating it if needed) and migrate the directory database."""
    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=check_same_thread)
    sqlite_pragmas(conn, busy_timeout_ms=10000, foreign_keys=True)
    conn.execute("PRAGMA cache_size=-65536")
    migrate(conn)
    return conn


def migrate(conn: sqlite3.Connection) -> None:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise SchemaError(
            f"Base de l'annuaire en version {version}, plus récente que ce programme "
            f"({SCHEMA_VERSION})."
        )
    while version < SCHEMA_VERSION:
        version += 1
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _MIGRATIONS[version].split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version={version}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


def save_link(
    conn: sqlite3.Connection, mxid: str, national_id: str, *, source: str, at: str
) -> None:
    """Record ``mxid`` as the account of the professional ``national_id`` and flag that
    professional's search rows; one the account was linked to before loses its flag. The
    caller owns the transaction."""
    previous = conn.execute(
        "SELECT national_id FROM account_link WHERE mxid = ?", (mxid,)
    ).fetchone()
    if previous and previous[0] != national_id:
        mark_linked(conn, previous[0], False)
    conn.execute(
        "INSERT INTO account_link (mxid, national_id, source, linked_at) VALUES (?,?,?,?) "
        "ON CONFLICT(mxid) DO UPDATE SET national_id=excluded.national_id, "
        "source=excluded.source, linked_at=excluded.linked_at",
        (mxid, national_id, source, at),
    )
    mark_linked(conn, national_id, True)
