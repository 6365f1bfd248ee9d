"""Flags end to end: state without motif, room-name marker, notice with mentions, folders
as per-person spaces, acknowledgement by reaction, clearing, escalation."""

from __future__ import annotations

from functools import partial

import pytest
from nio import RoomGetStateEventResponse
from support import eventually as poll_until

from bots.config import EscalationConfig
from tests.bots.conftest import dm_with_bot, patient_room_with

pytestmark = pytest.mark.integration


async def flags_state(pro, room_id: str) -> dict:
    resp = await pro.client.room_get_state_event(room_id, "fr.cercle.flags", "")
    return dict(resp.content) if isinstance(resp, RoomGetStateEventResponse) else {}


# The bot's later steps (state, name, folders) follow its notice: poll for them.
eventually = partial(poll_until, timeout=30.0, what="état final", interval=0.2)


async def room_name(pro, room_id: str) -> str:
    resp = await pro.client.room_get_state_event(room_id, "m.room.name", "")
    return str(resp.content.get("name"))


async def test_urgent_flag_lifecycle(bot, pro_factory, synapse):
    alice, bob = await pro_factory(), await pro_factory()
    room_id = await patient_room_with(alice, [bob], synapse.bot_user_id, "Suivi Dupont")
    motif = "Chute au domicile, douleur hanche"

    start = alice.mark(room_id)
    await alice.say(room_id, f"!urgent {motif}")
    notice = await bob.wait_notice(room_id, "URGENCE signalée")
    content = notice.source["content"]
    assert motif in content["body"] and notice.sender == synapse.bot_user_id
    assert content["m.mentions"]["user_ids"] == [bob.user_id]
    assert bob.user_id in content["formatted_body"]

    state = await eventually(
        lambda: flags_state(alice, room_id), lambda s: "urgent" in s.get("flags", {})
    )
    urgent = state["flags"]["urgent"]
    assert urgent["by"] == alice.user_id and urgent["notice"] == notice.event_id
    assert motif not in str(state) and "motif" not in str(state).lower()
    await eventually(lambda: room_name(alice, room_id), lambda n: n == "🔴 Suivi Dupont")

    # the folder: bob's own "Urgences" space holds the room
    folders = bot.app.services.flags.folders
    space_id = await eventually(lambda: _async(folders.space_of(bob.user_id, _urgent())), bool)
    await bob.wait_member(space_id, bob.user_id)  # bob accepted the folder's invitation
    child = await bob.client.room_get_state_event(space_id, "m.space.child", room_id)
    assert isinstance(child, RoomGetStateEventResponse) and child.content.get("via")

    # flagged twice: refused with the reason
    await alice.say(room_id, "!urgence encore")
    await alice.wait_notice(room_id, "déjà signalé « urgence »", start=start)

    # !flags in bob's direct chat lists it, with a link
    dm = await dm_with_bot(bob, synapse.bot_user_id)
    await bob.say(dm, "!dossiers")
    listing = await bob.wait_notice(dm, "Salons signalés (1)")
    assert "🔴 Suivi Dupont" in listing.source["content"]["body"]
    assert f"https://matrix.to/#/{room_id}" in listing.source["content"]["body"]
    # !flags in the patient room itself: refused (it would list other rooms to everyone)
    await bob.say(room_id, "!flags")
    await bob.wait_notice(room_id, "conversation directe avec le bot")

    # the flagger's own reaction does not acknowledge; bob's does
    await alice.react(room_id, notice.event_id)
    await bob.react(room_id, notice.event_id, "👀")
    ack = await alice.wait_notice(room_id, "Urgence prise en compte par", start=start)
    assert alice.user_id in ack.source["content"]["m.mentions"]["user_ids"]
    assert f"Motif : {motif}" in ack.source["content"]["body"]  # nobody acknowledges blind
    await eventually(
        lambda: flags_state(alice, room_id),
        lambda s: s["flags"]["urgent"].get("acknowledged_by") == bob.user_id,
    )
    esc = bot.app.escalator.store.get(room_id)
    assert esc is not None and esc.state == "acknowledged" and esc.acknowledged_by == bob.user_id

    # cleared, then cleared twice
    mark = alice.mark(room_id)
    await alice.say(room_id, "!fait urgent")
    await alice.wait_notice(room_id, "Signalement « urgence » levé", start=mark)
    await eventually(lambda: flags_state(alice, room_id), lambda s: s == {"flags": {}})
    await eventually(lambda: room_name(alice, room_id), lambda n: n == "Suivi Dupont")
    child = await bob.client.room_get_state_event(space_id, "m.space.child", room_id)
    assert not getattr(child, "content", {})  # link removed (empty content)
    await alice.say(room_id, "!done urgent")
    await alice.wait_notice(room_id, "Aucun signalement « urgence » en cours", start=mark)
    await alice.say(room_id, "!fait")
    await alice.wait_notice(room_id, "Aucun signalement en cours sur ce salon", start=mark)


async def _async(value):
    return value


def _urgent():
    from bots.flags.model import FlagKind

    return FlagKind.URGENT


