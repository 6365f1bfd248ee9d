"""The server never sees clinical content: after a conversation with the bot (messages and a
flag motif), Synapse's database holds neither the marker nor the motif."""

from __future__ import annotations

import secrets
import sqlite3

import pytest

from tests.bots.conftest import patient_room_with

pytestmark = pytest.mark.integration


async def test_no_marker_nor_motif_in_synapse_database(bot, pro_factory, synapse):
    alice, bob = await pro_factory(), await pro_factory()
    marker = "MARQUEUR" + secrets.token_hex(8).upper()
    motif = "MOTIF" + secrets.token_hex(8).upper() + " hypoglycémie sévère"
    room_id = await patient_room_with(alice, [bob], synapse.bot_user_id, "Confidentiel")
    start = alice.mark(room_id)
    await alice.say(room_id, f"Bonjour, tension 14/9 ce matin {marker}")
    await bob.say(room_id, f"Bien reçu {marker}")
    await alice.say(room_id, f"!urgent {motif}")
    notice = await bob.wait_notice(room_id, "URGENCE signalée")
    assert motif in notice.source["content"]["body"]  # the team reads it…
    await bob.say(room_id, "!vu")
    await alice.wait_notice(room_id, "Urgence prise en compte", start=start)
    await alice.say(room_id, "!fait urgent")
    await alice.wait_notice(room_id, "levé par", start=start)

    # … the server does not: not in the events, nor anywhere in the database files
    db = sqlite3.connect(f"file:{synapse.db_path}?mode=ro", uri=True)
    try:
        rows = db.execute(
            "SELECT count(*) FROM event_json WHERE json LIKE ? OR json LIKE ?",
            (f"%{marker}%", f"%{motif.split()[0]}%"),
        ).fetchone()[0]
        total = db.execute(
            "SELECT count(*) FROM event_json WHERE room_id=?", (room_id,)
        ).fetchone()[0]
    finally:
        db.close()
    assert total > 10  # the conversation is there, encrypted
    assert rows == 0
    for path in synapse.db_path.parent.glob(synapse.db_path.name + "*"):  # db, -wal, -shm
        data = path.read_bytes()
        assert marker.encode() not in data, path
        assert motif.split()[0].encode() not in data, path
        assert "hypoglycémie".encode() not in data, path
