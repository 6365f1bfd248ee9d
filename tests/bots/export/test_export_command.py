"""!export end to end on the real Synapse with E2EE: the command runs through the registry,
the bot's client pages and decrypts, the PDF is uploaded encrypted, a member downloads and
decrypts it and reads it back with pypdf."""

from __future__ import annotations

import asyncio
import hashlib
import io
import sqlite3
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from nio import AsyncClient, MessageDirection
from PIL import Image
from pypdf import PdfReader

from bots.commands.export import register
from bots.commands.registry import CommandContext, CommandRegistry, PowerLevels, RoomFacts
from bots.export.media import MediaFetcher, MediaSource
from bots.export.options import parse_export_options
from bots.export.paging import event_source
from bots.export.pending import PendingExport, PendingExports
from bots.export.people import RoomPeople
from bots.export.service import ExportRecord, ExportRequest, ExportService
from bots.matrix.io import MatrixIO
from bots.matrix.trust import MemberDeviceTrust

pytestmark = pytest.mark.integration


class Replies:
    def __init__(self, io: MatrixIO, room_id: str, event_id: str) -> None:
        self.io, self.room_id, self.event_id = io, room_id, event_id
        self.sent: list[str] = []

    async def reply(
        self, plain: str, html_body: str | None = None, mentions: Sequence[str] = ()
    ) -> str | None:
        self.sent.append(plain)
        return await self.io.send_notice(self.room_id, plain, html_body, reply_to=self.event_id)


class Bot:
    def __init__(self, client: AsyncClient) -> None:
        self.client = client
        self.io = MatrixIO(client, MemberDeviceTrust(client))
        self.professions: dict[str, str] = {}
        self.records: list[ExportRecord] = []
        self.exports = ExportService(
            client, self.io, describe_room=self.describe, record_export=self.record
        )
        self.registry = CommandRegistry("!", PowerLevels(flag=0, admin=50))
        register(self.registry, self.exports)

    async def describe(self, room_id: str) -> RoomPeople:
        """What the dossier would say (its client is tested in tests/bots/export/test_people.py)."""
        return RoomPeople("Jeanne DUPONT", self.professions)

    async def record(self, record: ExportRecord) -> None:
        self.records.append(record)

    async def command(self, room_id: str, sender: str, text: str, event_id: str) -> Replies:
        await self.client.sync(timeout=0)
        room = self.client.rooms[room_id]
        facts = RoomFacts(
            sender_is_member=sender in room.users and sender not in room.invited_users,
            sender_power_level=0,
            is_direct=False,
            is_patient_room=True,
        )
        replies = Replies(self.io, room_id, event_id)
        ctx = CommandContext(room_id, sender, event_id, facts, replies)
        assert await self.registry.execute(text, ctx)
        await self.exports.wait_idle()
        return replies


async def contents_from(client: AsyncClient, room_id: str, sender: str) -> list[dict[str, Any]]:
    await client.sync(timeout=0)
    response = await client.room_messages(room_id, direction=MessageDirection.back, limit=100)
    out = []
    for event in reversed(response.chunk):
        source = event_source(event)
        if source["sender"] == sender and source.get("type") == "m.room.message":
            out.append(source["content"])
    return out


async def fetch_pdf(client: AsyncClient, content: dict[str, Any], tmp_path: Path) -> PdfReader:
    source = MediaSource.from_content(content)
    assert source is not None and source.key is not None, "the PDF must be an encrypted file"
    async with aiohttp.ClientSession() as session:
        fetched = await MediaFetcher(
            session, client.homeserver, client.access_token, tmp_path
        ).fetch(source)
    return PdfReader(fetched.path)


async def last_pdf(client: AsyncClient, room_id: str, bot_user: str, tmp_path: Path) -> PdfReader:
    """The last PDF `bot_user` posted in the room, as `client` downloads it."""
    posted = await contents_from(client, room_id, bot_user)
    return await fetch_pdf(
        client, [c for c in posted if c.get("msgtype") == "m.file"][-1], tmp_path
    )


async def event_id_of(client: AsyncClient, room_id: str, sender: str, body: str) -> str:
    response = await client.room_messages(room_id, direction=MessageDirection.back, limit=100)
    return next(
        e.event_id
        for e in response.chunk
        if e.sender == sender and event_source(e)["content"].get("body") == body
    )


