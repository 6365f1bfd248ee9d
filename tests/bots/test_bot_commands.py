"""The bot's commands against a real Synapse, in encrypted rooms, with real E2EE clients."""

from __future__ import annotations

import secrets

import pytest

from tests.bots.conftest import WELCOME, dm_with_bot

pytestmark = pytest.mark.integration


async def test_help_in_direct_chat(bot, pro_factory, synapse):
    alice = await pro_factory()
    dm = await dm_with_bot(alice, synapse.bot_user_id)
    await alice.say(dm, "!aide")
    notice = await alice.wait_notice(dm, "Commandes du bot Cercle")
    body = notice.source["content"]["body"]
    assert "!urgent [motif]" in body and "!patient nouveau <libellé>" in body
    assert "en anglais : !help" in body
    assert notice.source["content"]["format"] == "org.matrix.custom.html"


async def test_new_direct_chat_is_greeted_once(bot, pro_factory, synapse):
    """A newcomer opening a direct chat gets a short French greeting naming the three
    commands that matter; a command afterwards gets its answer, no second greeting."""
    alice = await pro_factory()
    dm = await dm_with_bot(alice, synapse.bot_user_id)
    greeting = await alice.wait_notice(dm, WELCOME)
    body = greeting.source["content"]["body"]
    for command in ("!patient nouveau <libellé>", "!dossiers", "!aide"):
        assert command in body, command
    start = alice.mark(dm)
    await alice.say(dm, "!aide vu")
    await alice.wait_notice(dm, "!vu", start=start)
    assert alice.notices(dm, synapse.bot_user_id) == [
        n for n in alice.notices(dm, synapse.bot_user_id) if not n.startswith(WELCOME)
    ]
    bodies = [e.source["content"].get("body", "") for e in alice.events[dm]]
    assert sum(b.startswith(WELCOME) for b in bodies) == 1


async def test_a_label_that_looks_like_a_name_is_questioned(bot, pro_factory, synapse):
    alice = await pro_factory()
    dm = await dm_with_bot(alice, synapse.bot_user_id)
    await alice.say(dm, "!patient nouveau Mme TEST Jeanne")
    asked = await alice.wait_notice(dm, "ressemble à l'identité d'un patient")
    assert "!patient nouveau Suivi Mme T." in asked.source["content"]["body"]
    assert not any("créé" in n for n in alice.notices(dm, synapse.bot_user_id))  # no room
    await alice.say(dm, "!patient nouveau Suivi Mme T.")
    await alice.wait_notice(dm, "Salon patient « Suivi Mme T. » créé")
    await alice.say(dm, "!patient nouveau confirmer Mme TEST Jeanne")
    await alice.wait_notice(dm, "Salon patient « Mme TEST Jeanne » créé")  # confirmed


async def _get_state(pro, room_id: str, event_type: str, key: str = "") -> dict | None:
    resp = await pro.client.room_get_state_event(room_id, event_type, key)
    content = getattr(resp, "content", None)
    return dict(content) if content is not None and not getattr(resp, "status_code", None) else None


async def test_patient_room_created_from_direct_chat(bot, pro_factory, synapse):
    alice = await pro_factory()
    dm = await dm_with_bot(alice, synapse.bot_user_id)
    await alice.say(dm, "!patient nouveau Suivi plaie jambe")
    notice = await alice.wait_notice(dm, "Salon patient « Suivi plaie jambe » créé")
    room_id = (
        next(
            part
            for part in notice.source["content"]["body"].split()
            if part.startswith("https://matrix.to/#/!")
        )
        .split("#/")[1]
        .split("?")[0]
    )
    await alice.wait_for(room_id, lambda ev: True, timeout=20)  # invite accepted, timeline seen
    room = alice.client.rooms[room_id]
    assert room.encrypted
    assert room.join_rule == "invite"
    assert room.name == "Suivi plaie jambe"
    assert room.power_levels.get_user_level(alice.user_id) == 100
    state = (await alice.client.room_get_state(room_id)).events
    create = next(ev for ev in state if ev["type"] == "m.room.create")
    assert create["sender"] == synapse.bot_user_id  # room v12: the creator outranks level 100
    history = await _get_state(alice, room_id, "m.room.history_visibility")
    assert history == {"history_visibility": "shared"}
    patient = await _get_state(alice, room_id, "fr.cercle.patient")
    assert set(patient) == {"id", "version"} and patient["id"].startswith("P-")


async def test_patient_command_bad_input(bot, pro_factory, synapse):
    alice = await pro_factory()
    dm = await dm_with_bot(alice, synapse.bot_user_id)
    usage = "Usage : !patient nouveau <libellé>"
    for command, reply, with_usage in (
        ("!patient", "Il manque la sous-commande", True),
        ("!patient nouveau", "Il manque le libellé du salon", True),
        ("!patient nouveau " + "x" * 81, "trop long : 81 caractères (maximum 80)", False),
        ("!patientnouveau x", "Commande inconnue : « !patientnouveau »", False),
        (
            f"!inviter @bob:{synapse.server_name}",
            "Cette commande s'utilise dans un salon patient.",
            False,
        ),
    ):
        await alice.say(dm, command)
        notice = await alice.wait_notice(dm, reply)
        assert not with_usage or usage in notice.source["content"]["body"], command


async def test_invite_rules(bot, pro_factory, synapse):
    from tests.bots.conftest import patient_room_with

    alice, bob, carol = await pro_factory(), await pro_factory(), await pro_factory()
    room_id = await patient_room_with(alice, [bob], synapse.bot_user_id, "Invitations")
    start = alice.mark(room_id)
    await bob.say(room_id, f"!inviter {carol.user_id}")
    await alice.wait_notice(room_id, "Droits insuffisants : niveau 50 requis", start=start)
    await alice.say(room_id, f"!invite {bob.user_id}")
    await alice.wait_notice(room_id, "est déjà membre de ce salon", start=start)
    await alice.say(room_id, f"!inviter @personne-{bob.user_id[1:8]}:{synapse.server_name}")
    await alice.wait_notice(room_id, "compte introuvable", start=start)
    await alice.say(room_id, f"!inviter {carol.user_id}")
    await alice.wait_notice(room_id, "a été invité(e) dans ce salon", start=start)
    await carol.wait_member(room_id, carol.user_id)

    # issue 11: a bare localpart of this server, an exact display name (one account), or an
    # ambiguous name that lists the candidates
    dave, erin, fred = await pro_factory(), await pro_factory(), await pro_factory()
    await alice.say(room_id, f"!inviter {dave.user_id[1:].split(':')[0]}")
    # names, not ids (issue 13): without a display name of his own, Synapse's is his localpart
    await alice.wait_notice(
        room_id, f"{dave.user_id[1:].split(':')[0]} a été invité(e)", start=start
    )
    tag = secrets.token_hex(3)
    await erin.client.set_displayname(f"Erin Kiné {tag}")
    for pro in (dave, fred):
        await pro.client.set_displayname(f"Homonyme {tag}")
    await alice.say(room_id, f"!inviter erin kiné {tag}")
    await alice.wait_notice(room_id, f"Erin Kiné {tag} a été invité(e)", start=start)
    await alice.say(room_id, f"!inviter Homonyme {tag}")
    listing = await alice.wait_notice(room_id, "Plusieurs comptes s'appellent", start=start)
    body = listing.source["content"]["body"]
    assert dave.user_id in body and fred.user_id in body
