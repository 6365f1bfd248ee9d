"""Restarts and outages: nothing lost, nothing handled twice; edits and non-members."""

from __future__ import annotations

import asyncio

import pytest

from bots.config import EscalationConfig
from tests.bots.conftest import dm_with_bot, patient_room_with

pytestmark = pytest.mark.integration


async def test_commands_sent_while_down_are_handled_once_after_restart(
    bot_factory, pro_factory, synapse
):
    runner = bot_factory(escalation=EscalationConfig(interval_minutes=0.05, max_reminders=1))
    await runner.start()
    alice, bob = await pro_factory(), await pro_factory()
    room_id = await patient_room_with(alice, [bob], synapse.bot_user_id, "Redémarrage")
    dm = await dm_with_bot(alice, synapse.bot_user_id)
    await alice.say(dm, "!aide")
    await alice.wait_notice(dm, "Commandes du bot Cercle")

    await runner.stop()
    await alice.say(room_id, "!urgent pendant l'arrêt")
    await alice.say(dm, "!help flags")
    await runner.start()  # same data directory: same device, token and ledger

    await bob.wait_notice(room_id, "URGENCE signalée")
    await alice.wait_notice(dm, "!flags")
    # the escalation scheduled before a second restart is resumed by the next process
    await runner.stop()
    await runner.start()
    await bob.wait_notice(room_id, "Rappel 1/1", timeout=20)
    in_dm = await alice.bot_notices_so_far(dm, synapse.bot_user_id)
    in_room = await bob.bot_notices_so_far(room_id, synapse.bot_user_id)
    assert sum("Commandes du bot Cercle" in b for b in in_dm) == 1
    assert sum("URGENCE signalée" in b for b in in_room) == 1
    assert sum("Rappel 1/1" in b for b in in_room) == 1
    assert runner.app.client.device_id == runner.config.device_id


async def test_replayed_events_after_a_crash_produce_no_duplicates(bot, pro_factory, synapse):
    """A crash after the replies were sent but before the ledger and the token were saved:
    the events are handled again, and the homeserver drops the repeated transactions."""
    alice, bob = await pro_factory(), await pro_factory()
    room_id = await patient_room_with(alice, [bob], synapse.bot_user_id, "Crash")
    ledger = bot.app.ledger
    # the bot is past the room's creation and its own join (a later command answered): the
    # token to rewind to is after them
    await alice.bot_notices_so_far(room_id, synapse.bot_user_id)
    token_before = ledger.sync_token()
    start = alice.mark(room_id)
    await alice.say(room_id, "!urgent rejouer")
    notice = await bob.wait_notice(room_id, "URGENCE signalée")
    await bob.react(room_id, notice.event_id, "✅")
    await alice.wait_notice(room_id, "Urgence prise en compte", start=start)
    await alice.say(room_id, "!aide vu")
    await alice.wait_notice(room_id, "!vu", start=start)

    await bot.kill()
    # simulate the crash: forget the handling and the token
    db = __import__("sqlite3").connect(bot.config.ledger_path)
    db.execute("DELETE FROM handled_events WHERE room_id=?", (room_id,))
    db.execute("UPDATE sync_state SET value=? WHERE key='next_batch'", (token_before,))
    db.commit()
    db.close()
    await bot.start()
    bot_notices = await alice.bot_notices_so_far(room_id, synapse.bot_user_id)
    assert sum("URGENCE signalée" in b for b in bot_notices) == 1
    assert sum("Urgence prise en compte" in b for b in bot_notices) == 1
    assert sum("!vu" in b and "accuse réception" in b for b in bot_notices) == 1


async def test_abrupt_stop_in_the_middle_loses_nothing(bot, pro_factory, synapse):
    alice = await pro_factory()
    dm = await dm_with_bot(alice, synapse.bot_user_id)
    words = ["urgent", "demande", "atraiter", "fait", "vu", "flags", "patient", "inviter"]
    for word in words:
        await alice.say(dm, f"!aide {word}")
    await alice.wait_notice(dm, "!urgent [motif]")
    await bot.kill()
    await bot.start()
    for word in words:
        await alice.wait_notice(dm, f"!{word}")
    bodies = await alice.bot_notices_so_far(dm, synapse.bot_user_id)
    assert len(bodies) == len(words), bodies
    assert len(set(bodies)) == len(words)


