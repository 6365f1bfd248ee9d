"""The export's drafts on disk: a SQLite file in the export's temp directory.

Memory stays bounded whatever the room's size: drafts are written as events arrive,
edits update their target's row, the « derniers N » selection and the placement of read
receipts are SQL, replied-to messages are joined from the same file, attachments are
recorded by path.  `HistorySpool.entries()` is a lazy view that reads the rows back
in timeline order as `Entry` objects — a fresh connection for each iteration, in the
iterating thread (the PDF is drawn in a worker thread).

The file holds decrypted messages: it is created 0600 in the export's own directory,
without journal, and deleted with that directory.
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bots.export.drafts import MEDIA_TYPES, Draft, Edit, quote_text
from bots.export.media import FetchedMedia, MediaSource
from bots.export.paging import EXPORT_MARK
from bots.export.transcript import Attachment, Entry, EntryKind, Quote

EARLIER_EXPORT = "export précédent de cette conversation : non joint"

BATCH = 256  # rows read at a time

_SCHEMA = """
CREATE TABLE events (            -- every event read, in timeline order
    seq INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE
);
CREATE TABLE drafts (            -- what the transcript shows; seq = its event's
    seq INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    sender TEXT NOT NULL,
    ts INTEGER NOT NULL,
    kind TEXT NOT NULL,
    content TEXT NOT NULL,       -- JSON, the latest edit's
    msgtype TEXT,
    edited INTEGER NOT NULL DEFAULT 0,
    reply_to TEXT,
    flag_text TEXT NOT NULL DEFAULT '',
    seen_by TEXT,                -- JSON list of display names
    media_size INTEGER,
    media_sha256 TEXT,
    media_path TEXT,
    media_unavailable TEXT
);
CREATE INDEX drafts_reply_to ON drafts (reply_to);
CREATE TABLE quotes (            -- replied-to messages outside the export, as fetched
    event_id TEXT PRIMARY KEY,
    sender TEXT,                 -- NULL: not found, no quote shown
    text TEXT
);
CREATE TABLE staged (            -- « derniers N »: events read newest first, replayed after
    seq INTEGER PRIMARY KEY,
    source TEXT NOT NULL
);
"""


def _connect(path: Path, *, read_only: bool = False) -> sqlite3.Connection:
    if read_only:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    else:
        connection = sqlite3.connect(path)
        connection.execute("PRAGMA journal_mode = OFF")  # a scratch file: nothing to recover
        connection.execute("PRAGMA synchronous = OFF")
    connection.execute("PRAGMA cache_size = -2048")  # 2 MiB per connection, about the default
    return connection


class HistorySpool:
    """Drafts written on the event loop's thread; read back by `entries()` anywhere."""

    def __init__(self, directory: Path) -> None:
        handle, name = tempfile.mkstemp(prefix="historique-", suffix=".sqlite", dir=directory)
        os.close(handle)  # mkstemp: 0600, a name no other export uses
        self.path = Path(name)
        self._db = _connect(self.path)
        self._db.executescript(_SCHEMA)
        self._seq = 0
        self._staged = 0

    def close(self) -> None:
        self._db.commit()
        self._db.close()

    def commit(self) -> None:
        self._db.commit()

    # -- reading the timeline --
    def add(self, event_id: str, item: Draft | Edit | None, *, shown: bool) -> None:
        """One event, oldest first; `shown`: a draft inside the exported period."""
        self._seq += 1
        self._db.execute(
            "INSERT OR REPLACE INTO events (seq, event_id) VALUES (?, ?)", (self._seq, event_id)
        )
        if isinstance(item, Edit):
            self._edit(item)
        elif isinstance(item, Draft) and shown:
            msgtype = item.content.get("msgtype")
            self._db.execute(
                "INSERT OR IGNORE INTO drafts (seq, event_id, sender, ts, kind, content, msgtype,"
                " reply_to, flag_text) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    self._seq,
                    item.event_id,
                    item.sender,
                    item.ts,
                    item.kind.value,
                    json.dumps(item.content),
                    msgtype if isinstance(msgtype, str) else None,
                    item.reply_to,
                    item.flag_text,
                ),
            )

    def _edit(self, edit: Edit) -> None:
        row = self._db.execute(
            "SELECT content FROM drafts WHERE event_id = ? AND sender = ?",
            (edit.target, edit.sender),
        ).fetchone()
        if row is None:
            return  # not exported, or someone else's message: the edit is ignored
        content = {**edit.content, "m.relates_to": json.loads(row[0]).get("m.relates_to")}
        msgtype = content.get("msgtype")
        self._db.execute(
            "UPDATE drafts SET content = ?, msgtype = ?, edited = 1 WHERE event_id = ?",
            (json.dumps(content), msgtype if isinstance(msgtype, str) else None, edit.target),
        )

    def stage(self, source: Mapping[str, Any]) -> None:
        """« derniers N »: an event read backwards, newest first, kept for `staged()`."""
        self._staged += 1
        self._db.execute(
            "INSERT INTO staged (seq, source) VALUES (?, ?)", (-self._staged, json.dumps(source))
        )

    def staged(self) -> Iterator[dict[str, Any]]:
        """The staged events oldest first, read in batches, then forgotten."""
        after = -self._staged - 1
        while True:
            rows = self._db.execute(
                "SELECT seq, source FROM staged WHERE seq > ? ORDER BY seq LIMIT ?", (after, BATCH)
            ).fetchall()
            if not rows:
                break
            after = rows[-1][0]
            for _, source in rows:
                yield json.loads(source)
        self._db.execute("DELETE FROM staged")
        self._staged = 0

    # -- resolving --
    def keep_last(self, count: int) -> None:
        """« derniers N »: drop what precedes the N-th last message (flag lines not counted)."""
        rows = self._db.execute(
            "SELECT seq FROM drafts WHERE kind != ? ORDER BY seq DESC LIMIT 2 OFFSET ?",
            (EntryKind.EVENT.value, count - 1),
        ).fetchall()
        if len(rows) == 2:  # more than N messages
            self._db.execute("DELETE FROM drafts WHERE seq < ?", (rows[0][0],))

    def place_receipts(
        self, own_user_id: str, receipts: Mapping[str, str], names: Mapping[str, str]
    ) -> None:
        """Each member's receipt goes under the last shown message at or before the one read
        (not their own message); « Vu par » lists names in alphabetical order."""
        for user_id, event_id in sorted(
            receipts.items(), key=lambda item: names.get(item[0], item[0]).lower()
        ):
            if user_id == own_user_id:
                continue
            row = self._db.execute(
                "SELECT seq, sender, seen_by FROM drafts WHERE kind != ? AND seq <= "
                "(SELECT seq FROM events WHERE event_id = ?) ORDER BY seq DESC LIMIT 1",
                (EntryKind.EVENT.value, event_id),
            ).fetchone()
            if row is None or row[1] == user_id:
                continue
            seen = [*json.loads(row[2] or "[]"), names.get(user_id, user_id)]
            self._db.execute(
                "UPDATE drafts SET seen_by = ? WHERE seq = ?", (json.dumps(seen), row[0])
            )

    def outside_replies(self) -> Iterator[str]:
        """Ids of replied-to messages neither exported nor fetched yet (`set_quote`), once each."""
        after = ""
        while True:
            rows = self._db.execute(
                "SELECT DISTINCT reply_to FROM drafts d WHERE reply_to > ?"
                " AND NOT EXISTS (SELECT 1 FROM drafts t WHERE t.event_id = d.reply_to)"
                " AND NOT EXISTS (SELECT 1 FROM quotes q WHERE q.event_id = d.reply_to)"
                " ORDER BY reply_to LIMIT ?",
                (after, BATCH),
            ).fetchall()
            if not rows:
                return
            after = rows[-1][0]
            for (event_id,) in rows:
                yield event_id

    def set_quote(self, event_id: str, quote: tuple[str, str] | None) -> None:
        """(sender, text) of a replied-to message outside the export; None: not found."""
        sender, text = quote if quote is not None else (None, None)
        self._db.execute(
            "INSERT OR REPLACE INTO quotes (event_id, sender, text) VALUES (?, ?, ?)",
            (event_id, sender, text),
        )

    def attachments(self) -> Iterator[tuple[int, MediaSource]]:
        """(row, source) of each attachment with a valid address, in timeline order. An
        earlier export's PDF (the bot's, marked ``EXPORT_MARK``) is a copy of this same
        conversation: listed in the transcript, never downloaded nor joined (each export
        carried all the earlier ones: 10, 20, 40 MB… in a 5-minute load, until one was over
        the homeserver's upload limit; issue 15)."""
        placeholders = ",".join("?" * len(MEDIA_TYPES))
        after = 0
        while True:
            rows = self._db.execute(
                f"SELECT seq, content FROM drafts WHERE seq > ? AND msgtype IN ({placeholders})"
                " ORDER BY seq LIMIT ?",
                (after, *sorted(MEDIA_TYPES), BATCH),
            ).fetchall()
            if not rows:
                return
            after = rows[-1][0]
            for seq, content in rows:
                fields = json.loads(content)
                if fields.get(EXPORT_MARK):
                    self.set_attachment(seq, None, EARLIER_EXPORT)
                    continue
                source = MediaSource.from_content(fields)
                if source is not None:
                    yield seq, source

    def set_attachment(self, seq: int, fetched: FetchedMedia | None, reason: str = "") -> None:
        if fetched is None:
            self._db.execute("UPDATE drafts SET media_unavailable = ? WHERE seq = ?", (reason, seq))
            return
        self._db.execute(
            "UPDATE drafts SET media_size = ?, media_sha256 = ?, media_path = ? WHERE seq = ?",
            (fetched.size, fetched.sha256, str(fetched.path), seq),
        )

    # -- reading back --
    def bounds(self) -> tuple[datetime | None, datetime | None]:
        """The first and last exported entries' times."""
        first = self._db.execute("SELECT ts FROM drafts ORDER BY seq LIMIT 1").fetchone()
        last = self._db.execute("SELECT ts FROM drafts ORDER BY seq DESC LIMIT 1").fetchone()
        return (_moment(first[0]) if first else None, _moment(last[0]) if last else None)

    def senders(self) -> set[str]:
        """Who wrote an exported message (flag lines aside): the transcript's participants."""
        rows = self._db.execute(
            "SELECT DISTINCT sender FROM drafts WHERE kind != ?", (EntryKind.EVENT.value,)
        ).fetchall()
        return {row[0] for row in rows}

    def entries(self, names: Mapping[str, str]) -> SpooledEntries:
        self._db.commit()
        count = self._db.execute("SELECT count(*) FROM drafts").fetchone()[0]
        return SpooledEntries(self.path, dict(names), int(count))


