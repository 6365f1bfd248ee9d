"""The bridge's SQLite file (``<var>/mail/bridge.sqlite3``, 0600), beside its Matrix ledger.

- ``mailboxes``: one per professional — the login, the password sealed by the vault, the
  Courriers room and space, the IMAP position (UIDVALIDITY, last UID posted) and the state
  shown by ``cercle status``;
- ``mails``: each mail posted (UIDVALIDITY, UID → the Matrix event), for exactly-once
  posting, replies (Message-ID, References) and ``!classer``;
- ``outgoing``: each mail sent from Matrix, keyed by the Matrix event that asked for it,
  with its state (``pending`` → ``submitting`` → ``sent`` → ``filed``, see ``outbound``).

No mail content is stored: subjects and bodies stay in the mailbox and the encrypted room.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field

from bots.matrix.ledger import now_ms
from bridges.mail.config import MailHosts
from deployment.conventions import has_row

_SCHEMA = """
CREATE TABLE IF NOT EXISTS mailboxes (
    owner TEXT PRIMARY KEY,           -- the professional's Matrix id
    address TEXT NOT NULL,            -- IMAP / SMTP login and sender address
    sealed_password BLOB NOT NULL,
    credentials_version INTEGER NOT NULL DEFAULT 1,
    room_id TEXT,
    space_id TEXT,
    uidvalidity INTEGER,
    last_uid INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL DEFAULT 'nouvelle',
    error TEXT,                       -- French, no server text in it
    refused_version INTEGER,          -- credentials_version whose login was refused
    last_mail_at INTEGER,             -- unix ms of the last mail posted
    updated_at INTEGER NOT NULL
    -- + imap_host, imap_port, smtp_host, smtp_port, smtp_security (_SERVER_COLUMNS):
    --   NULL for the operator's servers of the configuration
);
CREATE TABLE IF NOT EXISTS mails (
    owner TEXT NOT NULL,
    uidvalidity INTEGER NOT NULL,
    uid INTEGER NOT NULL,
    event_id TEXT NOT NULL,
    message_id TEXT,
    references_ TEXT NOT NULL DEFAULT '',
    posted_at INTEGER NOT NULL,
    PRIMARY KEY (owner, uidvalidity, uid)
);
CREATE INDEX IF NOT EXISTS mails_by_event ON mails(event_id);
CREATE INDEX IF NOT EXISTS mails_by_message_id ON mails(owner, message_id);
CREATE TABLE IF NOT EXISTS outgoing (
    event_id TEXT PRIMARY KEY,        -- the Matrix reply or !courrier command
    owner TEXT NOT NULL,
    message_id TEXT NOT NULL,
    state TEXT NOT NULL,              -- pending | submitting | sent | filed | refused
    raw BLOB,                         -- the composed mail until it is filed, then NULL
    updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS room_files (
    event_id TEXT PRIMARY KEY,        -- a file the owner posted in the Courriers room
    owner TEXT NOT NULL,
    content TEXT NOT NULL,            -- the m.file content (encrypted-attachment keys)
    used_by TEXT,                     -- the outgoing event that attached it
    posted_at INTEGER NOT NULL
);
"""


_SERVER_COLUMNS = (
    ("imap_host", "TEXT"),
    ("imap_port", "INTEGER"),
    ("smtp_host", "TEXT"),
    ("smtp_port", "INTEGER"),
    ("smtp_security", "TEXT"),
)


@dataclass(frozen=True)
class Mailbox:
    owner: str
    address: str
    sealed_password: bytes = field(repr=False)
    credentials_version: int
    room_id: str | None
    space_id: str | None
    uidvalidity: int | None
    last_uid: int
    state: str
    error: str | None
    refused_version: int | None
    last_mail_at: int | None
    imap_host: str | None = None  # None: the configured operator's servers
    imap_port: int | None = None
    smtp_host: str | None = None
    smtp_port: int | None = None
    smtp_security: str | None = None

    def hosts(self, default: MailHosts) -> MailHosts:
        if not self.imap_host or not self.smtp_host or not self.imap_port or not self.smtp_port:
            return default
        return MailHosts(
            self.imap_host,
            self.imap_port,
            self.smtp_host,
            self.smtp_port,
            self.smtp_security or "tls",
        )

    @property
    def login_refused(self) -> bool:
        return self.refused_version == self.credentials_version

    @property
    def connected(self) -> bool:
        """False once she disconnected it (the password is gone; room and history stay)."""
        return bool(self.sealed_password)


@dataclass(frozen=True)
class PostedMail:
    owner: str
    uidvalidity: int
    uid: int
    event_id: str
    message_id: str | None
    references: tuple[str, ...]


_MAILBOX_COLUMNS = (
    "owner, address, sealed_password, credentials_version, room_id, space_id, uidvalidity, "
    "last_uid, state, error, refused_version, last_mail_at, "
    + ", ".join(name for name, _ in _SERVER_COLUMNS)
)


class BridgeStore:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._db = conn
        self._db.executescript(_SCHEMA)
        have = {row[1] for row in self._db.execute("PRAGMA table_info(mailboxes)")}
        for name, kind in _SERVER_COLUMNS:  # files made before mailboxes had own servers
            if name not in have:
                self._db.execute(f"ALTER TABLE mailboxes ADD COLUMN {name} {kind}")

    # -- mailboxes --
    def save_credentials(
        self, owner: str, address: str, sealed: bytes, hosts: MailHosts | None = None
    ) -> None:
        """New or changed credentials: a refused login is forgotten (it is tried again).
        ``hosts``: her own servers, or None for the operator's."""
        servers = (
            (
                hosts.imap_host,
                hosts.imap_port,
                hosts.smtp_host,
                hosts.smtp_port,
                hosts.smtp_security,
            )
            if hosts
            else (None,) * 5
        )
        self._db.execute(
            "INSERT INTO mailboxes(owner, address, sealed_password, updated_at, imap_host, "
            "imap_port, smtp_host, smtp_port, smtp_security) VALUES(?,?,?,?,?,?,?,?,?) "
            "ON CONFLICT(owner) DO UPDATE SET address=excluded.address, "
            "sealed_password=excluded.sealed_password, "
            "credentials_version=credentials_version+1, state='nouvelle', error=NULL, "
            "updated_at=excluded.updated_at, imap_host=excluded.imap_host, "
            "imap_port=excluded.imap_port, smtp_host=excluded.smtp_host, "
            "smtp_port=excluded.smtp_port, smtp_security=excluded.smtp_security",
            (owner, address, sealed, now_ms(), *servers),
        )

    def disconnect(self, owner: str) -> None:
        """The sealed password erased; the room, its mails and the position are kept."""
        self._db.execute(
            "UPDATE mailboxes SET sealed_password=x'', credentials_version=credentials_version+1, "
            "state='déconnectée', error=NULL, updated_at=? WHERE owner=?",
            (now_ms(), owner),
        )

    def set_rooms(self, owner: str, room_id: str, space_id: str) -> None:
        self._db.execute(
            "UPDATE mailboxes SET room_id=?, space_id=?, updated_at=? WHERE owner=?",
            (room_id, space_id, now_ms(), owner),
        )

    def mailbox(self, owner: str) -> Mailbox | None:
        row = self._db.execute(
            f"SELECT {_MAILBOX_COLUMNS} FROM mailboxes WHERE owner=?", (owner,)
        ).fetchone()
        return Mailbox(*row) if row else None

    def mailboxes(self) -> list[Mailbox]:
        rows = self._db.execute(f"SELECT {_MAILBOX_COLUMNS} FROM mailboxes ORDER BY owner")
        return [Mailbox(*r) for r in rows.fetchall()]

    def mailbox_of_room(self, room_id: str) -> Mailbox | None:
        row = self._db.execute(
            f"SELECT {_MAILBOX_COLUMNS} FROM mailboxes WHERE room_id=?", (room_id,)
        ).fetchone()
        return Mailbox(*row) if row else None

    def set_state(self, owner: str, state: str, error: str | None = None) -> None:
        self._db.execute(
            "UPDATE mailboxes SET state=?, error=?, updated_at=? WHERE owner=?",
            (state, error, now_ms(), owner),
        )

    def mark_login_refused(self, owner: str, version: int) -> bool:
        """True the first time this credentials version is refused (notify once)."""
        cur = self._db.execute(
            "UPDATE mailboxes SET refused_version=?, state='connexion refusée', "
            "error='identifiant ou mot de passe refusé par le serveur', updated_at=? "
            "WHERE owner=? AND (refused_version IS NULL OR refused_version<>?)",
            (version, now_ms(), owner, version),
        )
        return cur.rowcount > 0

    def reset_position(self, owner: str, uidvalidity: int, last_uid: int) -> None:
        self._db.execute(
            "UPDATE mailboxes SET uidvalidity=?, last_uid=?, updated_at=? WHERE owner=?",
            (uidvalidity, last_uid, now_ms(), owner),
        )

    # -- mails posted --
    def posted(self, owner: str, uidvalidity: int, uid: int) -> bool:
        return has_row(
            self._db,
            "SELECT 1 FROM mails WHERE owner=? AND uidvalidity=? AND uid=?",
            (owner, uidvalidity, uid),
        )

    def posted_message_id(self, owner: str, message_id: str) -> bool:
        return has_row(
            self._db, "SELECT 1 FROM mails WHERE owner=? AND message_id=?", (owner, message_id)
        )

    def record_posted(self, mail: PostedMail) -> None:
        """The mail is in the room: remembered and the position moved, in one transaction."""
        with self._db:
            self._db.execute("BEGIN")
            self._db.execute(
                "INSERT INTO mails(owner, uidvalidity, uid, event_id, message_id, references_, "
                "posted_at) VALUES(?,?,?,?,?,?,?) ON CONFLICT DO NOTHING",
                (
                    mail.owner,
                    mail.uidvalidity,
                    mail.uid,
                    mail.event_id,
                    mail.message_id,
                    " ".join(mail.references),
                    now_ms(),
                ),
            )
            self._db.execute(
                "UPDATE mailboxes SET last_uid=max(last_uid, ?), last_mail_at=?, updated_at=? "
                "WHERE owner=? AND uidvalidity=?",
                (mail.uid, now_ms(), now_ms(), mail.owner, mail.uidvalidity),
            )

    def advance(self, owner: str, uidvalidity: int, uid: int) -> None:
        """A UID skipped (already posted under another UIDVALIDITY): the position moves."""
        self._db.execute(
            "UPDATE mailboxes SET last_uid=max(last_uid, ?), updated_at=? "
            "WHERE owner=? AND uidvalidity=?",
            (uid, now_ms(), owner, uidvalidity),
        )

    def mail_of_event(self, event_id: str) -> PostedMail | None:
        row = self._db.execute(
            "SELECT owner, uidvalidity, uid, event_id, message_id, references_ FROM mails "
            "WHERE event_id=?",
            (event_id,),
        ).fetchone()
        if row is None:
            return None
        return PostedMail(row[0], row[1], row[2], row[3], row[4], tuple(row[5].split()))

    def recent_mails(self, owner: str, limit: int) -> list[PostedMail]:
        rows = self._db.execute(
            "SELECT owner, uidvalidity, uid, event_id, message_id, references_ FROM mails "
            "WHERE owner=? ORDER BY posted_at DESC, uid DESC LIMIT ?",
            (owner, limit),
        ).fetchall()
        return [PostedMail(r[0], r[1], r[2], r[3], r[4], tuple(r[5].split())) for r in rows]

    def count_posted(self, owner: str) -> int:
        return int(
            self._db.execute("SELECT count(*) FROM mails WHERE owner=?", (owner,)).fetchone()[0]
        )

    # -- mails sent --
    def outgoing(self, event_id: str) -> tuple[str, str, bytes | None] | None:
        """(state, message id, raw) of the mail asked for by ``event_id``."""
        row = self._db.execute(
            "SELECT state, message_id, raw FROM outgoing WHERE event_id=?", (event_id,)
        ).fetchone()
        return (row[0], row[1], row[2]) if row else None

    def add_outgoing(self, event_id: str, owner: str, message_id: str, raw: bytes) -> None:
        self._db.execute(
            "INSERT INTO outgoing(event_id, owner, message_id, state, raw, updated_at) "
            "VALUES(?,?,?,'pending',?,?) ON CONFLICT DO NOTHING",
            (event_id, owner, message_id, raw, now_ms()),
        )

    def set_outgoing(self, event_id: str, state: str) -> None:
        raw_sql = ", raw=NULL" if state == "filed" else ""
        self._db.execute(
            f"UPDATE outgoing SET state=?{raw_sql}, updated_at=? WHERE event_id=?",
            (state, now_ms(), event_id),
        )

    def unfinished_outgoing(self) -> list[tuple[str, str]]:
        """(event id, owner) of the mails a crash left pending or unfiled."""
        rows = self._db.execute(
            "SELECT event_id, owner FROM outgoing WHERE state IN ('pending', 'submitting', 'sent') "
            "ORDER BY updated_at"
        )
        return [(r[0], r[1]) for r in rows.fetchall()]

    # -- files posted in the room, attached to the next mail --
    def add_room_file(self, event_id: str, owner: str, content_json: str) -> None:
        self._db.execute(
            "INSERT INTO room_files(event_id, owner, content, posted_at) VALUES(?,?,?,?) "
            "ON CONFLICT DO NOTHING",
            (event_id, owner, content_json, now_ms()),
        )

    def pending_room_files(self, owner: str, for_event: str) -> list[tuple[str, str]]:
        """Files not attached yet, or already attached to ``for_event`` (a replay)."""
        rows = self._db.execute(
            "SELECT event_id, content FROM room_files WHERE owner=? AND "
            "(used_by IS NULL OR used_by=?) ORDER BY posted_at",
            (owner, for_event),
        )
        return [(r[0], r[1]) for r in rows.fetchall()]

    def use_room_files(self, event_ids: list[str], for_event: str) -> None:
        self._db.executemany(
            "UPDATE room_files SET used_by=? WHERE event_id=?", [(for_event, e) for e in event_ids]
        )