async def test_homeserver_restarted_under_the_bot(bot, pro_factory, synapse):
    alice = await pro_factory()
    dm = await dm_with_bot(alice, synapse.bot_user_id)
    await asyncio.to_thread(synapse.restart)
    await alice.say(dm, "!aide")
    await alice.wait_notice(dm, "Commandes du bot Cercle", timeout=60)
    await alice.say(dm, "!aide urgent")
    await alice.wait_notice(dm, "!urgent [motif]", timeout=30)


async def test_edits_and_non_members_and_unknown_commands(bot_factory, pro_factory, synapse):
    runner = bot_factory()
    await runner.start()
    alice, bob = await pro_factory(), await pro_factory()
    room_id = await patient_room_with(alice, [bob], synapse.bot_user_id, "Membres")
    start = alice.mark(room_id)
    first = await alice.say(room_id, "!aide fait")
    await alice.wait_notice(room_id, "!fait [quoi]", start=start)
    await alice.say(
        room_id,
        "* !aide vu",
        {
            "msgtype": "m.text",
            "body": "* !aide vu",
            "m.new_content": {"msgtype": "m.text", "body": "!aide vu"},
            "m.relates_to": {"rel_type": "m.replace", "event_id": first},
        },
    )
    await alice.say(room_id, "!nimportequoi")
    await alice.wait_notice(room_id, "Commande inconnue : « !nimportequoi »", start=start)

    # bob sends a command while the bot is away, then leaves: not a member when it is handled
    await runner.stop()
    await bob.say(room_id, "!urgent parti")
    await bob.client.room_leave(room_id)
    await runner.start()
    await alice.wait_notice(room_id, "réservée aux membres", start=start)
    bodies = (await alice.bot_notices_so_far(room_id, synapse.bot_user_id))[-4:]
    assert not any("URGENCE" in b for b in bodies)
    assert not any("accuse réception de l'urgence" in b for b in bodies)  # the edit was ignored


async def test_events_from_before_the_bot_joined_are_ignored(bot, pro_factory, synapse):
    alice = await pro_factory()
    room_id = await alice.create_room(invite=[], name="Avant")
    early = await alice.say(room_id, "!aide urgent")
    await alice.client.room_invite(room_id, synapse.bot_user_id)
    await alice.wait_member(room_id, synapse.bot_user_id)
    start = alice.mark(room_id)
    await alice.say(room_id, "!aide vu")
    # the answer to « !aide vu », said after the early command, is the barrier: had the bot
    # handled the early one, its reply would be here already
    await alice.wait_notice(room_id, "!vu", start=start)
    assert alice.notices(room_id, synapse.bot_user_id) == [
        b for b in alice.notices(room_id, synapse.bot_user_id) if "!vu" in b
    ]
    assert all(e != early for e, _, _ in bot.app.ledger.all_undecrypted())


async def test_long_absence_gap_is_fetched_back(bot_factory, pro_factory, synapse):
    """More commands while the bot is away than one sync returns: none is lost."""
    runner = bot_factory(sync_timeline_limit=2)
    await runner.start()
    alice = await pro_factory()
    dm = await dm_with_bot(alice, synapse.bot_user_id)
    await runner.stop()
    words = ["urgent", "demande", "atraiter", "fait", "vu", "dossiers"]
    for word in words:
        await alice.say(dm, f"!aide {word}")
    await alice.say(dm, "du texte")
    await alice.say(dm, "encore du texte")
    await runner.start()
    for word in words:
        await alice.wait_notice(dm, f"• !{word}")
    assert len(await alice.bot_notices_so_far(dm, synapse.bot_user_id)) == len(words)


async def test_a_kill_ends_what_the_components_started_beside_the_sync_loop(bot_factory):
    """A greeting waiting for its direct chat, a key request, an export, a newcomer's welcome
    outlived the bot's close: each acted after the stop, and calling the closed client made
    nio open an HTTP session nobody closed (« Unclosed client session » after the tests)."""
    runner = bot_factory()
    app = await runner.start()
    sides = app.services.side_work
    handlers, undecryptable = app.sync_loop.handlers, app.sync_loop.undecryptable
    assert any(s is handlers.tasks for s in sides)  # type: ignore[attr-defined]
    assert any(s is undecryptable.tasks for s in sides)
    assert app.services.arrivals is not None
    assert any(s is app.services.arrivals.tasks for s in sides)
    assert app.services.handover is not None  # a room's handover to another of its accounts
    assert any(s is app.services.handover.tasks for s in sides) and len(sides) == 5
    waiting = [side.spawn(asyncio.sleep(3600), name="en attente") for side in sides]

    await runner.kill()
    assert all(task.cancelled() for task in waiting)
    assert all(len(side) == 0 for side in sides)
    assert app.client.client_session is None  # closed, and nothing opened it again
