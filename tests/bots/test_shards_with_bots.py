"""The bot's patient rooms over two accounts (bots/shards.py, issue 15), both running against
the real Synapse: a room made by `!patient nouveau` lives with the account its intent names,
the front leaves it to that account, which answers, flags into the person's one folder and
sends its exports in its own direct chat."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from nio import RoomGetStateEventResponse, RoomResolveAliasResponse
from pypdf import PdfReader

from backup.transcripts import BotTranscripts
from bots.config import BotConfig
from bots.flags.model import FlagKind
from bots.matrix.room_once import intent_alias
from homeserver.admin_api import AdminApi, AdminApiError
from tests.bots.conftest import BotRunner, dm_with_bot, make_bot_config, room_id_in

pytestmark = pytest.mark.integration


async def _register_shard(synapse: Any, user_id: str, shard: int) -> None:
    """What `cercle up` does for each account of the bot (homeserver/accounts.py)."""
    localpart = user_id.split(":")[0][1:]
    async with AdminApi(synapse.base_url, synapse.admin_token) as api:
        try:
            await api.register(
                synapse.secrets.registration_shared_secret,
                localpart,
                synapse.secrets.bot_account(shard).password,
                displayname=f"Cercle (salons {shard})",
            )
        except AdminApiError as exc:
            if exc.errcode != "M_USER_IN_USE":
                raise
        await api.create_or_modify_user(user_id, user_type="bot")
        await api.override_ratelimit(user_id)


async def _state(pro: Any, room_id: str, event_type: str, key: str = "") -> dict[str, Any]:
    resp = await pro.client.room_get_state_event(room_id, event_type, key)
    assert isinstance(resp, RoomGetStateEventResponse), resp
    return dict(resp.content)


async def two_accounts(synapse: Any, tmp_path: Any) -> tuple[BotRunner, BotRunner]:
    """The front and a second account (``bot.shards: 2``), registered, not started."""
    front_id = synapse.bot_user_id
    shard_id = f"@cercle-bot-2:{synapse.server_name}"
    accounts = (front_id, shard_id)
    await _register_shard(synapse, shard_id, 2)
    front = make_bot_config(synapse, tmp_path / "bot", accounts=accounts)
    shard: BotConfig = make_bot_config(
        synapse,
        tmp_path / "bot-2",
        user_id=shard_id,
        accounts=accounts,
        display_name="Cercle (salons 2)",
        cross_signing_key_path=synapse.var_dir / "bot-2" / "cross_signing.enc",
    ).model_copy(update={"shard": 2})  # the session's profile has one account
    return BotRunner(synapse, front), BotRunner(synapse, shard)


async def new_patient_room(
    alice: Any, dm: str, label: str, shard_id: str, timeout: float = 45.0
) -> tuple[str, bool]:
    """`!patient nouveau <label>` by ``alice`` in her chat with the front; the room (alice
    joined: it can be joined) and whether it lives with ``shard_id``."""
    start = alice.mark(dm)
    await alice.say(dm, f"!patient nouveau {label}")
    notice = await alice.wait_notice(
        dm, f"Salon patient « {label} » créé", start=start, timeout=timeout
    )
    room_id = room_id_in(notice.source["content"]["body"])
    await alice.wait_member(room_id, alice.user_id)
    create = await _state(alice, room_id, "m.room.create")
    return room_id, shard_id in create.get("additional_creators", [])


async def room_of_the_shard(
    alice: Any, dm: str, label: str, shard_id: str, timeout: float = 45.0
) -> str:
    """Rooms made until one lives with ``shard_id`` (the account is a hash of the command:
    one in two with two accounts; 16 tries)."""
    for i in range(16):
        room_id, with_shard = await new_patient_room(alice, dm, f"{label} {i}", shard_id, timeout)
        if with_shard:
            return room_id
    raise AssertionError("aucun salon confié au second compte en 16 essais")


async def test_rooms_live_with_their_shard_and_the_person_keeps_one_folder(
    synapse: Any, tmp_path: Any, pro_factory: Any
) -> None:
    runners = list(await two_accounts(synapse, tmp_path))
    front_config, shard_config = (r.config for r in runners)
    front_id, shard_id = front_config.user_id, shard_config.user_id
    try:
        for runner in runners:
            await runner.start()
        alice = await pro_factory()
        dm = await dm_with_bot(alice, front_id)
        # rooms until one lives with each account (the shard is a hash of the command)
        lives_with: dict[str, str] = {}
        for i in range(16):
            if len(lives_with) == 2:
                break
            room_id, with_shard = await new_patient_room(alice, dm, f"Suivi {i}", shard_id)
            lives_with.setdefault(shard_id if with_shard else front_id, room_id)
        assert set(lives_with) == {front_id, shard_id}, lives_with

        room = lives_with[shard_id]
        await alice.wait_member(room, shard_id)  # the shard took the invitation

        async def front_gone() -> bool:  # the front left it to its shard once it was in
            joined = await alice.client.joined_members(room)
            return {m.user_id for m in joined.members} == {alice.user_id, shard_id}

        await _eventually(front_gone)
        assert (await _state(alice, room, "fr.cercle.patient"))["id"].startswith("P-")

        # the shard answers in its room, the front in its own
        start = alice.mark(room)
        await alice.say(room, "!aide")
        help_notice = await alice.wait_notice(room, "Commandes du bot Cercle", start=start)
        assert help_notice.sender == shard_id
        other = lives_with[front_id]
        start = alice.mark(other)
        await alice.say(other, "!aide")
        assert (
            await alice.wait_notice(other, "Commandes du bot Cercle", start=start)
        ).sender == front_id

        # flagged in each: one "Urgences" folder for alice, holding both rooms
        for room_id in (room, other):
            start = alice.mark(room_id)
            await alice.say(room_id, "!urgent pansement à revoir")
            await alice.wait_notice(room_id, "URGENCE signalée", start=start)
        shard_folders = runners[1].app.services.flags.folders  # type: ignore[union-attr]
        front_folders = runners[0].app.services.flags.folders  # type: ignore[union-attr]
        spaces = {
            await _eventually(lambda f=f: f.space_of(alice.user_id, FlagKind.URGENT))
            for f in (shard_folders, front_folders)
        }
        assert len(spaces) == 1, spaces
        space = spaces.pop()
        await alice.wait_member(space, alice.user_id)
        for room_id in (room, other):
            await _eventually(lambda r=room_id: _child(alice, space, r))

        # the shard's private export comes in the shard's own direct chat with alice (the
        # front's direct chat is another room: a direct chat's intent names its account)
        start = alice.mark(room)
        await alice.say(room, "!export en privé")
        announce = await alice.wait_notice(
            room, "Export PDF de la conversation par", start=start, timeout=90
        )
        assert "envoyé en privé" in announce.source["content"]["body"]
        alias = f"#{intent_alias(f'direct|{shard_id}|{alice.user_id}')}:{synapse.server_name}"
        resolved = await alice.client.room_resolve_alias(alias)
        assert isinstance(resolved, RoomResolveAliasResponse), resolved
        shard_dm = resolved.room_id
        assert shard_dm != dm
        await alice.wait_member(shard_dm, alice.user_id)
        pdf = await alice.wait_for(
            shard_dm,
            lambda ev: (
                ev.sender == shard_id and ev.source.get("content", {}).get("msgtype") == "m.file"
            ),
            timeout=60,
        )
        assert pdf.source["content"]["body"].startswith("Transcription_Suivi-")

        # the retention archive reads each room with the keys of the account in it
        await alice.say(room, "marqueur-salon-confié")
        await alice.say(other, "marqueur-salon-du-front")
        transcripts = BotTranscripts(
            synapse.profile, synapse.secrets, configs=[front_config, shard_config]
        )
        for room_id, marker in (
            (room, "marqueur-salon-confié"),
            (other, "marqueur-salon-du-front"),
        ):
            target = tmp_path / f"{marker}.pdf"
            text = ""
            for _ in range(20):  # the bot's store has the message's key a moment later
                await transcripts(room_id, "Suivi", target)
                text = "\n".join(p.extract_text() for p in PdfReader(target).pages)
                if marker in text:
                    break
                await asyncio.sleep(1)
            assert marker in text
    finally:
        for runner in reversed(runners):
            await runner.stop()


async def _child(pro: Any, space: str, room_id: str) -> bool:
    resp = await pro.client.room_get_state_event(space, "m.space.child", room_id)
    return isinstance(resp, RoomGetStateEventResponse) and bool(resp.content.get("via"))


async def _eventually(probe: Any, timeout: float = 30.0) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = probe()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError("attente dépassée")
        await asyncio.sleep(0.3)


async def test_folders_made_before_the_bot_had_shards_take_the_new_account_in(
    synapse: Any, tmp_path: Any, pro_factory: Any
) -> None:
    """`bot.shards` raised on a running deployment: the person's folder made by the front
    alone lets the new account in, which files its rooms in that same folder."""
    front_id = synapse.bot_user_id
    shard_id = f"@cercle-bot-2:{synapse.server_name}"
    alone = BotRunner(synapse, make_bot_config(synapse, tmp_path / "bot"))
    await alone.start()
    alice = await pro_factory()
    try:
        dm = await dm_with_bot(alice, front_id)
        await alice.say(dm, "!patient nouveau Avant")
        notice = await alice.wait_notice(dm, "Salon patient « Avant » créé")
        before = room_id_in(notice.source["content"]["body"])
        await alice.wait_member(before, alice.user_id)
        start = alice.mark(before)
        await alice.say(before, "!urgent chute")
        await alice.wait_notice(before, "URGENCE signalée", start=start)
        folders = alone.app.services.flags.folders  # type: ignore[union-attr]
        space = await _eventually(lambda: folders.space_of(alice.user_id, FlagKind.URGENT))
        await alice.wait_member(space, alice.user_id)
        await _eventually(lambda: _child(alice, space, before))
    finally:
        await alone.stop()

    front, shard = await two_accounts(synapse, tmp_path)
    try:
        await shard.start()
        await front.start()
        await alice.wait_member(space, shard_id)  # invited by the front, joined
        levels = await _state(alice, space, "m.room.power_levels")
        assert levels["users"][shard_id] == 100
        room = await room_of_the_shard(alice, dm, "Après", shard_id)
        await alice.wait_member(room, shard_id)
        start = alice.mark(room)
        await alice.say(room, "!urgent chute")
        await alice.wait_notice(room, "URGENCE signalée", start=start)
        await _eventually(lambda: _child(alice, space, room))  # the same folder
        assert await _child(alice, space, before)
    finally:
        await front.stop()
        await shard.stop()


async def test_a_room_made_while_its_account_is_down_waits_for_it(
    synapse: Any, tmp_path: Any, pro_factory: Any
) -> None:
    """The account a room is made for is down (its process stopped): the front stays in the
    room, so that it can still be joined (a room whose last member left cannot be, from this
    server), answers nothing there, and leaves it once that account has come and joined."""
    front, shard = await two_accounts(synapse, tmp_path)
    front_id, shard_id = front.config.user_id, shard.config.user_id
    try:
        await front.start()  # the second account is not running
        alice = await pro_factory()
        dm = await dm_with_bot(alice, front_id)
        # joined by alice: joinable, the front is still in it
        room = await room_of_the_shard(alice, dm, "Attente", shard_id)
        joined = {m.user_id for m in (await alice.client.joined_members(room)).members}
        assert joined == {alice.user_id, front_id}
        start = alice.mark(room)
        await alice.say(room, "!aide")  # the front leaves it to the room's account
        await asyncio.sleep(3)
        assert not [
            e for e in alice.events.get(room, [])[start:] if getattr(e, "sender", "") == front_id
        ]

        await shard.start()  # it joins from the invitation; the front then leaves
        await alice.wait_member(room, shard_id)

        async def front_left() -> bool:
            members = (await alice.client.joined_members(room)).members
            return {m.user_id for m in members} == {alice.user_id, shard_id}

        await _eventually(front_left)
        start = alice.mark(room)
        await alice.say(room, "!aide")
        assert (
            await alice.wait_notice(room, "Commandes du bot Cercle", start=start)
        ).sender == shard_id
    finally:
        await front.stop()
        await shard.stop()
