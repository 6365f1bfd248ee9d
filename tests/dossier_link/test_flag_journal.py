"""The flag service tells its observers typed events, and the liaison notebook's journal
follows them in the real durable outbox: held before the change, released once it is done,
forgotten when it failed. Matrix is faked (no Synapse): what is checked is the contract
between ``bots.flags.service`` and its observers, which the end-to-end tests
(``test_e2e_flag_journal_crash``, ``tests/bots/test_bot_flags``) exercise through a server."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from bots.dossier_link.awaiting_accounts import AwaitingAccounts
from bots.dossier_link.membership import CircleMembership
from bots.dossier_link.service import FlagJournal
from bots.flags.events import (
    FlagClearing,
    FlagEvent,
    FlagNotRaised,
    FlagRaised,
    FlagRaising,
)
from bots.flags.model import STATE_TYPE, FlagKind
from bots.flags.service import FlagService
from bots.matrix.room_state import RoomStateCache
from bots.outbox import Outbox, OutboxWorker, idempotency_key, now_ms, open_outbox_database

ROOM, NURSE, DOCTOR = "!r:t", "@ide:t", "@mt:t"


class FakeIO:
    """The room's state in a dict; notices counted; ``fail_put``: the server refuses."""

    def __init__(self) -> None:
        self.state: dict[tuple[str, str], dict[str, Any]] = {}
        self.notices: list[str] = []
        self.fail_put = False

    async def get_state(self, room_id: str, event_type: str) -> dict[str, Any] | None:
        return self.state.get((room_id, event_type))

    async def put_state(self, room_id: str, event_type: str, content: dict[str, Any]) -> None:
        if self.fail_put:
            raise ConnectionError("refused")
        self.state[(room_id, event_type)] = content

    async def send_notice(self, room_id: str, plain: str, body: str, **_: Any) -> str:
        self.notices.append(plain)
        return f"$notice{len(self.notices)}"


class Folders:
    async def sync_room(self, *_: Any) -> None:
        return None


class Recorder:
    def __init__(self) -> None:
        self.events: list[FlagEvent] = []

    async def on_flag(self, event: FlagEvent) -> None:
        self.events.append(event)


class FailsOn:
    def __init__(self, kind: type[Any]) -> None:
        self.kind = kind

    async def on_flag(self, event: FlagEvent) -> None:
        if isinstance(event, self.kind):
            raise RuntimeError("Mme Dupont")  # exception text: never in the log line


@pytest.fixture
def outbox(tmp_path: Path) -> Outbox:
    return Outbox(open_outbox_database(tmp_path / "outbox.sqlite3"), tmp_path / "blobs")


def flag_service(io: FakeIO) -> FlagService:
    client = SimpleNamespace(rooms={}, user_id="@bot:t")
    escalator = SimpleNamespace(set_notify=lambda notify: None)
    return FlagService(
        client,  # type: ignore[arg-type]
        io,  # type: ignore[arg-type]
        RoomStateCache(),
        Folders(),  # type: ignore[arg-type]
        escalator,  # type: ignore[arg-type]
        server_name="t",
    )


def journal(outbox: Outbox) -> FlagJournal:
    worker = OutboxWorker(outbox, deliver=lambda item: None)  # type: ignore[arg-type,return-value]
    links = SimpleNamespace(is_patient_room=lambda room_id: room_id == ROOM)
    awaiting = AwaitingAccounts(sqlite3.connect(":memory:"))
    membership = CircleMembership(links, worker, awaiting)  # type: ignore[arg-type]
    sync = SimpleNamespace(links=links, membership=membership, outbox=outbox, worker=worker)
    return FlagJournal(sync)  # type: ignore[arg-type]


async def raise_request(flags: FlagService, event_id: str = "$cmd1") -> None:
    await flags.raise_flag(
        ROOM,
        FlagKind.REQUEST,
        by=NURSE,
        at_ms=1_000,
        motif="Ordonnance ?",
        assignee=None,
        command_event_id=event_id,
    )


async def test_a_raise_and_a_clear_are_told_as_typed_events_and_noted_once_done(
    outbox: Outbox,
) -> None:
    io, seen = FakeIO(), Recorder()
    flags = flag_service(io)
    flags.observers += [journal(outbox), seen]

    await raise_request(flags)
    raising = FlagRaising(
        room_id=ROOM,
        kind=FlagKind.REQUEST,
        by=NURSE,
        at_ms=1_000,
        motif="Ordonnance ?",
        assignee=None,
        command_event_id="$cmd1",
    )
    assert seen.events == [raising, raising.done()]
    raised = outbox.get(idempotency_key("$cmd1", "flag-raised"))
    assert raised is not None and raised.next_attempt_ms == 0  # released: due now
    assert raised.payload["text"].startswith("Signalement « demande » par @ide:t le ")
    assert raised.payload["text"].endswith(" : Ordonnance ?")

    await raise_request(flags)  # the same command replayed after a kill: told done again
    assert seen.events[2:] == [raising.done()]
    assert outbox.pending_count() == 1

    await flags.clear_flag(ROOM, FlagKind.REQUEST, by=DOCTOR, command_event_id="$cmd2")
    clearing = FlagClearing(
        room_id=ROOM, kind=FlagKind.REQUEST, by=DOCTOR, command_event_id="$cmd2"
    )
    assert seen.events[3:] == [clearing, clearing.done()]
    cleared = outbox.get(idempotency_key("$cmd2", "flag-cleared"))
    assert cleared is not None and cleared.next_attempt_ms == 0
    assert cleared.payload["text"].startswith("Signalement « demande » levé par @mt:t le ")


async def test_a_refused_state_forgets_the_held_entry(outbox: Outbox) -> None:
    io, seen = FakeIO(), Recorder()
    flags = flag_service(io)
    flags.observers += [journal(outbox), seen]
    io.fail_put = True
    with pytest.raises(ConnectionError):
        await raise_request(flags)
    assert [type(e) for e in seen.events] == [FlagRaising, FlagNotRaised]
    assert outbox.get(idempotency_key("$cmd1", "flag-raised")) is None


async def test_an_observer_failing_before_the_change_stops_the_command(outbox: Outbox) -> None:
    io = FakeIO()
    flags = flag_service(io)
    flags.observers += [journal(outbox), FailsOn(FlagRaising)]
    with pytest.raises(RuntimeError):
        await raise_request(flags)
    assert io.notices == [] and (ROOM, STATE_TYPE) not in io.state  # nothing changed
    held = outbox.get(idempotency_key("$cmd1", "flag-raised"))
    assert held is not None and held.next_attempt_ms > now_ms()  # still held, as before


async def test_an_observer_failing_once_raised_is_logged_with_a_reference(
    outbox: Outbox, caplog: pytest.LogCaptureFixture
) -> None:
    io = FakeIO()
    flags = flag_service(io)
    flags.observers += [FailsOn(FlagRaised), journal(outbox)]
    with caplog.at_level(logging.ERROR, logger="bots.flags.service"):
        await raise_request(flags)  # the flag is raised all the same
    assert io.state[(ROOM, STATE_TYPE)]["flags"]["demande"]["by"] == NURSE
    [record] = caplog.records
    assert "réf=" in record.getMessage() and "Dupont" not in record.getMessage()
    noted = outbox.get(idempotency_key("$cmd1", "flag-raised"))
    assert noted is not None and noted.next_attempt_ms == 0  # the next observer told too