_ENTRY_ROWS = """
SELECT d.event_id, d.sender, d.ts, d.kind, d.content, d.edited, d.reply_to, d.flag_text,
       d.seen_by, d.media_size, d.media_sha256, d.media_path, d.media_unavailable,
       t.sender, t.kind, t.content, t.reply_to,
       q.event_id, q.sender, q.text
FROM drafts d
LEFT JOIN drafts t ON t.event_id = d.reply_to
LEFT JOIN quotes q ON q.event_id = d.reply_to
ORDER BY d.seq
"""


class SpooledEntries:
    """The export's entries, oldest first, read from the spool at each iteration.

    Re-iterable while the spool file exists (the export's temp directory), `len()` known;
    nothing is kept between iterations.  Each iteration opens its own read-only
    connection in the thread that iterates.
    """

    def __init__(self, path: Path, names: Mapping[str, str], count: int) -> None:
        self.path = path
        self.names = names
        self.count = count  # known without the file: `len()` works after it is removed

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[Entry]:
        connection = _connect(self.path, read_only=True)
        try:
            cursor = connection.execute(_ENTRY_ROWS)
            while rows := cursor.fetchmany(BATCH):
                for row in rows:
                    yield self._entry(row)
        finally:
            connection.close()

    def _entry(self, row: tuple[Any, ...]) -> Entry:
        (event_id, sender, ts, kind_value, content_json, edited, reply_to, flag_text) = row[:8]
        seen_by, media_size, media_sha256, media_path, media_unavailable = row[8:13]
        target_sender, target_kind, target_content, target_reply_to = row[13:17]
        outside_id, outside_sender, outside_text = row[17:20]
        names = self.names
        kind = EntryKind(kind_value)
        content: dict[str, Any] = json.loads(content_json)
        body = flag_text if kind is EntryKind.EVENT else content.get("body", "")
        formatted = content.get("formatted_body")
        if content.get("format") != "org.matrix.custom.html" or not isinstance(formatted, str):
            formatted = None
        quote = None
        if reply_to is not None and target_sender is not None:
            text = quote_text(EntryKind(target_kind), json.loads(target_content), target_reply_to)
            quote = Quote(names.get(target_sender, target_sender), text)
        elif outside_id is not None and outside_sender is not None:
            quote = Quote(names.get(outside_sender, outside_sender), outside_text or "")
        return Entry(
            event_id=event_id,
            sender=sender,
            sender_name=names.get(sender, sender),
            timestamp=_moment(ts),
            kind=kind,
            body=body if isinstance(body, str) else "",
            formatted_body=formatted,
            edited=bool(edited),
            quote=quote,
            attachment=_attachment(
                content, media_size, media_sha256, media_path, media_unavailable
            ),
            seen_by=tuple(json.loads(seen_by)) if seen_by else (),
        )


def _attachment(
    content: Mapping[str, Any],
    size: int | None,
    sha256: str | None,
    path: str | None,
    unavailable: str | None,
) -> Attachment | None:
    if content.get("msgtype") not in MEDIA_TYPES:
        return None
    raw_info = content.get("info")
    info: Mapping[str, Any] = raw_info if isinstance(raw_info, Mapping) else {}
    name = content.get("filename") or content.get("body") or "fichier"
    mimetype = str(info.get("mimetype") or "application/octet-stream")
    declared = info.get("size") if isinstance(info.get("size"), int) else None
    base = Attachment(str(name), mimetype, content.get("msgtype") == "m.image", declared)
    if MediaSource.from_content(content) is None:
        return replace(base, unavailable="fichier sans adresse valide")
    if unavailable is not None:
        return replace(base, unavailable=unavailable)
    if path is not None:
        return replace(base, size=size, sha256=sha256, path=Path(path))
    return base  # « sans pièces jointes »: described, not downloaded


def _moment(ts: int) -> datetime:
    return datetime.fromtimestamp(ts / 1000, UTC)
