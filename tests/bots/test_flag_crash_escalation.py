"""The bot dies right after saving a cleared urgent flag, before stopping its escalation:
after the restart no reminder is sent for the urgency that is no longer there (the room's
state decides, not the bot's escalation table). Real Synapse, real E2EE bot in-process."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from support import die_after

from bots.config import EscalationConfig
from bots.flags.model import STATE_TYPE
from tests.bots.conftest import Pro, patient_room_with
from tests.bots.test_bot_flags import eventually, flags_state

pytestmark = pytest.mark.integration


async def urgency_answered_then_crash(
    bot_factory: Any,
    pro_factory: Any,
    synapse: Any,
    room_name: str,
    answer: str,
    dies: Callable[[Any], asyncio.Event],
) -> tuple[Pro, Pro, str]:
    """Alice raises an urgency in a patient room with Bob, escalating every 4.8 s; Bob answers
    with `answer`, the bot dies where `dies` says and starts again: Alice, Bob, the room."""
    runner = bot_factory(escalation=EscalationConfig(interval_minutes=0.08, max_reminders=3))
    app = await runner.start()
    alice, bob = await pro_factory(), await pro_factory()
    room_id = await patient_room_with(alice, [bob], synapse.bot_user_id, room_name)
    await alice.say(room_id, "!urgent")
    await bob.wait_notice(room_id, "URGENCE signalée")
    died = dies(app)
    await bob.say(room_id, answer)
    await asyncio.wait_for(died.wait(), 30)
    await runner.kill()
    await runner.start()
    return alice, bob, room_id


def die_after_clearing(app: Any) -> asyncio.Event:
    """The cleared flags state is saved; nothing after it runs."""

    def cleared(room_id: str, event_type: str, content: Any, *_: Any) -> bool:
        return event_type == STATE_TYPE and not content.get("flags")

    return die_after(app.services.flags.io, "put_state", cleared)


async def test_no_reminder_for_an_urgency_cleared_just_before_a_crash(
    bot_factory, pro_factory, synapse
):
    _alice, bob, room_id = await urgency_answered_then_crash(
        bot_factory, pro_factory, synapse, "Escalade coupée", "!fait urgent", die_after_clearing
    )
    await eventually(lambda: flags_state(bob, room_id), lambda c: c.get("flags") == {})
    await asyncio.sleep(12)  # more than two escalation intervals (4.8 s)
    await bob.sync_once(0)
    reminders = [b for b in bob.notices(room_id, synapse.bot_user_id) if "Rappel" in b]
    assert reminders == []


def die_after_acknowledging(app: Any) -> asyncio.Event:
    """The acknowledgement is saved; nothing after it runs."""

    def acknowledged(room_id: str, event_type: str, content: Any, *_: Any) -> bool:
        urgent = content.get("flags", {}).get("urgent", {}) if event_type == STATE_TYPE else {}
        return bool(urgent.get("acknowledged_by"))

    return die_after(app.services.flags.io, "put_state", acknowledged)


async def test_acknowledgement_replayed_after_a_crash_is_finished(
    bot_factory, pro_factory, synapse
):
    alice, bob, room_id = await urgency_answered_then_crash(
        bot_factory, pro_factory, synapse, "Accusé coupé", "!vu", die_after_acknowledging
    )
    await alice.wait_notice(room_id, "Urgence prise en compte par")
    await asyncio.sleep(6)  # beyond one escalation interval (4.8 s)
    await bob.sync_once(0)
    notices = bob.notices(room_id, synapse.bot_user_id)
    assert not [b for b in notices if "déjà prise en compte" in b]
    assert sum("Urgence prise en compte par" in b for b in notices) == 1
    assert not [b for b in notices if "Rappel" in b]
