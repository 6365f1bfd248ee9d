"""Which device-list « changes » of a lazy /sync are members only sent again (pure), and the
deferral of their key queries: made together once due, never dropped."""

from __future__ import annotations

from typing import Any

from nio import DummyEvent, RoomKeyEvent, RoomKeyRequest, SyncResponse

from bots.matrix.device_changes import DeferredKeyQueries, lazy_resends, unknown_senders
from tests.bots import test_member_repair_rules as repair_rules

ROOM, OTHER = "!soins:cercle.test", "!autre:cercle.test"
ALICE, BOB, CAROL = "@alice:cercle.test", "@bob:cercle.test", "@carole:cercle.test"


def member(user: str, membership: str = "join") -> dict[str, Any]:
    return repair_rules.member(user, membership)


def response(
    changed: list[str], rooms: dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]]
) -> SyncResponse:
    """``rooms``: room → (its ``state`` block, its timeline)."""
    join = {
        room_id: {
            "state": {"events": state},
            "timeline": {"events": timeline, "limited": False, "prev_batch": "p1"},
        }
        for room_id, (state, timeline) in rooms.items()
    }
    resp = SyncResponse.from_dict(
        {"next_batch": "s2", "rooms": {"join": join}, "device_lists": {"changed": changed}}
    )
    assert isinstance(resp, SyncResponse)
    return resp


HELD = {ROOM: {ALICE: "join", BOB: "join"}, OTHER: {ALICE: "join"}}


def test_a_speaker_sent_again_in_the_state_block_is_a_resend() -> None:
    # alice wrote in OTHER, then in ROOM: Synapse sends her join again and names her
    resp = response([ALICE], {ROOM: ([member(ALICE)], [])})
    assert lazy_resends(resp, HELD) == {ALICE}


def test_a_user_named_without_a_member_event_has_really_changed() -> None:
    # a new device of bob's: nothing of him in the response but the device list
    resp = response([ALICE, BOB], {ROOM: ([member(ALICE)], [])})
    assert lazy_resends(resp, HELD) == {ALICE}


def test_a_membership_that_happened_or_differs_is_a_real_change() -> None:
    in_timeline = response([ALICE], {ROOM: ([], [member(ALICE)])})
    assert lazy_resends(in_timeline, HELD) == set()
    newcomer = response([CAROL], {ROOM: ([member(CAROL)], [])})
    assert lazy_resends(newcomer, HELD) == set()
    room_not_held = response([ALICE], {"!nouveau:cercle.test": ([member(ALICE)], [])})
    assert lazy_resends(room_not_held, HELD) == set()
    # sent again in one room, a real membership in another: queried at once
    both = response([ALICE], {ROOM: ([member(ALICE)], []), OTHER: ([], [member(ALICE)])})
    assert lazy_resends(both, HELD) == set()


def test_deferred_queries_are_handed_back_together_once_due() -> None:
    now = [100.0]
    deferred = DeferredKeyQueries(30.0, clock=lambda: now[0])
    deferred.defer({ALICE})
    now[0] += 10
    deferred.defer({BOB})
    assert deferred.due() == set()
    now[0] += 20  # alice has waited 30 s: both go together
    assert deferred.due() == {ALICE, BOB}
    assert deferred.due() == set() and deferred.waiting == frozenset()
    deferred.defer(set())
    now[0] += 60
    assert deferred.due() == set()


def test_an_olm_message_from_a_device_not_held_names_its_sender() -> None:
    held = {ALICE: ["laptop-key"], BOB: ["bob-key"]}
    events = [
        RoomKeyEvent({}, ALICE, "phone-key", ROOM, "s1", "m.megolm.v1.aes-sha2"),
        RoomKeyEvent({}, BOB, "bob-key", ROOM, "s2", "m.megolm.v1.aes-sha2"),
        DummyEvent({}, CAROL, "carole-key", "PHONE"),
    ]
    assert unknown_senders(events, lambda user: held.get(user, [])) == {ALICE, CAROL}


def test_a_key_request_names_the_session_creator_not_a_device() -> None:
    # its sender_key is the key of whoever made the session asked for: not a device change
    request = RoomKeyRequest(
        {}, ALICE, "PHONE", "r1", "m.megolm.v1.aes-sha2", ROOM, "bot-key", "s1"
    )
    assert unknown_senders([request], lambda user: []) == set()


def test_a_user_released_is_no_longer_waiting() -> None:
    deferred = DeferredKeyQueries(flush_seconds=30.0, clock=lambda: 0.0)
    deferred.defer({ALICE, BOB})
    deferred.release({ALICE})
    assert deferred.waiting == {BOB}
