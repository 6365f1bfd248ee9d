"""The bot dies right after saving a cleared urgent flag, before stopping its escalation:
after the restart no reminder is sent for the urgency that is no longer there (the room's
state decides, not the bot's escalation table). Real Synapse, real E2EE bot in-process.

The reminder falls due while the bot is down (its schedule is moved to "now" in the bot's
own file, as a long absence would): no reminder can come before the answer, however slow
the machine, and the restarted bot's decision is waited for, not slept past."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support import die_after

from bots.config import EscalationConfig
from bots.flags.escalation import Escalation, EscalationStore
from bots.flags.model import STATE_TYPE
from bots.matrix.ledger import now_ms, open_database
from tests.bots.conftest import Pro, patient_room_with
from tests.bots.test_bot_flags import eventually, flags_state

pytestmark = pytest.mark.integration


def reminder_due_now(ledger_path: Path, room_id: str) -> None:
    """While the bot is down: its escalation of ``room_id`` is still running (the crash cut
    it short) and its first reminder falls due now."""
    db = open_database(ledger_path)
    try:
        store = EscalationStore(db)
        esc = store.get(room_id)
        assert esc is not None and esc.state == "running" and esc.reminders_sent == 0, esc
        store.record_reminder(room_id, esc.reminders_sent, now_ms(), exhausted=False)
    finally:
        db.close()


async def escalation_settled(app: Any, room_id: str) -> Escalation | None:
    """The restarted bot's escalation of ``room_id`` once it has dealt with the due reminder:
    stopped (gone or acknowledged) or sent (counted)."""

    async def current() -> Escalation | None:
        return app.escalator.store.get(room_id)

    def settled(esc: Escalation | None) -> bool:
        return esc is None or esc.state != "running" or esc.reminders_sent > 0

    return await eventually(current, settled, what="rappel échu traité par le bot relancé")


async def urgency_answered_then_crash(
    bot_factory: Any,
    pro_factory: Any,
    synapse: Any,
    room_name: str,
    answer: str,
    dies: Callable[[Any], asyncio.Event],
) -> tuple[Pro, Pro, str, Any]:
    """Alice raises an urgency in a patient room with Bob, escalating every 10 minutes; Bob
    answers with `answer`, the bot dies where `dies` says, the first reminder falls due while
    it is down, it starts again: Alice, Bob, the room, the restarted bot."""
    runner = bot_factory(escalation=EscalationConfig(interval_minutes=10, max_reminders=3))
    app = await runner.start()
    alice, bob = await pro_factory(), await pro_factory()
    room_id = await patient_room_with(alice, [bob], synapse.bot_user_id, room_name)
    await alice.say(room_id, "!urgent")
    await bob.wait_notice(room_id, "URGENCE signalée")
    died = dies(app)
    await bob.say(room_id, answer)
    await asyncio.wait_for(died.wait(), 30)
    await runner.kill()
    reminder_due_now(runner.config.ledger_path, room_id)
    return alice, bob, room_id, await runner.start()


def die_after_clearing(app: Any) -> asyncio.Event:
    """The cleared flags state is saved; nothing after it runs."""

    def cleared(room_id: str, event_type: str, content: Any, *_: Any) -> bool:
        return event_type == STATE_TYPE and not content.get("flags")

    return die_after(app.services.flags.io, "put_state", cleared)


async def test_no_reminder_for_an_urgency_cleared_just_before_a_crash(
    bot_factory, pro_factory, synapse
):
    _alice, bob, room_id, app = await urgency_answered_then_crash(
        bot_factory, pro_factory, synapse, "Escalade coupée", "!fait urgent", die_after_clearing
    )
    await eventually(lambda: flags_state(bob, room_id), lambda c: c.get("flags") == {})
    assert await escalation_settled(app, room_id) is None  # stopped, nothing sent
    notices = await bob.bot_notices_so_far(room_id, synapse.bot_user_id)
    assert not [b for b in notices if "Rappel" in b]


def die_after_acknowledging(app: Any) -> asyncio.Event:
    """The acknowledgement is saved; nothing after it runs."""

    def acknowledged(room_id: str, event_type: str, content: Any, *_: Any) -> bool:
        urgent = content.get("flags", {}).get("urgent", {}) if event_type == STATE_TYPE else {}
        return bool(urgent.get("acknowledged_by"))

    return die_after(app.services.flags.io, "put_state", acknowledged)


async def test_acknowledgement_replayed_after_a_crash_is_finished(
    bot_factory, pro_factory, synapse
):
    alice, bob, room_id, app = await urgency_answered_then_crash(
        bot_factory, pro_factory, synapse, "Accusé coupé", "!vu", die_after_acknowledging
    )
    await alice.wait_notice(room_id, "Urgence prise en compte par")
    # stopped by the due reminder (the room's state is acknowledged) or by the replayed !vu,
    # whichever came first; never sent
    esc = await escalation_settled(app, room_id)
    assert esc is None or (esc.state == "acknowledged" and esc.reminders_sent == 0), esc
    notices = await bob.bot_notices_so_far(room_id, synapse.bot_user_id)
    assert not [b for b in notices if "déjà prise en compte" in b]
    assert sum("Urgence prise en compte par" in b for b in notices) == 1
    assert not [b for b in notices if "Rappel" in b]
