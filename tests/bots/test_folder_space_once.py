"""A person's folder space ("Urgences") is created once, even when the bot dies between the
homeserver creating it and the bot recording it (real Synapse, the bot in-process): the
replayed !urgent finds the space made the first time instead of inviting to a second one."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from support import die_after, eventually

from tests.bots.conftest import Pro, patient_room_with

pytestmark = pytest.mark.integration


def die_after_creating_a_space(app: Any) -> asyncio.Event:
    """The space exists; the bot recorded nothing."""

    def urgent_space(**kwargs: Any) -> bool:
        return bool(kwargs.get("space")) and kwargs.get("name") == "Urgences"

    return die_after(app.services.io, "create_room", urgent_space)


async def urgent_spaces(pro: Pro) -> list[str]:
    await pro.sync_once(0)  # joins the invitations
    return [rid for rid, room in pro.client.rooms.items() if room.name == "Urgences"]


async def test_folder_space_created_once_across_a_kill(bot_factory, pro_factory, synapse):
    runner = bot_factory()
    app = await runner.start()
    alice, bob = await pro_factory(), await pro_factory()
    room_id = await patient_room_with(alice, [bob], synapse.bot_user_id, "Dossier unique")
    died = die_after_creating_a_space(app)
    await alice.say(room_id, "!urgent")
    await asyncio.wait_for(died.wait(), 30)
    await runner.kill()
    await runner.start()
    for pro in (alice, bob):
        await eventually(lambda p=pro: urgent_spaces(p), lambda spaces: len(spaces) >= 1)
    # the replayed « !urgent » is handled before the next command of the room: past it, a
    # second space would exist already
    await alice.bot_notices_so_far(room_id, synapse.bot_user_id)
    for pro in (alice, bob):
        assert len(await urgent_spaces(pro)) == 1
