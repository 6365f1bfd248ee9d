"""What an export is made of: the room's entries, already decrypted and resolved.

`history.py` builds these from Matrix events; `layout.py` turns them into lines;
`pdf.py` draws them.  Plain frozen data, no I/O.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path


class EntryKind(StrEnum):
    MESSAGE = "message"  # m.text, m.image, m.file, …
    EMOTE = "emote"
    NOTICE = "notice"  # bot notices: lighter style
    REDACTED = "redacted"  # « message supprimé »
    UNDECRYPTABLE = "undecryptable"  # « message non déchiffrable »
    EVENT = "event"  # flags raised/cleared, membership: one italic line


@dataclass(frozen=True)
class Attachment:
    name: str
    mimetype: str
    is_image: bool
    size: int | None = None  # bytes of the plaintext
    sha256: str | None = None  # hex digest of the plaintext
    path: Path | None = None  # decrypted copy in a temp file; None when not downloaded
    unavailable: str | None = None  # French reason when the file could not be fetched


@dataclass(frozen=True)
class Quote:
    """The message a reply answers, shown above the reply."""

    sender_name: str
    text: str


@dataclass(frozen=True)
class Entry:
    event_id: str
    sender: str
    sender_name: str
    timestamp: datetime  # aware UTC
    kind: EntryKind
    body: str = ""
    formatted_body: str | None = None  # org.matrix.custom.html
    edited: bool = False
    quote: Quote | None = None
    attachment: Attachment | None = None
    seen_by: tuple[str, ...] = ()  # display names: « Vu par … »


@dataclass(frozen=True)
class Participant:
    user_id: str
    display_name: str
    profession: str | None = None


@dataclass(frozen=True)
class TranscriptHeader:
    room_label: str
    period_label: str
    exported_by: str
    exported_at: datetime  # aware; shown in Europe/Paris
    patient: str | None = None
    participants: tuple[Participant, ...] = field(default_factory=tuple)
    invited: tuple[Participant, ...] = field(default_factory=tuple)  # not joined: apart
    with_attachments: bool = True


class ContentDigest:
    """SHA-256 over the exported content, one canonical line per entry.

    Line: event id, sender, timestamp in ms, kind, text shown, attachment digest,
    separated by tabs (tabs and newlines in the text escaped), UTF-8.  Anyone with
    the room's history can recompute it and compare it with the PDF's last page.
    """

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self.messages = 0
        self.attachments = 0

    def add(self, entry: Entry, shown_text: str) -> None:
        millis = int(entry.timestamp.timestamp() * 1000)
        attachment = entry.attachment.sha256 if entry.attachment and entry.attachment.sha256 else ""
        text = shown_text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
        line = f"{entry.event_id}\t{entry.sender}\t{millis}\t{entry.kind}\t{text}\t{attachment}\n"
        self._hash.update(line.encode("utf-8"))
        if entry.kind is not EntryKind.EVENT:
            self.messages += 1
        if entry.attachment is not None:
            self.attachments += 1

    def hexdigest(self) -> str:
        return self._hash.hexdigest()