async def test_request_and_todo_keep_the_room_name(bot, pro_factory, synapse):
    alice, bob = await pro_factory(), await pro_factory()
    room_id = await patient_room_with(alice, [bob], synapse.bot_user_id, "Mme R. pansements")
    start = alice.mark(room_id)
    await alice.say(room_id, "!demande Renouvellement ordonnance")
    await alice.wait_notice(room_id, "Demande signalée", start=start)
    await alice.say(room_id, f"!todo {bob.user_id} Appeler le médecin traitant")
    todo = await alice.wait_notice(room_id, "À traiter, signalé", start=start)
    assert todo.source["content"]["m.mentions"]["user_ids"] == [bob.user_id]
    await eventually(lambda: room_name(alice, room_id), lambda n: n == "❓ 📌 Mme R. pansements")
    state = await flags_state(alice, room_id)
    assert state["flags"]["atraiter"]["assignee"] == bob.user_id
    # renamed by someone while flagged: the markers come back in front of the new name
    await alice.client.room_put_state(room_id, "m.room.name", {"name": "Mme R. soins"})
    await eventually(lambda: room_name(alice, room_id), lambda n: n == "❓ 📌 Mme R. soins")
    await alice.say(room_id, "!fait")
    await alice.wait_notice(room_id, "Plusieurs signalements en cours", start=start)
    await bob.say(room_id, "!fait demande")
    await alice.wait_notice(room_id, "« demande » levé par", start=start)
    await eventually(lambda: room_name(alice, room_id), lambda n: n == "📌 Mme R. soins")
    await alice.say(room_id, "!atraiter @pas-un-id")
    await alice.wait_notice(room_id, "n'est pas un identifiant Matrix valide", start=start)
    await alice.say(room_id, "!urgent " + "x" * 501)
    too_long = await alice.wait_notice(
        room_id, "Le motif est trop long : 501 caractères", start=start
    )
    assert "Usage : !urgent [motif]" in too_long.source["content"]["body"]
    await alice.say(room_id, "!fait peutetre")
    await alice.wait_notice(
        room_id, "valeur inconnue ; attendu : atraiter, demande ou urgent", start=start
    )


async def test_escalation_until_acknowledged_then_limit(bot_factory, pro_factory, synapse):
    runner = bot_factory(escalation=EscalationConfig(interval_minutes=0.03, max_reminders=2))
    app = await runner.start()
    alice, bob = await pro_factory(), await pro_factory()
    room_id = await patient_room_with(alice, [bob], synapse.bot_user_id, "Escalade")
    start = alice.mark(room_id)
    await alice.say(room_id, "!urgent saignement au point de ponction")
    await bob.wait_notice(room_id, "URGENCE signalée", start=0)
    first = await bob.wait_notice(room_id, "Rappel 1/2", timeout=15)
    assert first.source["content"]["m.mentions"]["user_ids"] == [bob.user_id]
    assert "Motif : saignement au point de ponction" in first.source["content"]["body"]
    await bob.wait_notice(room_id, "Rappel 2/2", timeout=15)

    # the limit reached, the escalation is "exhausted": never due again, so a third
    # reminder, had the bot sent one, is already in the room
    async def escalation_state() -> str | None:
        esc = app.escalator.store.get(room_id)
        return esc.state if esc else None

    await eventually(escalation_state, lambda state: state == "exhausted")
    await bob.sync_once(0)
    reminders = [b for b in bob.notices(room_id, synapse.bot_user_id) if "Rappel" in b]
    assert len(reminders) == 2 and "Dernier rappel" in reminders[-1]
    # the flagger cannot acknowledge their own urgency; a reaction on a reminder works
    await alice.say(room_id, "!vu")
    await alice.wait_notice(room_id, "par un autre membre", start=start)
    await bob.say(room_id, "!vu")
    ack = await alice.wait_notice(room_id, "Urgence prise en compte par", start=start)
    assert "Motif : saignement au point de ponction" in ack.source["content"]["body"]
    await bob.say(room_id, "!ack")
    await bob.wait_notice(room_id, "déjà prise en compte", start=start)


async def test_folder_follows_membership(bot, pro_factory, synapse):
    alice, bob = await pro_factory(), await pro_factory()
    room_id = await patient_room_with(alice, [bob], synapse.bot_user_id, "Départ")
    await alice.say(room_id, "!demande bilan")
    folders = bot.app.services.flags.folders
    from bots.flags.model import FlagKind

    space_id = await eventually(
        lambda: _async(folders.space_of(bob.user_id, FlagKind.REQUEST)), bool
    )
    await eventually(lambda: _async(folders.children(space_id)), lambda c: c == {room_id})
    await bob.client.room_leave(room_id)
    await eventually(lambda: _async(folders.children(space_id)), lambda c: c == set())
    child = await bot.app.client.room_get_state_event(space_id, "m.space.child", room_id)
    assert isinstance(child, RoomGetStateEventResponse) and child.content == {}
    alice_space = folders.space_of(alice.user_id, FlagKind.REQUEST)
    assert folders.children(alice_space) == {room_id}  # alice still has it


async def test_flag_refused_up_front_where_the_bot_has_no_rights(bot, pro_factory, synapse):
    alice, bob = await pro_factory(), await pro_factory()
    room_id = await alice.create_room(invite=[synapse.bot_user_id, bob.user_id], name="Ordinaire")
    await bob.wait_member(room_id, bob.user_id)
    await alice.wait_member(room_id, synapse.bot_user_id)
    await alice.wait_member(room_id, bob.user_id)
    await alice.say(room_id, "!urgent test")
    await alice.wait_notice(room_id, "Le bot n'a pas les droits nécessaires")
    await alice.sync_once(0)
    assert not any("URGENCE" in b for b in alice.notices(room_id))
    assert await flags_state(alice, room_id) == {}
