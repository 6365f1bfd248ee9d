"""The bot's incremental syncs lazy-load members (issue 15: an eager /sync costs Synapse a
lookup per room of the account). What a lazy response leaves out is read back from the
server, so the bot still knows every member: of a room it joins after a long conversation, of
a room whose members changed in a gap while it was away, and after a crash between the
response and the read-back."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from nio import MatrixRoom

pytestmark = pytest.mark.integration

TIMELINE = 5  # events per room and sync: a conversation of 8 messages leaves a gap


def joined(room: MatrixRoom | None) -> set[str]:
    return set() if room is None else {u for u in room.users if u not in room.invited_users}


async def bot_sees(app: Any, room_id: str, members: set[str], timeout: float = 45.0) -> None:
    """Until the bot's nio room has exactly ``members`` joined (or fails with what it has)."""
    deadline = time.monotonic() + timeout
    while joined(app.client.rooms.get(room_id)) != members:
        if time.monotonic() > deadline:
            raise AssertionError(
                f"membres vus par le bot : {joined(app.client.rooms.get(room_id))}"
            )
        await asyncio.sleep(0.2)


def snapshot(ledger: Path, room_id: str) -> tuple[dict[str, str], set[str]]:
    """The bot's snapshot of the room's members, and the rooms whose read-back is owed."""
    db = sqlite3.connect(ledger)
    try:
        members = dict(
            db.execute(
                "SELECT state_key, json_extract(content, '$.membership') FROM room_state "
                "WHERE room_id=? AND type='m.room.member'",
                (room_id,),
            ).fetchall()
        )
        owed = {r for (r,) in db.execute("SELECT room_id FROM members_unread")}
    finally:
        db.close()
    return members, owed


async def known_whole(app: Any, runner: Any, room_id: str, members: set[str]) -> None:
    """The bot's nio room and its snapshot hold exactly ``members``, no read-back owed."""
    await bot_sees(app, room_id, members)
    held, owed = snapshot(runner.config.ledger_path, room_id)
    assert set(held) == members and set(held.values()) == {"join"}
    assert room_id not in owed


@pytest.fixture
def runner(bot_factory: Any) -> Any:
    """The bot with a short timeline: a conversation of 8 messages leaves a gap."""
    return bot_factory(sync_timeline_limit=TIMELINE)


async def conversation(pro: Any, room_id: str, n: int = 8) -> None:
    for i in range(n):
        await pro.say(room_id, f"message {i}")


async def test_a_room_joined_after_a_long_conversation_is_known_whole(
    runner: Any, pro_factory: Any, synapse: Any
) -> None:
    app = await runner.start()
    try:
        alice, bob, carol = await pro_factory(), await pro_factory(), await pro_factory()
        room_id = await alice.create_room(invite=[bob.user_id, carol.user_id])
        for pro in (bob, carol):
            await pro.client.join(room_id)
            await alice.wait_member(room_id, pro.user_id)
        await conversation(alice, room_id)  # bob and carol never speak
        await alice.client.room_invite(room_id, synapse.bot_user_id)

        everyone = {alice.user_id, bob.user_id, carol.user_id, synapse.bot_user_id}
        await known_whole(app, runner, room_id, everyone)
        assert app.client.rooms[room_id].members_synced
        # what it is for: the bot's encrypted answer reaches the members who never spoke
        await alice.wait_member(room_id, synapse.bot_user_id)  # her key goes to the bot too
        await alice.say(room_id, "!aide vu")
        for pro in (bob, carol):
            await pro.wait_notice(room_id, "!vu")
        assert not bob.undecrypted(room_id) and not carol.undecrypted(room_id)
    finally:
        await runner.stop()


async def test_members_changed_in_a_gap_while_away_are_caught_up(
    runner: Any, pro_factory: Any, synapse: Any
) -> None:
    app = await runner.start()
    alice, bob, carol, dave = [await pro_factory() for _ in range(4)]
    room_id = await alice.create_room(invite=[bob.user_id, carol.user_id, synapse.bot_user_id])
    for pro in (bob, carol):
        await pro.client.join(room_id)
        await alice.wait_member(room_id, pro.user_id)
    before = {alice.user_id, bob.user_id, carol.user_id, synapse.bot_user_id}
    await bot_sees(app, room_id, before)
    await runner.stop()

    # while the bot is away: carol leaves, dave joins, then more than a sync's timeline
    await carol.client.room_leave(room_id)
    await alice.client.room_invite(room_id, dave.user_id)
    await dave.client.join(room_id)
    await conversation(alice, room_id)

    app = await runner.start()
    try:
        await known_whole(app, runner, room_id, before - {carol.user_id} | {dave.user_id})
    finally:
        await runner.stop()


async def test_a_read_back_cut_by_a_crash_is_done_at_the_next_start(
    runner: Any, pro_factory: Any, synapse: Any
) -> None:
    app = await runner.start()
    alice, bob = await pro_factory(), await pro_factory()
    room_id = await alice.create_room(invite=[bob.user_id, synapse.bot_user_id])
    await bob.client.join(room_id)
    everyone = {alice.user_id, bob.user_id, synapse.bot_user_id}
    await bot_sees(app, room_id, everyone)
    await runner.kill()

    # what a crash after the response was recorded, before the read-back, leaves: a lazy
    # state block's members (bob, who never spoke, missing) and the read-back owed
    db = sqlite3.connect(runner.config.ledger_path)
    db.execute(
        "DELETE FROM room_state WHERE room_id=? AND type='m.room.member' AND state_key=?",
        (room_id, bob.user_id),
    )
    db.execute("INSERT INTO members_unread(room_id) VALUES(?)", (room_id,))
    db.commit()
    db.close()

    app = await runner.start()  # nothing new in the room: only the owed read-back brings bob
    try:
        await known_whole(app, runner, room_id, everyone)
    finally:
        await runner.stop()
