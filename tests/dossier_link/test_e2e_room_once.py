"""A patient room is created once, even when the bot dies between the homeserver creating it
and the bot recording it: ``!patient nouveau`` replayed after the restart, and the room the
sync creates for a file opened in the dossier (the feed event read again).

The death is injected right after the real ``createRoom`` answered (the handling task is
cancelled: nothing after it runs, as after a SIGKILL), then the bot is stopped abruptly and
started again on the same data directory. The rooms are counted with Synapse's admin API.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import aiohttp
import pytest
from support import die_after

from bots.matrix.room_once import intent_alias
from tests.bots.conftest import dm_with_bot, room_id_in
from tests.dossier_link.test_e2e_sync import Env, env, eventually, state  # noqa: F401

pytestmark = pytest.mark.integration


def die_after_creating(app: Any, name: str) -> asyncio.Event:
    """The room exists; the bot recorded nothing."""
    return die_after(app.services.io, "create_room", lambda **kwargs: kwargs.get("name") == name)


async def restart_after(e: Env, died: asyncio.Event) -> None:
    await asyncio.wait_for(died.wait(), 30)  # the call is done: die at once, as a SIGKILL
    await e.runner.kill()
    await e.runner.start()


async def rooms_named(e: Env, name: str) -> list[str]:
    url = f"{e.synapse.base_url}/_synapse/admin/v1/rooms"
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            url,
            params={"search_term": name, "limit": "50"},
            headers={"Authorization": f"Bearer {e.synapse.admin_token}"},
        ) as resp,
    ):
        body = await resp.json()
    return [r["room_id"] for r in body.get("rooms", []) if r.get("name") == name]


def test_intent_alias_is_stable_and_says_nothing() -> None:
    a = intent_alias("patient-nouveau|$event")
    assert a == intent_alias("patient-nouveau|$event") != intent_alias("patient-nouveau|$other")
    assert a.startswith("cercle-") and len(a) == 39 and "event" not in a


async def test_patient_nouveau_killed_after_create_room_makes_one_room(env: Env) -> None:  # noqa: F811
    nurse = await env.make_pro()
    label = f"Suivi une seule fois {secrets.token_hex(3)}"
    app = env.runner.app
    assert app is not None
    dm = await dm_with_bot(nurse, env.bot_id)
    died = die_after_creating(app, label)
    await nurse.say(dm, f"!patient nouveau {label}")
    await restart_after(env, died)

    notice = await nurse.wait_notice(dm, f"Salon patient « {label} » créé", timeout=60)
    room_id = room_id_in(notice.source["content"]["body"])
    assert await rooms_named(env, label) == [room_id]  # the replay found the first room
    pseudonym = (await state(nurse, room_id, "fr.cercle.patient"))["id"]
    assert f"({pseudonym})" in notice.source["content"]["body"]
    found = await eventually(
        lambda: env.dossier.patient_by_room(room_id), bool, what="dossier du salon"
    )
    assert found["id"] == pseudonym
    # the replayed command is answered before a later one in the same chat: past it, a second
    # room would exist already
    await nurse.bot_notices_so_far(dm, env.bot_id)
    assert await rooms_named(env, label) == [room_id]


async def test_file_room_killed_after_create_room_makes_one_room(env: Env) -> None:  # noqa: F811
    coord = await env.make_pro()
    label = f"Dossier une seule fois {secrets.token_hex(3)}"
    app = env.runner.app
    assert app is not None
    died = die_after_creating(app, label)
    created = await env.dossier.create_patient(
        room_id=None, label=label, coordinator=coord.user_id, key=f"once-{label}"
    )
    pid = str(created["id"])
    await restart_after(env, died)

    patient = await eventually(
        lambda: env.dossier.get_patient(pid),
        lambda p: bool(p and p.get("room_id")),
        timeout=60,
        what="salon lié au dossier",
    )
    assert await rooms_named(env, label) == [patient["room_id"]]
    await coord.wait_member(patient["room_id"], coord.user_id)
    # the feed past the file's event and the outbox empty: the event is never read again,
    # so a second room, had a retry made one, would exist already
    await env.dossier_work_done()
    assert await rooms_named(env, label) == [patient["room_id"]]


async def test_direct_chat_for_reminders_created_once_across_a_kill(env: Env) -> None:  # noqa: F811
    """The bot's direct chat with a person (overdue reminders, transcripts): killed after
    createRoom and before remembering it, the next attempt finds the same chat."""
    nurse = await env.make_pro()
    app = env.runner.app
    assert app is not None
    links = app.dossier_sync.links
    io = app.services.io
    real = io.create_room
    made: list[str] = []

    async def create_then_die(**kwargs: Any) -> str:
        room_id = await real(**kwargs)
        made.append(room_id)
        raise asyncio.CancelledError  # the chat exists; the bot recorded nothing

    io.create_room = create_then_die
    with pytest.raises(asyncio.CancelledError):
        await links.direct_room(nurse.user_id)
    io.create_room = real
    assert links.store.direct_room(nurse.user_id) is None  # as after a restart
    again = await links.direct_room(nurse.user_id)
    assert made == [again]


async def test_one_direct_chat_for_reminders_and_transcripts(env: Env) -> None:  # noqa: F811
    """Reminders (the dossier link) and transcripts or private exports (the export service)
    reach a person in the same direct chat: one lookup (bots.matrix.direct_chat)."""
    nurse = await env.make_pro()
    app = env.runner.app
    assert app is not None and app.services.arrivals is not None
    for_transcripts = await app.services.arrivals.fallback.direct_room(nurse.user_id)
    for_reminders = await app.dossier_sync.links.direct_room(nurse.user_id)
    assert for_reminders == for_transcripts
    assert app.dossier_sync.links.store.direct_room(nurse.user_id) == for_reminders
    room = app.client.rooms[for_reminders]
    assert room.encrypted and nurse.user_id in room.users


async def test_a_person_who_left_the_direct_chat_is_invited_back(env: Env) -> None:  # noqa: F811
    """Someone who left the bot's direct chat would receive nothing there: the next thing the
    bot tells her alone invites her back first, and she reads it once she has joined."""
    nurse = await env.make_pro()
    app = env.runner.app
    assert app is not None
    links = app.dossier_sync.links
    room_id = await links.direct_room(nurse.user_id)
    await nurse.wait_member(room_id, nurse.user_id)
    await nurse.client.room_leave(room_id)

    async def bot_sees_her() -> bool:
        return nurse.user_id in app.client.rooms[room_id].users

    await eventually(bot_sees_her, lambda inside: not inside, what="départ vu par le bot")
    assert await links.direct_room(nurse.user_id) == room_id  # the same chat, she is invited
    assert nurse.user_id in app.client.rooms[room_id].invited_users
    await nurse.wait_member(room_id, nurse.user_id)  # her client accepts the invitation
    await app.services.io.send_notice(room_id, "Rappel : une tâche est en retard.")
    await nurse.wait_notice(room_id, "une tâche est en retard")