def text_of(reader: PdfReader) -> str:
    return "\n".join(page.extract_text() for page in reader.pages)


def photo() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (120, 80), (30, 160, 90)).save(out, format="JPEG")
    return out.getvalue()


@pytest.fixture
async def care_room(nio_client_factory, rooms):
    alice = await nio_client_factory()
    bob = await nio_client_factory()
    bot_client = await nio_client_factory()
    await alice.set_displayname("Élodie Müller")
    await bob.set_displayname("Дмитрий Павлов")
    room_id = await rooms.create(alice, bob, bot_client, name="🔴 Suivi Mme D.")
    ids = {}
    ids["first"] = await rooms.text(alice, room_id, "Bonjour, pansement refait. Œdème léger, 12 €.")
    ids["bob"] = await rooms.text(bob, room_id, "Привет, merci pour le suivi")
    ids["image"] = await rooms.upload_encrypted(
        alice, room_id, photo(), "plaie.jpg", "image/jpeg", "m.image"
    )
    report = b"Compte rendu de passage : tension 13/8\n" * 50
    ids["file"] = await rooms.upload_encrypted(
        bob, room_id, report, "compte-rendu.txt", "text/plain", "m.file"
    )
    ids["last"] = await rooms.text(alice, room_id, "À demain, je repasse à 9 h.")
    await bob.room_read_markers(room_id, ids["last"], ids["last"])
    await bot_client.sync(timeout=300)
    await bot_client.sync(timeout=300)
    return alice, bob, Bot(bot_client), room_id, ids, report


async def test_whole_export_with_attachments(care_room, rooms, tmp_path) -> None:
    alice, _bob, bot, room_id, _ids, report = care_room
    bot.professions = {alice.user_id: "infirmière"}
    command = await rooms.text(alice, room_id, "!export")
    replies = await bot.command(room_id, alice.user_id, "!export", command)
    assert replies.sent == []  # « Export en cours… » is sent by the export service, marked
    posted = await contents_from(alice, room_id, bot.client.user_id)
    files = [c for c in posted if c.get("msgtype") == "m.file"]
    assert len(files) == 1
    assert "url" not in files[0]  # encrypted attachment only
    assert files[0]["body"].startswith("Transcription_Suivi-Mme-D_") and files[0]["body"].endswith(
        ".pdf"
    )
    # « Export en cours… » is replaced by the outcome (one m.replace edit), nothing else posted
    notices = [c for c in posted if c.get("msgtype") == "m.notice"]
    assert notices[0]["body"] == "Export en cours…"
    assert notices[0]["m.relates_to"]["m.in_reply_to"]["event_id"] == command
    progress_id = await event_id_of(alice, room_id, bot.client.user_id, "Export en cours…")
    assert len(notices) == 2, [n["body"] for n in notices]
    edit = notices[1]
    assert edit["m.relates_to"] == {"rel_type": "m.replace", "event_id": progress_id}
    announce = edit["m.new_content"]["body"]
    assert edit["body"] == f"* {announce}"
    assert announce.startswith("Export PDF de la conversation par Élodie Müller le ")
    assert "tout l'historique" in announce

    reader = await fetch_pdf(alice, files[0], tmp_path)
    text = text_of(reader)
    for expected in (
        "Suivi Mme D.",
        "Patient : Jeanne DUPONT",
        "Participants : Élodie Müller (infirmière), Дмитрий Павлов",
        "Bonjour, pansement refait. Œdème léger, 12 €.",
        "Привет, merci pour le suivi",
        "Vu par Дмитрий Павлов",
        "Image : plaie.jpg",
        "compte-rendu.txt",
        f"SHA-256 : {hashlib.sha256(report).hexdigest()}",
    ):
        assert expected in text, expected
    assert "🔴" not in text.split("\n")[1]
    pages = len(reader.pages)
    assert all(f"page {n} / {pages}" in p.extract_text() for n, p in enumerate(reader.pages, 1))
    assert sum(len(page.images) for page in reader.pages) == 1
    assert reader.attachments["compte-rendu.txt"] == [report]
    # five messages and the command; the bot's « Export en cours… » comes after it
    last_page = reader.pages[-1].extract_text()
    assert "6 messages, 2 pièces jointes — SHA-256 du contenu :" in last_page
    [record] = bot.records  # traceability: who, when, what period, which digest
    assert (record.requester, record.messages, record.attachments) == (alice.user_id, 6, 2)
    assert record.digest in last_page and record.delivered_to == room_id


