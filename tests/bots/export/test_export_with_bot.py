"""!export through the real bot application (BotApp wiring, sync loop, handlers)."""

from __future__ import annotations

import aiohttp
import pytest
from pypdf import PdfReader

from bots.export.media import MediaFetcher, MediaSource
from tests.bots.conftest import patient_room_with

pytestmark = pytest.mark.integration


def is_bot_file(bot_user_id: str):
    def check(event) -> bool:
        content = event.source.get("content", {})
        return event.sender == bot_user_id and content.get("msgtype") == "m.file"

    return check


async def test_export_by_the_running_bot_while_it_keeps_answering(
    bot, pro_factory, synapse, tmp_path
) -> None:
    alice = await pro_factory()
    bob = await pro_factory()
    room_id = await patient_room_with(alice, [bob], synapse.bot_user_id, label="Suivi plaie")
    await alice.say(room_id, "Pansement refait, plaie propre. Œdème léger, coût 12 €.")
    for i in range(150):  # enough history for the export to take a while
        await alice.say(room_id, f"Transmission {i} : constantes stables, à revoir demain.")
    await bob.say(room_id, "Bien noté — Привет")
    other = await patient_room_with(bob, [], synapse.bot_user_id, label="Autre patient")
    start = alice.mark(room_id)
    await alice.say(room_id, "!export")
    await bob.say(other, "!aide")
    await bob.say(room_id, "!aide")
    await alice.wait_notice(room_id, "Export en cours…", start=start)
    help_notice = await bob.wait_notice(other, "Commandes du bot Cercle")
    pdf_event = await alice.wait_for(
        room_id, is_bot_file(synapse.bot_user_id), timeout=60, start=start
    )
    announce = await alice.wait_notice(room_id, "Export PDF de la conversation par", start=start)
    # the bot answered the other room, and this room too, while the export was running
    same_room_help = await alice.wait_notice(room_id, "Commandes du bot Cercle", start=start)
    assert help_notice.server_timestamp < pdf_event.server_timestamp
    assert same_room_help.server_timestamp < pdf_event.server_timestamp
    assert "ci-dessus" in announce.source["content"]["body"]

    content = pdf_event.source["content"]
    assert "file" in content and "url" not in content
    assert content["body"].startswith("Transcription_Suivi-plaie_")
    async with aiohttp.ClientSession() as session:
        fetched = await MediaFetcher(
            session, alice.client.homeserver, alice.client.access_token, tmp_path
        ).fetch(MediaSource.from_content(content))
    text = "\n".join(page.extract_text() for page in PdfReader(fetched.path).pages)
    assert "Pansement refait, plaie propre. Œdème léger, coût 12 €." in text
    assert "Bien noté — Привет" in text
    assert "page 1 / " in text
    assert "Transmission 149 : constantes stables" in text
