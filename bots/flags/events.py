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
from typing import Any, Protocol

from bots.flags.model import FlagKind


@dataclass(frozen=True, kw_only=True)
class _Raise:
    room_id: str
    kind: FlagKind
    by: str
    at_ms: int
    motif: str | None
    assignee: str | None
    command_event_id: str


@dataclass(frozen=True, kw_only=True)
class _Clear:
    room_id: str
    kind: FlagKind
    by: str
    command_event_id: str


@dataclass(frozen=True, kw_only=True)
class _Failure:
    room_id: str
    kind: FlagKind
    command_event_id: str


@dataclass(frozen=True, kw_only=True)
class FlagRaising(_Raise):
    """A flag is about to be raised (told before its notice and its state)."""

    def done(self) -> FlagRaised:
        return FlagRaised(**vars(self))

    def failed(self) -> FlagNotRaised:
        return FlagNotRaised(**_failure(self))


@dataclass(frozen=True, kw_only=True)
class FlagRaised(_Raise):
    """The flag's state is saved (the first run, or a replay finishing it)."""


@dataclass(frozen=True, kw_only=True)
class FlagNotRaised(_Failure):
    """Sending the notice or saving the state failed: nothing was raised."""


@dataclass(frozen=True, kw_only=True)
class FlagClearing(_Clear):
    """A flag is about to be cleared (told before its state)."""

    def done(self) -> FlagCleared:
        return FlagCleared(**vars(self))

    def failed(self) -> FlagNotCleared:
        return FlagNotCleared(**_failure(self))


@dataclass(frozen=True, kw_only=True)
class FlagCleared(_Clear):
    """The flag's state is cleared (the first run, or a replay finishing it)."""


@dataclass(frozen=True, kw_only=True)
class FlagNotCleared(_Failure):
    """Saving the state failed: the flag is still raised."""


def _failure(change: _Raise | _Clear) -> dict[str, Any]:
    return {
        "room_id": change.room_id,
        "kind": change.kind,
        "command_event_id": change.command_event_id,
    }


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
