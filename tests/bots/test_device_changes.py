"""A nurse who writes in two of her patients' rooms in turn (issue 15): with the bot's lazy
syncs, Synapse sends her member event again at each change of room and names her as a
device-list change; the bot no longer queries her keys ahead of each command, but a device she
really adds is queried at once and reads the bot's next answer, and the deferred queries are
made once due (``bots/matrix/device_changes.py``)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from tests.bots.conftest import Pro
from tests.bots.test_cross_signing_synapse import second_device

pytestmark = pytest.mark.integration


def count_key_queries(app: Any) -> list[set[str]]:
    """The users of each key query the bot makes (instrumentation of nio's client)."""
    queries: list[set[str]] = []
    query = app.client.keys_query

    async def counted(*args: Any, **kwargs: Any) -> Any:
        queries.append(set(app.client.users_for_key_query))
        return await query(*args, **kwargs)

    app.client.keys_query = counted
    return queries


async def until(probe: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise AssertionError(what)
        await asyncio.sleep(0.2)


async def test_a_member_sent_again_is_not_queried_ahead_of_each_command(
    bot_factory: Any, pro_factory: Any, synapse: Any, tmp_path: Path
) -> None:
    runner = bot_factory()
    app = await runner.start()
    try:
        alice = await pro_factory()
        rooms = [await alice.create_room(invite=[synapse.bot_user_id]) for _ in range(2)]
        for room_id in rooms:
            await alice.wait_member(room_id, synapse.bot_user_id)
            await alice.say(room_id, "!aide vu")
            await alice.wait_notice(room_id, "!vu")
        queries = count_key_queries(app)
        app.sync_loop.deferred_keys.flush_seconds = 3600.0

        for i in range(6):  # one room, then the other: her join is sent again each time
            room_id = rooms[i % 2]
            start = alice.mark(room_id)
            await alice.say(room_id, "!aide vu")
            await alice.wait_notice(room_id, "!vu", start=start)
        assert not [q for q in queries if alice.user_id in q]
        assert alice.user_id in app.sync_loop.deferred_keys.waiting

        # a device she really adds: named without a member event, queried at once
        async with second_device(synapse, alice.client.test_user, tmp_path / "phone") as other:
            phone = Pro(other)
            await phone.sync_once(0)
            await until(lambda: any(alice.user_id in q for q in queries), "appareil non vu")
            room_id = rooms[0]
            start, seen = alice.mark(room_id), phone.mark(room_id)
            await alice.say(room_id, "!aide vu")
            await alice.wait_notice(room_id, "!vu", start=start)
            await phone.wait_notice(room_id, "!vu", start=seen)
            assert not phone.undecrypted(room_id)[seen:]

        # the deferred queries are made once due, with the next sync
        queries.clear()
        app.sync_loop.deferred_keys.flush_seconds = 0.0
        start = alice.mark(rooms[1])
        await alice.say(rooms[1], "!aide vu")
        await alice.wait_notice(rooms[1], "!vu", start=start)
        await until(lambda: not app.sync_loop.deferred_keys.waiting, "requêtes différées")
        assert any(alice.user_id in q for q in queries)
    finally:
        await runner.stop()


async def bot_stopped_after_two_rooms(
    bot_factory: Any, pro_factory: Any, synapse: Any
) -> tuple[Any, Pro, list[str]]:
    """A bot that last met alice's join in her second room, then stopped."""
    runner = bot_factory()
    await runner.start()
    alice = await pro_factory()
    rooms = [await alice.create_room(invite=[synapse.bot_user_id]) for _ in range(2)]
    for room_id in rooms:
        await alice.wait_member(room_id, synapse.bot_user_id)
        start = alice.mark(room_id)
        await alice.say(room_id, "!aide vu")
        await alice.wait_notice(room_id, "!vu", start=start)
    await runner.stop()
    return runner, alice, rooms


@pytest.mark.parametrize("writer", ["phone", "laptop"])
async def test_a_device_added_while_the_bot_is_away_reads_the_answers(
    writer: str, bot_factory: Any, pro_factory: Any, synapse: Any, tmp_path: Path
) -> None:
    """Found by hand: a second device (her phone) logged in while the bot was stopped, then a
    command; the restarted bot's catch-up sync named her both for that device and for her
    member event sent again, the query was deferred and the answer was unreadable on the
    phone. The command written on the phone (an Olm message from a key the bot did not
    know: its room key) or on her laptop (whose room key the bot already held: only the
    catch-up tells), the phone reads the answer."""
    runner, alice, rooms = await bot_stopped_after_two_rooms(bot_factory, pro_factory, synapse)
    async with second_device(synapse, alice.client.test_user, tmp_path / "phone") as other:
        phone = Pro(other)
        await phone.sync_once(0)
        room_id = rooms[0]
        seen = phone.mark(room_id)
        await (phone if writer == "phone" else alice).say(room_id, "!aide fait")
        app = await runner.start()
        app.sync_loop.deferred_keys.flush_seconds = 3600.0  # only the answer can tell
        await phone.wait_notice(room_id, "!fait", start=seen)
        assert not phone.undecrypted(room_id)[seen:]
