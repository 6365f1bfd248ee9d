"""The directory's own SQLite schema of before issue 14 (``annuaire.db``, versions 1 and 2,
from ``dossier_service/directory/store.py`` at that time): the legacy tests build such a file
to check that an operator upgrading keeps their directory and account requests."""

# fmt: off
OLD_BULK_INDEXES = {
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

# fmt: on
OLD_V1 = _SCHEMA_V1 + ";".join(OLD_BULK_INDEXES.values()) + ";"
OLD_V2 = _SCHEMA_V2
