"""The room snapshot (issue 15): a restart resumes with an incremental sync, never the full
state, and the rooms it rebuilds are the rooms a full-state sync would have given."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
from nio import AsyncClient, SyncResponse

from bots.config import EscalationConfig
from bots.matrix.room_snapshot import RoomSnapshot
from bots.matrix.room_state import RoomStateCache
from tests.bots.conftest import patient_room_with

pytestmark = pytest.mark.integration


def room_view(client: AsyncClient, room_id: str) -> dict[str, Any]:
    room = client.rooms[room_id]
    return {
        "joined": sorted(u for u in room.users if u not in room.invited_users),
        "invited": sorted(room.invited_users),
        "names": {u: room.user_name(u) for u in room.users},
        "levels": {u: room.power_levels.get_user_level(u) for u in room.users},
        "defaults": room.power_levels.defaults,
        "events": dict(room.power_levels.events),
        "encrypted": room.encrypted,
        "name": room.name,
        "version": room.room_version,
        "join_rule": room.join_rule,
        "history": room.history_visibility,
    }


def cache_view(cache: RoomStateCache, room_id: str) -> dict[str, Any]:
    return {
        "patient": cache.patient_rooms.get(room_id),
        "flags": dict(cache.flags.get(room_id) or {}),
        "creators": cache.creators.get(room_id),
        "space": room_id in cache.spaces,
    }


async def test_restart_rebuilds_rooms_without_full_state(bot_factory, pro_factory, synapse):
    runner = bot_factory(escalation=EscalationConfig(interval_minutes=10, max_reminders=6))
    app = await runner.start()
    alice, bob, carol = await pro_factory(), await pro_factory(), await pro_factory()
    room_id = await patient_room_with(alice, [bob, carol], synapse.bot_user_id, "Instantané")
    await alice.say(room_id, "!urgent instantané")
    await bob.wait_notice(room_id, "URGENCE signalée")
    # answered after everything said before: the bot's sync has seen its own flag state
    await bob.bot_notices_so_far(room_id, synapse.bot_user_id)
    before_rooms = set(app.client.rooms)  # the folder spaces may come later
    before_cache = cache_view(app.services.cache, room_id)
    assert before_cache["patient"] and before_cache["flags"]
    await runner.stop()

    # while the bot is away: carol leaves, dave is invited (a state change to catch up on)
    dave = await pro_factory()
    await carol.client.room_leave(room_id)
    await alice.client.room_invite(room_id, dave.user_id)

    calls: list[dict[str, Any]] = []
    original = AsyncClient.sync

    async def spy(self: AsyncClient, *args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs)
        return await original(self, *args, **kwargs)

    AsyncClient.sync = spy  # type: ignore[method-assign]
    try:
        app = await runner.start()
    finally:
        AsyncClient.sync = original  # type: ignore[method-assign]
    assert calls and not any(c.get("full_state") for c in calls), calls
    assert calls[0].get("since"), "la reprise part du jeton enregistré"

    after = room_view(app.client, room_id)
    assert carol.user_id not in after["joined"]
    assert after["invited"] == [dave.user_id]
    assert cache_view(app.services.cache, room_id) == before_cache
    assert before_rooms <= set(app.client.rooms)

    # what a full-state sync gives: the same bot started again with the snapshot marked
    # incomplete (as after an upgrade) asks for the full state once; first the restarted
    # bot catches up (a command answered after everything before it, as above)
    await alice.bot_notices_so_far(room_id, synapse.bot_user_id)
    rebuilt = {r: room_view(app.client, r) for r in app.client.rooms}
    rebuilt_cache = {r: cache_view(app.services.cache, r) for r in app.client.rooms}
    await runner.stop()
    db = sqlite3.connect(runner.config.ledger_path)
    db.execute("DELETE FROM sync_state WHERE key='room_snapshot_complete'")
    db.commit()
    db.close()
    calls.clear()
    AsyncClient.sync = spy  # type: ignore[method-assign]
    try:
        app = await runner.start()
    finally:
        AsyncClient.sync = original  # type: ignore[method-assign]
    assert calls[0].get("full_state") is True
    # the same rooms, and this test's room the same in every respect. The other rooms are
    # earlier tests' leftovers in the shared bot account, where a full-state /sync can be
    # stale: a professional's join that raced the bot's message forks the room, and the
    # full state (the state after the room's last event) still says invited where the
    # server and the snapshot say joined (tests/homeserver/test_sync_full_state_fork.py)
    assert set(app.client.rooms) == set(rebuilt)
    assert room_view(app.client, room_id) == rebuilt[room_id]
    assert {r: cache_view(app.services.cache, r) for r in app.client.rooms} == rebuilt_cache

    # and the bot works in the rebuilt room at once (members known: no /joined_members)
    start = bob.mark(room_id)
    await alice.say(room_id, "!aide vu")
    await alice.wait_notice(room_id, "!vu", start=start)
    await bob.wait_notice(room_id, "!vu", start=start)


def test_last_event_of_a_key_wins_and_leaves_delete(tmp_path):
    """Pure bookkeeping: a join then a leave in one response leaves no member row; a leave
    then a join leaves one; a room left is forgotten; a full-state response replaces all."""
    db = sqlite3.connect(tmp_path / "s.sqlite3", isolation_level=None)
    db.execute("CREATE TABLE sync_state (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    snap = RoomSnapshot(db, RoomStateCache())

    def member(user: str, membership: str) -> dict[str, Any]:
        return {
            "type": "m.room.member",
            "state_key": user,
            "sender": user,
            "event_id": f"${user}{membership}",
            "origin_server_ts": 1,
            "content": {"membership": membership},
        }

    def response(rooms: dict[str, list[dict[str, Any]]], left: tuple[str, ...] = ()) -> Any:
        return SyncResponse.from_dict(
            {
                "next_batch": "s1",
                "rooms": {
                    "join": {
                        r: {"timeline": {"events": evs, "limited": False}, "state": {"events": []}}
                        for r, evs in rooms.items()
                    },
                    "leave": {r: {"timeline": {"events": []}} for r in left},
                },
            }
        )

    snap.record(
        response({"!a:x": [member("@u:x", "join"), member("@v:x", "join")]}), full_state=True
    )
    assert snap.complete()
    snap.record(
        response(
            {
                "!a:x": [
                    member("@u:x", "leave"),
                    member("@u:x", "join"),
                    member("@v:x", "join"),
                    member("@v:x", "leave"),
                ]
            }
        ),
        full_state=False,
    )
    rows = db.execute("SELECT room_id, state_key FROM room_state").fetchall()
    assert rows == [("!a:x", "@u:x")]
    snap.record(response({"!b:x": [member("@w:x", "join")]}, left=("!a:x",)), full_state=False)
    assert db.execute("SELECT room_id FROM room_state").fetchall() == [("!b:x",)]
    snap.record(response({"!c:x": [member("@w:x", "join")]}), full_state=True)
    assert db.execute("SELECT room_id FROM room_state").fetchall() == [("!c:x",)]


async def test_a_repeated_invitation_does_not_demote_a_joined_member(tmp_path):
    """Synapse's incremental state block can repeat the invitation of a person whose join an
    earlier timeline carried (a join that forked the room: element-hq/synapse#17430,
    tests/homeserver/test_sync_full_state_fork.py). nio keeps her joined; the snapshot too,
    or after a restart her commands would be refused as from a non-member."""
    db = sqlite3.connect(tmp_path / "s.sqlite3", isolation_level=None)
    db.execute("CREATE TABLE sync_state (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    snap = RoomSnapshot(db, RoomStateCache())
    live = AsyncClient("http://localhost", "@bot:x")

    def event(event_type: str, key: str, sender: str, content: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": event_type,
            "state_key": key,
            "sender": sender,
            "event_id": f"${len(content)}{event_type}{key}{sorted(content.items())}",
            "origin_server_ts": 1,
            "content": content,
        }

    def invite(user: str) -> dict[str, Any]:
        return event("m.room.member", user, "@bot:x", {"membership": "invite"})

    def join(user: str) -> dict[str, Any]:
        return event("m.room.member", user, user, {"membership": "join", "displayname": "U"})

    def leave(user: str) -> dict[str, Any]:
        return event("m.room.member", user, user, {"membership": "leave"})

    topic = event("m.room.topic", "", "@bot:x", {"topic": "t"})
    responses = [  # (state block, timeline, full state)
        ([join("@bot:x")], [invite("@u:x"), join("@u:x"), invite("@v:x")], True),
        ([invite("@u:x")], [topic], False),  # the stale repeat: she stays joined
        ([], [leave("@v:x"), invite("@v:x"), join("@w:x")], False),  # re-invited: invited
        ([invite("@w:x")], [join("@x:x")], False),  # stale in the same response as a join
        ([invite("@x:x")], [], False),
    ]

    def response(n: int, state: list[Any], timeline: list[Any], limited: bool) -> Any:
        return SyncResponse.from_dict(
            {
                "next_batch": f"s{n}",
                "rooms": {
                    "join": {
                        "!a:x": {
                            "timeline": {"events": timeline, "limited": limited},
                            "state": {"events": state},
                        }
                    }
                },
            }
        )

    for n, (state, timeline, full_state) in enumerate(responses):
        resp = response(n, state, timeline, False)
        await live.receive_response(resp)
        snap.record(resp, full_state=full_state)

    def restored_view() -> dict[str, Any]:
        restored = AsyncClient("http://localhost", "@bot:x")
        snap.restore(restored)
        return room_view(restored, "!a:x")

    assert restored_view() == room_view(live, "!a:x")
    assert restored_view()["joined"] == ["@bot:x", "@u:x", "@w:x", "@x:x"]
    assert restored_view()["invited"] == ["@v:x"]

    # after a gap (a limited timeline), she may have left and been invited again in it
    snap.record(response(9, [invite("@u:x")], [topic], True), full_state=False)
    assert restored_view()["invited"] == ["@u:x", "@v:x"]