async def test_export_by_reply_and_without_attachments(care_room, rooms, tmp_path) -> None:
    alice, bob, bot, room_id, ids, _ = care_room
    command = await rooms.text(
        alice,
        room_id,
        "!export sans pièces jointes",
        **{"m.relates_to": {"m.in_reply_to": {"event_id": ids["image"]}}},
    )
    await bot.command(room_id, alice.user_id, "!export sans pièces jointes", command)
    reader = await last_pdf(bob, room_id, bot.client.user_id, tmp_path)
    text = text_of(reader)
    assert "Bonjour, pansement refait" not in text  # before the replied-to message
    assert "Image : plaie.jpg" in text and "À demain, je repasse à 9 h." in text
    assert "!export sans pièces jointes" in text  # the command itself is part of the history
    assert reader.attachments == {}
    assert sum(len(page.images) for page in reader.pages) == 0
    assert "non jointe (export sans pièces jointes)" in text
    assert "à partir du message du" in text


async def test_last_messages(care_room, rooms, tmp_path, nio_client_factory) -> None:
    alice, bob, bot, room_id, _ids, _ = care_room
    carol = await nio_client_factory()  # invited, never wrote: not a participant
    await alice.room_invite(room_id, carol.user_id)
    # a first export leaves its command, notice and PDF in the room: not « messages »
    first = await rooms.text(alice, room_id, "!export sans pièces jointes")
    await bot.command(room_id, alice.user_id, "!export sans pièces jointes", first)
    await rooms.text(bob, room_id, "!aide")
    command = await rooms.text(bob, room_id, "!pdf derniers 2")
    await bot.command(room_id, bob.user_id, "!pdf derniers 2", command)
    text = text_of(await last_pdf(alice, room_id, bot.client.user_id, tmp_path))
    assert "À demain, je repasse à 9 h." in text and "compte-rendu.txt" in text
    for chatter in ("!pdf derniers 2", "!aide", "!export", "Export en cours", "Export PDF de"):
        assert chatter not in text, chatter
    assert "Transcription_" not in text
    assert "2 messages, 1 pièce jointe" in text
    assert "Participants : Élodie Müller, Дмитрий Павлов" in text
    carol_name = carol.user_id[1:].split(":")[0]  # her display name: Synapse's default
    assert f"\nInvité(e)s sans avoir rejoint : {carol_name}\n" in text


async def test_private_delivery(care_room, rooms, tmp_path) -> None:
    alice, _bob, bot, room_id, _ids, _ = care_room
    syncing = asyncio.create_task(bot.client.sync_forever(timeout=200))
    try:
        for _ in range(2):  # the second before Alice has accepted the direct chat
            command = await rooms.text(alice, room_id, "!export en privé")
            await bot.command(room_id, alice.user_id, "!export en privé", command)
    finally:
        syncing.cancel()
    in_room = await contents_from(alice, room_id, bot.client.user_id)
    assert not [c for c in in_room if c.get("msgtype") == "m.file"]
    assert "envoyé en privé" in in_room[-1]["body"]
    await alice.sync(timeout=0)
    invited = list(alice.invited_rooms)
    assert len(invited) == 1  # one direct chat with the bot, not one per export
    direct = invited[0]
    await alice.join(direct)
    await alice.sync(timeout=0)
    posted = await contents_from(alice, direct, bot.client.user_id)
    pdf = [c for c in posted if c.get("msgtype") == "m.file"]
    assert len(pdf) == 2
    assert "Bonjour, pansement refait" in text_of(await fetch_pdf(alice, pdf[0], tmp_path))


async def test_bad_options_and_non_member(care_room, rooms, user_factory) -> None:
    alice, _bob, bot, room_id, _ids, _ = care_room
    command = await rooms.text(alice, room_id, "!export depuis 32/13/2026")
    replies = await bot.command(room_id, alice.user_id, "!export depuis 32/13/2026", command)
    assert replies.sent == ["La date « 32/13/2026 » n'existe pas (jour ou mois hors limites)."]
    command = await rooms.text(alice, room_id, "!export depuis demain")
    replies = await bot.command(room_id, alice.user_id, "!export depuis demain", command)
    assert replies.sent[0].startswith("Date invalide après « depuis » : « demain »")
    outsider = user_factory()
    replies = await bot.command(room_id, outsider.user_id, "!export", command)
    assert replies.sent == ["Commande réservée aux membres de ce salon."]
    posted = await contents_from(alice, room_id, bot.client.user_id)
    assert not [c for c in posted if c.get("msgtype") == "m.file"]


