"""Pure model of a room's flags (urgent / request / to-handle): what the ``fr.cercle.flags``
state event holds, how the room name carries the markers, and the transitions.

No motif here: the motif is clinical text and only travels in the encrypted notice.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from deployment.conventions import PARIS

STATE_TYPE = "fr.cercle.flags"


class FlagKind(enum.Enum):
    URGENT = "urgent"
    REQUEST = "demande"
    TODO = "atraiter"

    @property
    def marker(self) -> str:
        return MARKERS[self]

    @property
    def label(self) -> str:
        return LABELS[self]

    @property
    def folder(self) -> str:
        return FOLDERS[self]


ORDER = (FlagKind.URGENT, FlagKind.REQUEST, FlagKind.TODO)
MARKERS = {FlagKind.URGENT: "🔴 ", FlagKind.REQUEST: "❓ ", FlagKind.TODO: "📌 "}
LABELS = {FlagKind.URGENT: "urgence", FlagKind.REQUEST: "demande", FlagKind.TODO: "à traiter"}
FOLDERS = {FlagKind.URGENT: "Urgences", FlagKind.REQUEST: "Demandes", FlagKind.TODO: "À traiter"}
# words accepted by `!fait <quoi>` (French and English)
KIND_WORDS = {
    "urgent": "urgent",
    "urgence": "urgent",
    "demande": "demande",
    "request": "demande",
    "atraiter": "atraiter",
    "todo": "atraiter",
}


class FlagError(Exception):
    """A refused transition, worded in French for the person."""


@dataclass(frozen=True)
class Flag:
    kind: FlagKind
    by: str
    at_ms: int
    assignee: str | None = None
    notice_event_id: str | None = None
    acknowledged_by: str | None = None
    acknowledged_at_ms: int | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"by": self.by, "at": self.at_ms}
        if self.assignee:
            out["assignee"] = self.assignee
        if self.notice_event_id:
            out["notice"] = self.notice_event_id
        if self.acknowledged_by:
            out["acknowledged_by"] = self.acknowledged_by
            out["acknowledged_at"] = self.acknowledged_at_ms
        return out

    @classmethod
    def from_json(cls, kind: FlagKind, data: Mapping[str, Any]) -> Flag | None:
        by, at = data.get("by"), data.get("at")
        if not isinstance(by, str) or not isinstance(at, int):
            return None

        def opt_str(key: str) -> str | None:
            v = data.get(key)
            return v if isinstance(v, str) else None

        ack_at = data.get("acknowledged_at")
        return cls(
            kind=kind,
            by=by,
            at_ms=at,
            assignee=opt_str("assignee"),
            notice_event_id=opt_str("notice"),
            acknowledged_by=opt_str("acknowledged_by"),
            acknowledged_at_ms=ack_at if isinstance(ack_at, int) else None,
        )


@dataclass(frozen=True)
class RoomFlags:
    flags: Mapping[FlagKind, Flag]

    @classmethod
    def empty(cls) -> RoomFlags:
        return cls({})

    @classmethod
    def from_state(cls, content: Mapping[str, Any] | None) -> RoomFlags:
        """Tolerant: unknown kinds and malformed entries are ignored."""
        raw = (content or {}).get("flags")
        if not isinstance(raw, Mapping):
            return cls.empty()
        flags: dict[FlagKind, Flag] = {}
        for kind in ORDER:
            entry = raw.get(kind.value)
            if isinstance(entry, Mapping):
                flag = Flag.from_json(kind, entry)
                if flag:
                    flags[kind] = flag
        return cls(flags)

    def to_state(self) -> dict[str, Any]:
        return {"flags": {k.value: self.flags[k].to_json() for k in ORDER if k in self.flags}}

    @property
    def kinds(self) -> tuple[FlagKind, ...]:
        return tuple(k for k in ORDER if k in self.flags)

    def get(self, kind: FlagKind) -> Flag | None:
        return self.flags.get(kind)

    def raise_flag(self, flag: Flag) -> RoomFlags:
        existing = self.flags.get(flag.kind)
        if existing:
            raise FlagError(
                f"Ce salon est déjà signalé « {flag.kind.label} » (par {existing.by}, "
                f"{format_paris(existing.at_ms)}). Pour le lever : !fait {flag.kind.value}"
            )
        return RoomFlags({**self.flags, flag.kind: flag})

    def clear(self, kind: FlagKind | None) -> tuple[RoomFlags, Flag]:
        """Clear ``kind``, or the only flag when ``kind`` is None."""
        if kind is None:
            if not self.flags:
                raise FlagError("Aucun signalement en cours sur ce salon.")
            if len(self.flags) > 1:
                names = ", ".join(k.value for k in self.kinds)
                raise FlagError(
                    f"Plusieurs signalements en cours ({names}) : précisez lequel, "
                    "par exemple !fait urgent"
                )
            kind = self.kinds[0]
        flag = self.flags.get(kind)
        if flag is None:
            raise FlagError(f"Aucun signalement « {kind.label} » en cours sur ce salon.")
        return RoomFlags({k: v for k, v in self.flags.items() if k is not kind}), flag

    def acknowledge(self, by: str, at_ms: int) -> tuple[RoomFlags, Flag]:
        flag = self.flags.get(FlagKind.URGENT)
        if flag is None:
            raise FlagError("Aucune urgence en cours sur ce salon.")
        if flag.acknowledged_by:
            raise FlagError(
                f"Urgence déjà prise en compte par {flag.acknowledged_by} "
                f"({format_paris(flag.acknowledged_at_ms or 0)})."
            )
        if by == flag.by:
            raise FlagError(
                "L'urgence doit être prise en compte par un autre membre que celui qui l'a signalée."
            )
        acked = replace(flag, acknowledged_by=by, acknowledged_at_ms=at_ms)
        return RoomFlags({**self.flags, FlagKind.URGENT: acked}), acked

    def with_notice(self, kind: FlagKind, event_id: str) -> RoomFlags:
        flag = self.flags[kind]
        return RoomFlags({**self.flags, kind: replace(flag, notice_event_id=event_id)})


# --- the room name carries the markers -----------------------------------------------


def strip_markers(name: str) -> str:
    """The room's own name, whatever markers lead it (in any order)."""
    changed = True
    while changed:
        changed = False
        for marker in MARKERS.values():
            if name.startswith(marker):
                name = name[len(marker) :]
                changed = True
            elif name.startswith(marker.strip()):  # a marker whose space was removed
                name = name[len(marker.strip()) :].lstrip()
                changed = True
    return name


def name_with_markers(name: str, flags: RoomFlags) -> str:
    base = strip_markers(name)
    return "".join(k.marker for k in flags.kinds) + base


def format_paris(at_ms: int) -> str:
    """A UTC timestamp shown in Europe/Paris, French style: 25/11/2026 à 18:05."""
    moment = datetime.fromtimestamp(at_ms / 1000, tz=UTC).astimezone(PARIS)
    return moment.strftime("%d/%m/%Y à %H:%M")
