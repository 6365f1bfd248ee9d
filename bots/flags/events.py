"""What the flag service tells its observers (the liaison notebook, the activity extraction):
one frozen event per step of a raise, a clear or an acknowledgement.

Observers implement ``FlagObserver.on_flag`` and ``match`` on the event's class: a hook
misnamed or an event misspelt is a mypy error, not an observer silently skipped.

``FlagRaising`` and ``FlagClearing`` are told *before* the room's state changes, and a
failure of an observer stops the command (nothing is changed yet: the liaison notebook's
held entry must exist before the change, see ``bots.dossier_link.service.FlagJournal``).
Every other event is told once the change is done (or failed): an observer's failure is
logged with a reference, the command goes on. A command replayed after a crash tells the
same events as the first run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from bots.flags.model import FlagKind


@dataclass(frozen=True, kw_only=True)
class FlagRaising:
    """A flag is about to be raised (told before its notice and its state)."""

    room_id: str
    kind: FlagKind
    by: str
    at_ms: int
    motif: str | None
    assignee: str | None
    command_event_id: str

    def done(self) -> FlagRaised:
        return FlagRaised(
            room_id=self.room_id,
            kind=self.kind,
            by=self.by,
            at_ms=self.at_ms,
            motif=self.motif,
            assignee=self.assignee,
            command_event_id=self.command_event_id,
        )

    def failed(self) -> FlagNotRaised:
        return FlagNotRaised(
            room_id=self.room_id, kind=self.kind, command_event_id=self.command_event_id
        )


@dataclass(frozen=True, kw_only=True)
class FlagRaised:
    """The flag's state is saved (the first run, or a replay finishing it)."""

    room_id: str
    kind: FlagKind
    by: str
    at_ms: int
    motif: str | None
    assignee: str | None
    command_event_id: str


@dataclass(frozen=True, kw_only=True)
class FlagNotRaised:
    """Sending the notice or saving the state failed: nothing was raised."""

    room_id: str
    kind: FlagKind
    command_event_id: str


@dataclass(frozen=True, kw_only=True)
class FlagClearing:
    """A flag is about to be cleared (told before its state)."""

    room_id: str
    kind: FlagKind
    by: str
    command_event_id: str

    def done(self) -> FlagCleared:
        return FlagCleared(
            room_id=self.room_id, kind=self.kind, by=self.by, command_event_id=self.command_event_id
        )

    def failed(self) -> FlagNotCleared:
        return FlagNotCleared(
            room_id=self.room_id, kind=self.kind, command_event_id=self.command_event_id
        )


@dataclass(frozen=True, kw_only=True)
class FlagCleared:
    """The flag's state is cleared (the first run, or a replay finishing it)."""

    room_id: str
    kind: FlagKind
    by: str
    command_event_id: str


@dataclass(frozen=True, kw_only=True)
class FlagNotCleared:
    """Saving the state failed: the flag is still raised."""

    room_id: str
    kind: FlagKind
    command_event_id: str


@dataclass(frozen=True, kw_only=True)
class FlagAcknowledged:
    """Someone took the urgent flag raised by ``flag_by`` at ``flag_at_ms`` into account."""

    room_id: str
    by: str
    at_ms: int
    flag_by: str
    flag_at_ms: int
    kind: FlagKind = FlagKind.URGENT


# told before the change: an observer's failure stops the command
FlagChange = FlagRaising | FlagClearing
# told once the change is done or failed: an observer's failure is only logged
FlagOutcome = FlagRaised | FlagNotRaised | FlagCleared | FlagNotCleared | FlagAcknowledged
FlagEvent = FlagChange | FlagOutcome


class FlagObserver(Protocol):
    async def on_flag(self, event: FlagEvent) -> None: ...
