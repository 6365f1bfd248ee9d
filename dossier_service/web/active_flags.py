"""Pure: the urgency / request / to-handle flags in force, read from the liaison notebook.

The bot writes every flag raised or cleared in a room into the file's notebook (kind
``signalement``, ``bots.dossier_link.service.FlagJournal``): « Signalement « urgence » par @x le
25/11/2026 à 14:05[, à traiter par @y][ : motif] » and « Signalement « urgence » levé par
@x le … ». The latest entry of each kind tells whether the flag is in force; the file's
header shows those that are (a test pins this reading to the bot's own wording).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

_ENTRY = re.compile(
    r"^Signalement « (?P<label>[^»]+?) » (?P<cleared>levé )?par (?P<by>\S+) le "
    r"[0-9/]+(?: à [0-9:]+)?(?:, à traiter par (?P<assignee>\S+))?(?: : (?P<motif>.*))?$",
    re.S,
)


class FlagEntry(Protocol):
    kind: str
    text: str
    created_at: datetime


@dataclass(frozen=True)
class ActiveFlag:
    label: str  # « urgence », « demande », « à traiter »
    by: str
    at: datetime
    motif: str = ""
    assignee: str | None = None


def active_flags(entries: Iterable[FlagEntry]) -> list[ActiveFlag]:
    """The flags in force, oldest raised first; ``entries`` in any order."""
    state: dict[str, ActiveFlag | None] = {}
    for entry in sorted(entries, key=lambda e: e.created_at):
        found = _ENTRY.match(entry.text) if entry.kind == "signalement" else None
        if found is None:
            continue
        label = found["label"]
        if found["cleared"]:
            state[label] = None
        else:
            state[label] = ActiveFlag(
                label,
                found["by"],
                entry.created_at,
                (found["motif"] or "").strip(),
                found["assignee"],
            )
    return sorted((f for f in state.values() if f is not None), key=lambda f: f.at)
