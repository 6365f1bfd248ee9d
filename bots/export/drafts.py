"""Timeline events read as export drafts: what each event becomes in the transcript (pure).

An event is a message draft (« modifié », receipts and attachment still to come), an
edit of an earlier draft (m.replace by the same sender), a flag change line
(`fr.cercle.flags`), or nothing shown.  `TimelineReader` keeps what must be known
across events — display names from membership events, the room's flags — all bounded
by the room's members, not by its history.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bots.export.paging import SHOWN_TYPES
from bots.export.transcript import EntryKind
from bots.flags.model import LABELS, STATE_TYPE, RoomFlags

MEDIA_TYPES = frozenset({"m.image", "m.file", "m.video", "m.audio"})


@dataclass
class Draft:
    """An entry being built: edits, receipts, quote and attachment still to come."""

    event_id: str
    sender: str
    ts: int
    kind: EntryKind
    content: dict[str, Any] = field(default_factory=dict)
    reply_to: str | None = None
    flag_text: str = ""


@dataclass(frozen=True)
class Edit:
    """m.replace: the target's content becomes `content` when the sender is the same."""

    target: str
    sender: str
    content: dict[str, Any]


def draft_of(source: Mapping[str, Any]) -> Draft | Edit | None:
    """What a shown event (message, encrypted, sticker) is; None for everything else."""
    event_id, sender, ts = source["event_id"], source["sender"], source["origin_server_ts"]
    etype = source.get("type")
    content = source.get("content") or {}
    unsigned = source.get("unsigned") or {}
    if etype not in SHOWN_TYPES:
        return None
    if "redacted_because" in unsigned or (not content and etype == "m.room.message"):
        return Draft(event_id, sender, ts, EntryKind.REDACTED)
    if source.get("_undecryptable") or etype == "m.room.encrypted":
        if not content:
            return Draft(event_id, sender, ts, EntryKind.REDACTED)
        return Draft(event_id, sender, ts, EntryKind.UNDECRYPTABLE)
    relates = content.get("m.relates_to") or {}
    if not isinstance(relates, Mapping):
        relates = {}
    if relates.get("rel_type") == "m.replace":
        new = content.get("m.new_content")
        target = relates.get("event_id")
        if isinstance(new, Mapping) and isinstance(target, str):
            return Edit(target, sender, dict(new))
        return None
    msgtype = content.get("msgtype")
    kind = {"m.notice": EntryKind.NOTICE, "m.emote": EntryKind.EMOTE}.get(
        msgtype if isinstance(msgtype, str) else "", EntryKind.MESSAGE
    )
    reply = relates.get("m.in_reply_to")
    reply_to = reply.get("event_id") if isinstance(reply, Mapping) else None
    return Draft(
        event_id,
        sender,
        ts,
        kind,
        dict(content),
        reply_to=reply_to if isinstance(reply_to, str) else None,
    )


def quote_text(kind: EntryKind, content: Mapping[str, Any], reply_to: str | None) -> str:
    """The replied-to message as quoted above a reply: one line, its own quote removed."""
    if kind is EntryKind.REDACTED:
        return "message supprimé"
    if kind is EntryKind.UNDECRYPTABLE:
        return "message non déchiffrable"
    body = content.get("body", "")
    if not isinstance(body, str):
        return ""
    lines = body.split("\n")
    if reply_to and lines and lines[0].startswith(">"):
        while lines and lines[0].startswith(">"):
            lines.pop(0)
    return " ".join(" ".join(lines).split())


def flag_change(before: RoomFlags, after: RoomFlags, names: Mapping[str, str]) -> str:
    """« Signalement « urgence » posé par Alice », « Signalement « demande » levé »."""
    changes = []
    for kind in after.kinds:
        flag = after.get(kind)
        if kind not in before.kinds and flag is not None:
            changes.append(f"signalement « {LABELS[kind]} » posé par {names.get(flag.by, flag.by)}")
    for kind in before.kinds:
        if kind not in after.kinds:
            changes.append(f"signalement « {LABELS[kind]} » levé")
    if not changes:
        return ""
    text = ", ".join(changes)
    return text[0].upper() + text[1:]


def in_period(ts: int, since: datetime | None, until: datetime | None) -> bool:
    if since is not None and ts < since.timestamp() * 1000:
        return False
    return not (until is not None and ts >= until.timestamp() * 1000)


class TimelineReader:
    """Reads events oldest first; `names` (user id -> display name) is filled on the way."""

    def __init__(self, names: MutableMapping[str, str]) -> None:
        self.names = names
        self._flags = RoomFlags.empty()
        self._flags_known = False

    def read(self, source: Mapping[str, Any]) -> Draft | Edit | None:
        etype = source.get("type")
        content = source.get("content") or {}
        if etype == "m.room.member":
            name = content.get("displayname")
            if isinstance(name, str) and name:
                self.names.setdefault(str(source.get("state_key", source["sender"])), name)
        if etype == STATE_TYPE and "state_key" in source:
            new_flags = RoomFlags.from_state(content)
            text = ""
            if self._flags_known or new_flags.kinds:
                text = flag_change(self._flags, new_flags, self.names)
            self._flags, self._flags_known = new_flags, True
            if text:
                event_id, sender = source["event_id"], source["sender"]
                ts = source["origin_server_ts"]
                return Draft(event_id, sender, ts, EntryKind.EVENT, flag_text=text)
            return None
        return draft_of(source)
