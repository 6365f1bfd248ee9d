"""The bot dies right after a flag's state is saved, before the liaison-notebook entry was
written: after the restart the file still gets exactly one entry for the flag raised and one
for the flag cleared (issue 6: "bot killed in the middle → no lost event").

The death is injected where it hurts: the real ``fr.cercle.flags`` state is sent to Synapse,
then the handling task is cancelled (what a kill leaves behind: state saved, command only
"started" in the ledger, sync token not advanced), the bot is stopped abruptly and started
again on the same data directory, so the command is replayed.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from support import die_after

from bots.dossier_link.service import FlagJournal
from bots.flags.model import STATE_TYPE
from tests.dossier_link.test_e2e_sync import Env, env, eventually, notebook_texts, state  # noqa: F401

pytestmark = pytest.mark.integration


def die_after_flag_state(app: Any) -> asyncio.Event:
    """The next ``fr.cercle.flags`` write reaches Synapse, then the bot "dies"."""
    return die_after(
        app.services.flags.io, "put_state", lambda room_id, event_type, *_: event_type == STATE_TYPE
    )


async def crash_and_restart(e: Env, died: asyncio.Event) -> None:
    await asyncio.wait_for(died.wait(), 30)  # the call is done: die at once, as a SIGKILL
    await e.runner.kill()
    await e.runner.start()


async def test_flag_journal_survives_a_death_after_the_state_is_saved(env: Env) -> None:  # noqa: F811
    nurse = await env.make_pro()
    room_id, pid = await env.patient_room(nurse, "Suivi coupure")
    app = env.runner.app
    assert app is not None

    died = die_after_flag_state(app)
    await nurse.say(room_id, "!urgent Chute ce matin, douleur hanche")
    await crash_and_restart(env, died)
    assert "urgent" in (await state(nurse, room_id, STATE_TYPE)).get("flags", {})
    await eventually(
        lambda: env.file(pid),
        lambda f: any(t.startswith("Signalement « urgence » par") for t in notebook_texts(f)),
        timeout=30,
        what="signalement noté",
    )

    app = env.runner.app
    assert app is not None
    escalation = app.escalator.store.get(room_id)  # started by the replay
    assert escalation is not None and escalation.state == "running"
    for observer in app.services.flags.observers:
        if isinstance(observer, FlagJournal):
            observer.hold_ms = 2_000  # the held entry's delay, short for the test
    died = die_after_flag_state(app)
    await nurse.say(room_id, "!fait urgent")
    await crash_and_restart(env, died)
    assert (await state(nurse, room_id, STATE_TYPE)).get("flags") == {}
    await eventually(
        lambda: env.file(pid),
        lambda f: any("levé par" in t for t in notebook_texts(f)),
        timeout=30,
        what="levée du signalement notée",
    )
    # the restarted bot's outbox empty: the held entry (hold_ms) was released or delivered,
    # and a second entry, had the replay queued one, has reached the file too
    await env.dossier_work_done()
    texts = notebook_texts(await env.file(pid))
    assert sum(t.startswith("Signalement « urgence » par") for t in texts) == 1
    assert sum("Signalement « urgence » levé par" in t for t in texts) == 1
    # the replays were finished, not refused as "already flagged" / "no flag": the clear
    # notice is posted once and the room name loses its marker
    await nurse.wait_notice(room_id, "✅ Signalement « urgence » levé par")
    name = await eventually(
        lambda: state(nurse, room_id, "m.room.name"),
        lambda c: not str(c.get("name", "")).startswith("🔴"),
        what="marqueur retiré du nom",
    )
    assert name["name"] == "Suivi coupure"
    # the replayed commands are answered before a later one: past it, every answer is here
    notices = await nurse.bot_notices_so_far(room_id, env.bot_id)
    assert not [b for b in notices if "déjà signalé" in b or "Aucun signalement" in b]
    assert sum("levé par" in b for b in notices) == 1