async def test_history_before_arrival_stays_hidden_when_the_room_says_so(
    nio_client_factory, rooms, tmp_path
) -> None:
    alice = await nio_client_factory()
    carol = await nio_client_factory()
    bot = Bot(await nio_client_factory())
    room_id = await rooms.create(alice, bot.client, name="Salon à historique restreint")
    await alice.room_put_state(
        room_id, "m.room.history_visibility", {"history_visibility": "joined"}
    )
    said = await rooms.text(alice, room_id, "dit avant l'arrivée de Carole")
    # arrival times are compared at the millisecond: Carole arrives in a later one
    said_at = (await alice.room_get_event(room_id, said)).event.server_timestamp
    while time.time() * 1000 <= said_at:
        await asyncio.sleep(0.001)
    await rooms.join(room_id, alice, carol)
    await rooms.text(alice, room_id, "dit après l'arrivée de Carole")
    command = await rooms.text(carol, room_id, "!export")
    await bot.command(room_id, carol.user_id, "!export", command)
    text = text_of(await last_pdf(carol, room_id, bot.client.user_id, tmp_path))
    assert "dit après l'arrivée de Carole" in text
    assert "dit avant l'arrivée de Carole" not in text


async def test_export_cut_by_a_restart_is_done_after_it(care_room, rooms, tmp_path) -> None:
    """The bot stops in the middle of an export: at the next start the export is run again
    and delivered once; one cut short too often is given up, and said so."""
    alice, _bob, bot, room_id, _ids, _ = care_room
    db = sqlite3.connect(tmp_path / "bot.sqlite3", isolation_level=None)
    before_restart = ExportService(bot.client, bot.io, pending=PendingExports(db))
    command = await rooms.text(alice, room_id, "!export derniers 2")
    progress = await before_restart.announce(room_id, command)
    now = datetime.now(UTC)
    request = ExportRequest(
        room_id,
        alice.user_id,
        command,
        parse_export_options("derniers 2", now=now),
        None,
        now,
        reply_resolved=False,
        options_text="derniers 2",
        progress_event_id=progress,
    )
    running, export = asyncio.Event(), before_restart.export

    async def export_begun(request: ExportRequest) -> Any:
        running.set()
        return await export(request)

    before_restart.export = export_begun  # type: ignore[method-assign]
    task = before_restart.start(request)
    await asyncio.wait_for(running.wait(), 10)
    task.cancel()  # the shutdown cancels the running export
    await asyncio.gather(task, return_exceptions=True)
    assert [p.command_event_id for p in PendingExports(db).all()] == [command]
    assert not [
        c
        for c in await contents_from(alice, room_id, bot.client.user_id)
        if "url" in c.get("file", {})
    ]

    after_restart = ExportService(bot.client, bot.io, pending=PendingExports(db))
    assert await after_restart.resume() == 1
    await after_restart.wait_idle()
    posted = await contents_from(alice, room_id, bot.client.user_id)
    pdfs = [c for c in posted if c.get("msgtype") == "m.file"]
    assert len(pdfs) == 1
    assert "2 messages" in text_of(await fetch_pdf(alice, pdfs[0], tmp_path))
    assert PendingExports(db).all() == []
    edits = [c for c in posted if (c.get("m.relates_to") or {}).get("rel_type") == "m.replace"]
    assert [e["m.relates_to"]["event_id"] for e in edits] == [progress]  # edited after restart

    stubborn = await rooms.text(alice, room_id, "!export")
    pending = PendingExports(db)
    pending.add(PendingExport(stubborn, room_id, alice.user_id, "", now))
    for _ in range(3):
        pending.started_again(stubborn)  # three starts already cut short
    assert await ExportService(bot.client, bot.io, pending=pending).resume() == 0
    assert pending.all() == []
    notices = await contents_from(alice, room_id, bot.client.user_id)
    assert notices[-1]["body"].endswith("n'a pas pu être terminé : relancez « !export ».")
