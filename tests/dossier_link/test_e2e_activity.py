"""The activity a patient room reports to its file (issue 18), end to end: real Synapse, the
bot, the dossier. Messages are counted once per day (never read), an urgency and its
acknowledgement arrive tied together, and nothing is told in the room about it."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from support import eventually

from dossier_service.db import build_database
from dossier_service.models.activity import ActivityEvent
from tests.dossier_link.test_e2e_sync import Env, env  # noqa: F401

pytestmark = pytest.mark.integration


async def activity_rows(env: Env, pid: str) -> list[ActivityEvent]:  # noqa: F811
    db = build_database(env.server.config.database_url)
    try:
        async with db.sessions() as session:
            rows = await session.exec(
                select(ActivityEvent).where(ActivityEvent.patient_id == pid)  # type: ignore[arg-type]
            )
            return [row[0] for row in rows.all()]
    finally:
        await db.dispose()


async def test_a_rooms_messages_and_urgency_reach_its_file_as_counts(env: Env) -> None:  # noqa: F811
    nurse, gp = await env.make_pro(), await env.make_pro()
    room_id, pid = await env.patient_room(nurse, "Suivi M. A.")
    await nurse.say(room_id, f"!cercle ajouter {gp.user_id} medecin_traitant")
    await gp.wait_member(room_id, gp.user_id)
    for text in ("Pansement fait ce matin", "RAS", "Tension 13/8"):
        await nurse.say(room_id, text)
    await gp.say(room_id, "Merci, je passe jeudi")
    await nurse.say(room_id, "!urgent Chute ce matin")
    await gp.wait_notice(room_id, "URGENCE")
    await gp.say(room_id, "!vu")
    await nurse.wait_notice(room_id, "prise en compte par")

    app: Any = env.runner.app
    sync = app.dossier_sync

    async def reported() -> list[ActivityEvent]:
        if sync.activity.flush():  # what the bot's minute job does
            sync.worker.wake()
        return await activity_rows(env, pid)

    def complete(rows: list[ActivityEvent]) -> bool:
        kinds = {r.kind for r in rows}
        return {"messages", "signalement", "prise_en_compte"} <= kinds

    rows = await eventually(reported, complete, what="activité du salon dans le dossier")
    messages = [r for r in rows if r.kind == "messages"]
    # every human message of the room: the commands too (!cercle, !urgent, !vu), the bot's own
    # notices never
    assert len(messages) == 1 and messages[0].count == 7
    (flag,) = [r for r in rows if r.kind == "signalement"]
    (ack,) = [r for r in rows if r.kind == "prise_en_compte"]
    assert flag.flag_kind == "urgent" and ack.of_ref == flag.ref and ack.at >= flag.at

    # counted again after a replay: still 7 (the running total, not a sum)
    sync.activity.flush()
    sync.worker.wake()
    again = await activity_rows(env, pid)
    assert [r.count for r in again if r.kind == "messages"] == [7]
    # nothing about it was said in the room
    notices = await nurse.bot_notices_so_far(room_id, env.bot_id)
    assert notices and not any("activité" in n for n in notices)
