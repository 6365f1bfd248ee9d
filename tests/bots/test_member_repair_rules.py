"""Which rooms a /sync response sends back to the server for their members (pure): with the
bot's lazy incremental syncs, a room just joined and a gap are always read back, a member
event only when it says other than what the bot held; without a snapshot, any member event."""

from __future__ import annotations

from typing import Any

from nio import SyncResponse

from bots.matrix.member_repair import rooms_to_check

ROOM, OTHER = "!soins:cercle.test", "!autre:cercle.test"
ALICE, BOB, BOT = "@alice:cercle.test", "@bob:cercle.test", "@bot:cercle.test"


def member(user: str, membership: str) -> dict[str, Any]:
    return {
        "type": "m.room.member",
        "state_key": user,
        "sender": user,
        "content": {"membership": membership},
        "event_id": f"${user}-{membership}",
        "origin_server_ts": 1,
    }


def response(*rooms: tuple[str, list[dict[str, Any]], bool]) -> SyncResponse:
    join = {
        room_id: {
            "state": {"events": state},
            "timeline": {"events": [], "limited": limited, "prev_batch": "p1"},
        }
        for room_id, state, limited in rooms
    }
    resp = SyncResponse.from_dict({"next_batch": "s2", "rooms": {"join": join}})
    assert isinstance(resp, SyncResponse)
    return resp


HELD = {ROOM: {BOT: "join", ALICE: "join", BOB: "invite"}}


def test_a_lazy_member_event_that_says_what_was_held_reads_nothing_back() -> None:
    # a lazy response names the members who speak: the usual case, nothing to read back
    resp = response((ROOM, [member(ALICE, "join"), member(BOB, "invite")], False))
    assert rooms_to_check(resp, HELD) == {}


def test_a_member_event_that_says_otherwise_is_read_back() -> None:
    left_but_joined = response((ROOM, [member("@carole:cercle.test", "join")], False))
    assert rooms_to_check(left_but_joined, HELD) == {ROOM: "state"}
    joined_but_invited = response((ROOM, [member(ALICE, "invite")], False))
    assert rooms_to_check(joined_but_invited, HELD) == {ROOM: "state"}
    gone = response((ROOM, [member(ALICE, "leave")], False))
    assert rooms_to_check(gone, HELD) == {ROOM: "state"}


def test_a_room_just_joined_and_a_gap_are_always_read_back() -> None:
    resp = response((ROOM, [], True), (OTHER, [member(BOT, "join")], False))
    assert rooms_to_check(resp, {**HELD, OTHER: None}) == {ROOM: "gap", OTHER: "new"}
    # a room the snapshot was not asked about is not held either
    assert rooms_to_check(resp, HELD) == {ROOM: "gap", OTHER: "new"}


def test_a_quiet_room_reads_nothing_back() -> None:
    assert rooms_to_check(response((ROOM, [], False)), HELD) == {}


def test_without_what_was_held_any_member_event_is_read_back() -> None:
    resp = response((ROOM, [member(ALICE, "join")], False), (OTHER, [], True))
    assert rooms_to_check(resp) == {ROOM: "state"}
