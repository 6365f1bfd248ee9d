"""History paging and resolution against the real Synapse, with E2EE."""

from __future__ import annotations

import hashlib
import io
from datetime import UTC, datetime

import aiohttp
import pytest
from nio import RoomRedactResponse
from PIL import Image

from bots.export.history import HistoryRequest, fetch_history
from bots.export.media import MediaFetcher
from bots.export.transcript import EntryKind

pytestmark = pytest.mark.integration


def jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 32), (10, 120, 200)).save(out, format="JPEG")
    return out.getvalue()


async def test_history_resolves_edits_redactions_replies_media_receipts(
    nio_client_factory, rooms, tmp_path
) -> None:
    alice = await nio_client_factory()
    bob = await nio_client_factory()
    exporter = await nio_client_factory()
    await alice.set_displayname("Élodie Müller")
    room_id = await rooms.create(alice, bob)
    before = await rooms.text(alice, room_id, "avant l'arrivée du bot")  # no key for the exporter
    await rooms.join(room_id, alice, exporter)
    first = await rooms.text(
        alice,
        room_id,
        "Pansement refait, plaie propre",
        format="org.matrix.custom.html",
        formatted_body="Pansement <b>refait</b>, plaie propre",
    )
    await rooms.send(
        alice,
        room_id,
        {
            "msgtype": "m.text",
            "body": "* Pansement refait, plaie très propre",
            "m.new_content": {"msgtype": "m.text", "body": "Pansement refait, plaie très propre"},
            "m.relates_to": {"rel_type": "m.replace", "event_id": first},
        },
    )
    gone = await rooms.text(bob, room_id, "message à effacer")
    redacted = await bob.room_redact(room_id, gone)
    assert isinstance(redacted, RoomRedactResponse)
    await rooms.text(
        bob,
        room_id,
        "> <@x> Pansement\n\nBien noté, merci",
        **{"m.relates_to": {"m.in_reply_to": {"event_id": first}}},
    )
    photo = jpeg()
    await rooms.upload_encrypted(alice, room_id, photo, "plaie.jpg", "image/jpeg", "m.image")
    report = "Compte rendu œ €".encode() * 100
    await rooms.upload_encrypted(bob, room_id, report, "cr.txt", "text/plain", "m.file")
    # a flag raised then cleared (the bot writes this state event; here the room's creator)
    await alice.room_put_state(
        room_id, "fr.cercle.flags", {"flags": {"urgent": {"by": alice.user_id, "at": 1}}}
    )
    await alice.room_put_state(room_id, "fr.cercle.flags", {"flags": {}})
    last = await rooms.text(alice, room_id, "dernier message")
    await bob.room_read_markers(room_id, last, last)
    for _ in range(3):
        await exporter.sync(timeout=300)

    async with aiohttp.ClientSession() as session:
        media = MediaFetcher(session, exporter.homeserver, exporter.access_token, tmp_path)
        history = await fetch_history(exporter, HistoryRequest(room_id, page_size=3), media)

    entries = list(history.entries)  # a lazy view over the spool: read it once here
    assert list(history.entries) == entries and len(history.entries) == len(entries)
    by_id = {entry.event_id: entry for entry in entries}
    kinds = [entry.kind for entry in entries]
    assert by_id[before].kind is EntryKind.UNDECRYPTABLE
    edited = by_id[first]
    assert edited.edited and edited.body == "Pansement refait, plaie très propre"
    assert edited.sender_name == "Élodie Müller"
    assert by_id[gone].kind is EntryKind.REDACTED
    reply = next(e for e in entries if e.body.endswith("Bien noté, merci"))
    assert reply.quote is not None and reply.quote.text == "Pansement refait, plaie très propre"
    image = next(e.attachment for e in entries if e.attachment and e.attachment.is_image)
    assert image.path is not None and image.path.read_bytes() == photo
    assert image.sha256 == hashlib.sha256(photo).hexdigest()
    file = next(e.attachment for e in entries if e.attachment and not e.attachment.is_image)
    assert file.path.read_bytes() == report and file.size == len(report)
    assert len(by_id[last].seen_by) == 1  # bob's receipt, by display name (or id)
    assert by_id[last].seen_by[0] in (bob.user_id, bob.user_id.split(":")[0][1:])
    assert kinds.count(EntryKind.MESSAGE) >= 5
    flag_lines = [e.body for e in entries if e.kind is EntryKind.EVENT]
    assert flag_lines == [
        "Signalement « urgence » posé par Élodie Müller",
        "Signalement « urgence » levé",
    ]
    assert entries == sorted(entries, key=lambda e: e.timestamp)
    assert (history.first, history.last) == (entries[0].timestamp, entries[-1].timestamp)

    # derniers 2 / depuis: bounded selections
    last_two = await fetch_history(
        exporter, HistoryRequest(room_id, last=2, with_attachments=False), None
    )
    assert [e.event_id for e in last_two.entries][-1] == last
    assert len([e for e in last_two.entries if e.kind is not EntryKind.EVENT]) == 2
    from_reply = await fetch_history(exporter, HistoryRequest(room_id, from_event_id=gone), None)
    assert next(iter(from_reply.entries)).event_id == gone
    # depuis: starts at the first event at or after the moment (timestamp_to_event)
    since = by_id[gone].timestamp
    partial = await fetch_history(exporter, HistoryRequest(room_id, since=since), None)
    partial_entries = list(partial.entries)
    assert partial_entries[0].event_id == gone
    assert all(entry.timestamp >= since for entry in partial_entries)
    assert partial_entries[-1].event_id == last
    # a restarted bot knows no receipt in memory: they are read from the server
    exporter.rooms[room_id].read_receipts.clear()
    again = await fetch_history(exporter, HistoryRequest(room_id, last=1), None)
    *_, newest = again.entries
    assert newest.event_id == last and len(newest.seen_by) == 1
    future = await fetch_history(
        exporter, HistoryRequest(room_id, since=datetime(2100, 1, 1, tzinfo=UTC)), None
    )
    assert list(future.entries) == [] and len(future.entries) == 0
    assert future.first is None and future.last is None
