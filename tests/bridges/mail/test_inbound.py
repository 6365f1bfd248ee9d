"""Incoming mail end to end: real Dovecot (IMAP over TLS, IDLE), real Synapse, the bridge
in-process, a professional as a real E2EE client."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from nio import (
    EncryptionError,
    LocalProtocolError,
    MegolmEvent,
    RedactedEvent,
    RoomGetStateEventResponse,
)
from support import die_after, download_attachment

from tests.bots.conftest import Pro, dm_with_bot
from tests.bridges.mail import mails
from tests.bridges.mail.bridge_process import spawn

pytestmark = pytest.mark.integration


@pytest.fixture
async def pro_factory(nio_client_factory: Callable[..., Any]) -> Callable[..., Any]:
    async def make(user: Any = None) -> Pro:
        return Pro(await nio_client_factory(user))

    return make


def mail_events(pro: Pro, room_id: str) -> list[Any]:
    return [
        e
        for e in pro.events.get(room_id, [])
        if e.source.get("content", {}).get("body", "").startswith("✉️ Courrier de")
    ]


def file_events(pro: Pro, room_id: str) -> list[Any]:
    return [
        e
        for e in pro.events.get(room_id, [])
        if e.source.get("content", {}).get("msgtype") == "m.file"
    ]


def decrypt_late(pro: Pro, room_id: str) -> None:
    """Events whose room key came in a later sync than themselves, decrypted now (a client
    retries them; the test's recorder would otherwise keep them undecrypted)."""
    events = pro.events.get(room_id, [])
    for i, event in enumerate(events):
        if isinstance(event, MegolmEvent):
            event.room_id = room_id
            with contextlib.suppress(EncryptionError, LocalProtocolError):
                events[i] = pro.client.decrypt_event(event)


async def wait_count(
    pro: Pro, room_id: str, pick: Callable[[Pro, str], list[Any]], n: int, timeout: float = 60.0
) -> list[Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        decrypt_late(pro, room_id)
        found = pick(pro, room_id)
        if len(found) >= n:
            return found
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{len(found)} / {n} messages reçus")
        await pro.sync_once(500)


async def wait_notice(
    pro: Pro, room_id: str, contains: str, timeout: float = 60.0, start: int = 0
) -> Any:
    """``Pro.wait_notice``, with events whose key came late decrypted as they arrive."""

    def matching(p: Pro, r: str) -> list[Any]:
        return [
            e
            for e in p.events.get(r, [])[start:]
            if e.source.get("content", {}).get("msgtype") == "m.notice"
            and contains in e.source.get("content", {}).get("body", "")
        ]

    return (await wait_count(pro, room_id, matching, 1, timeout))[0]


async def connect(pro: Pro, bridge_user: str, address: str, password: str) -> str:
    """`!connecter` in a direct chat with the bridge; the Courriers room joined."""
    dm = await dm_with_bot(pro, bridge_user)
    command = await pro.say(dm, f"!connecter {address} {password}")
    notice = await wait_notice(pro, dm, "reliée")
    body = notice.source["content"]["body"]
    room_id = body.split("https://matrix.to/#/")[1].split("?")[0]
    await pro.wait_member(room_id, pro.user_id)
    pro.command_event = command  # type: ignore[attr-defined]
    pro.dm = dm  # type: ignore[attr-defined]
    return room_id


async def test_mail_shapes_reach_the_courriers_room(connected: Any, mail_servers: Any) -> None:
    address, password, _, bridge, pro, room_id = await connected()

    # in her own direct chat the bridge may not erase her message: she is told to
    assert "supprimez votre message contenant le mot de passe" in pro.notices(pro.dm)[-1]
    # in the Courriers room (the bridge holds it) a new password's message is erased
    command = await pro.say(room_id, f"!connecter {address} {password}")
    await wait_notice(pro, room_id, "a été effacé")
    await pro.wait_for(
        room_id,
        lambda e: (
            (isinstance(e, RedactedEvent) and e.event_id == command)
            or e.source.get("redacts") == command
        ),
    )
    mailbox = bridge.store.mailbox(pro.user_id)
    assert mailbox is not None and mailbox.space_id is not None
    assert password.encode() not in bridge.config.database_path.read_bytes()
    child = await pro.client.room_get_state_event(mailbox.space_id, "m.space.child", room_id)
    assert isinstance(child, RoomGetStateEventResponse) and child.content.get("via")
    assert pro.client.rooms[room_id].encrypted

    big_raw, big_payload = mails.big()
    shapes = [
        mails.alternative(),
        mails.latin1(),
        mails.windows1252(),
        mails.rfc2231_name(),
        mails.malformed(),
        mails.mssante_xdm(),
        big_raw,
    ]
    for raw in shapes:
        await asyncio.to_thread(mail_servers.deliver, raw, address)

    posted = await wait_count(pro, room_id, mail_events, 6, timeout=120)
    bodies = [e.source["content"]["body"] for e in posted]
    assert "Objet : Compte rendu de sortie" in bodies[0]
    assert "Dr Hélène Lefèvre <h.lefevre@chu.mss.test>" in bodies[0]
    assert "<b>Compte rendu</b>" in posted[0].source["content"]["formatted_body"]
    assert "<script" not in posted[0].source["content"]["formatted_body"]
    assert "hémoglobine à 12,5" in bodies[1]
    assert "L’infirmière a noté « 38,5 °C »" in bodies[2] and "Objet : Fièvre" in bodies[2]
    assert "Lettre de liaison – Mme Dupré.pdf" in bodies[3]
    assert "IHE_XDM/SUBSET01/DOC0002.PDF" in bodies[4]
    assert "Imagerie (20 Mo)" in bodies[5]

    # the unparseable mail: a notice and its raw .eml, never dropped
    notice = await wait_notice(pro, room_id, "n'a pas pu être mis en forme")
    files = await wait_count(pro, room_id, file_events, 6, timeout=120)
    names = [f.source["content"]["body"] for f in files]
    assert names == [
        "Compte rendu été.pdf",
        "Lettre de liaison – Mme Dupré.pdf",
        "courrier.eml",
        "IHE_XDM.zip",
        "CR-BIO.xml",
        "scanner.pdf",
    ]
    assert notice is not None
    eml = next(f for f in files if f.source["content"]["body"] == "courrier.eml")
    assert (await download_attachment(pro.client, eml.source["content"])).endswith(
        mails.malformed()
    )
    pdf = next(f for f in files if f.source["content"]["body"] == "scanner.pdf")
    assert await download_attachment(pro.client, pdf.source["content"]) == big_payload
    state = bridge.store.mailbox(pro.user_id)
    assert state is not None and state.state == "connectée" and state.last_mail_at


class Connected(NamedTuple):
    address: str
    password: str
    runner: Any  # conftest.BridgeRunner: stop() / kill(), restarted with bridge_factory(data)
    bridge: Any
    pro: Pro
    room_id: str


@pytest.fixture
def connected(
    bridge_factory: Any, pro_factory: Any, mailbox_factory: Any, bridge_account: str
) -> Callable[..., Awaitable[Connected]]:
    """``await connected(data_dir, **config)``: a new mailbox, the bridge started on
    ``data_dir`` (the test's by default), a professional who connected the mailbox."""

    async def make(data_dir: Path | None = None, **overrides: Any) -> Connected:
        address, password = mailbox_factory()
        runner = bridge_factory(data_dir, **overrides)
        bridge = await runner.start()
        pro = await pro_factory()
        room_id = await connect(pro, bridge_account, address, password)
        return Connected(address, password, runner, bridge, pro, room_id)

    return make


@pytest.fixture
async def courriers(connected: Callable[..., Awaitable[Connected]]) -> tuple[Pro, str, str]:
    """A running bridge, a professional and her connected mailbox: (pro, room, address)."""
    mailbox = await connected()
    return mailbox.pro, mailbox.room_id, mailbox.address


async def test_images_shown_inline_and_a_cut_one_kept_as_a_file(
    courriers: tuple[Pro, str, str], mail_servers: Any
) -> None:
    pro, room_id, address = courriers
    raw, cut = mails.with_images()
    await asyncio.to_thread(mail_servers.deliver, raw, address)

    def posted(p: Pro, r: str) -> list[Any]:
        return [
            e
            for e in p.events.get(r, [])
            if e.source.get("content", {}).get("msgtype") in ("m.image", "m.file")
            or e.source.get("content", {}).get("body", "").startswith("✉️ Courrier de")
        ]

    message, *files = await wait_count(pro, room_id, posted, 6, timeout=90)
    assert "Objet : Photos de la plaie" in message.source["content"]["body"]
    contents = [f.source["content"] for f in files]
    assert [(c["msgtype"], c["body"]) for c in contents] == [
        ("m.image", "radio-thorax.png"),
        ("m.image", "plaie-talon.jpg"),
        ("m.image", "schema.gif"),
        ("m.image", "photo.webp"),
        ("m.file", "coupee.png"),  # cut short in transit: a file, not a broken image
    ]
    shown = {
        "radio-thorax.png": (64, 48),
        "plaie-talon.jpg": (30, 40),  # turned by EXIF
        "schema.gif": (20, 10),
        "photo.webp": (33, 22),
    }
    sent = {name: data for name, _, data in mails.IMAGES} | {"coupee.png": cut}
    for content in contents:
        name = content["body"]
        assert "url" not in content and content["file"]["url"].startswith("mxc://")  # encrypted
        assert await download_attachment(pro.client, content) == sent[name]
        info = content["info"]
        assert info["size"] == len(sent[name])
        if name in shown:
            assert info["mimetype"] == f"image/{name.rsplit('.', 1)[1].replace('jpg', 'jpeg')}"
            assert (info["w"], info["h"]) == shown[name]
        else:
            assert info["mimetype"] == "image/png" and "w" not in info


@pytest.mark.timeout(600)  # five bridge starts: slow when the shared machine is loaded
async def test_exactly_once_across_crashes_and_restarts(
    connected: Any, bridge_factory: Any, mail_servers: Any, tmp_path: Any
) -> None:
    data = tmp_path / "mail-crash"
    address, _, runner, bridge, pro, room_id = await connected(data)

    # 1. killed between the IMAP fetch and the Matrix post
    from bridges.mail import imap

    real_fetch = imap.ImapSession.fetch
    died = die_after(imap.ImapSession, "fetch", lambda *a, **k: True)
    try:
        await asyncio.to_thread(mail_servers.deliver, mails.simple("Premier"), address)
        await asyncio.wait_for(died.wait(), 60)
    finally:
        imap.ImapSession.fetch = real_fetch  # type: ignore[method-assign]
    await runner.kill()

    # 2. killed after the mail's message reached Synapse, before the bridge recorded it
    runner = bridge_factory(data)
    bridge = await runner.start()
    died = die_after(
        bridge.io,
        "send",
        lambda room, etype, content, txn=None: "fr.cercle.mail" in content,
    )
    await asyncio.to_thread(mail_servers.deliver, mails.simple("Deuxième"), address)
    await asyncio.wait_for(died.wait(), 60)
    await runner.kill()

    # 3. mails arriving while the bridge is down
    for subject in ("Troisième", "Quatrième"):
        await asyncio.to_thread(mail_servers.deliver, mails.simple(subject), address)
    runner = bridge_factory(data)
    bridge = await runner.start()
    # 4. a mail after a clean reconnection (IDLE)
    await wait_count(pro, room_id, mail_events, 4, timeout=90)
    await asyncio.to_thread(mail_servers.deliver, mails.simple("Cinquième"), address)
    posted = await wait_count(pro, room_id, mail_events, 5, timeout=90)
    # quiet period: nothing more arrives (the same mails are not posted again)
    await runner.stop()
    runner = bridge_factory(data)
    bridge = await runner.start()
    for _ in range(6):
        await pro.sync_once(500)
    decrypt_late(pro, room_id)
    posted = mail_events(pro, room_id)
    subjects = [e.source["content"]["body"].split("\n")[1] for e in posted]
    assert subjects == [
        f"Objet : {s}" for s in ("Premier", "Deuxième", "Troisième", "Quatrième", "Cinquième")
    ]
    assert bridge.store.count_posted(pro.user_id) == 5


async def test_reconnects_when_dropped_and_polls_without_idle(
    connected: Any, mail_servers: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bridges.mail.imap import ImapSession

    address, _, _, bridge, pro, room_id = await connected(poll_seconds=0.5, backoff_max_seconds=1.0)
    await asyncio.to_thread(mail_servers.deliver, mails.simple("Avant"), address)
    await wait_count(pro, room_id, mail_events, 1)

    # the server drops the connection in the middle of an IDLE: seen at once, reconnected
    watcher = bridge.mailboxes.watchers[pro.user_id]
    await asyncio.to_thread(mail_servers.kick, address)
    await asyncio.to_thread(mail_servers.deliver, mails.simple("Après coupure"), address)
    await wait_count(pro, room_id, mail_events, 2, timeout=30)
    assert not watcher.done()  # the same watcher, reconnected

    # a server without IDLE: the INBOX is polled
    monkeypatch.setattr(ImapSession, "supports_idle", property(lambda self: False))
    await asyncio.to_thread(mail_servers.kick, address)
    await asyncio.to_thread(mail_servers.deliver, mails.simple("Sans IDLE"), address)
    posted = await wait_count(pro, room_id, mail_events, 3, timeout=30)
    subjects = [e.source["content"]["body"].split("\n")[1] for e in posted]
    assert subjects == ["Objet : Avant", "Objet : Après coupure", "Objet : Sans IDLE"]
    assert bridge.store.count_posted(pro.user_id) == 3

    # the server renumbers the INBOX (new UIDVALIDITY): nothing is posted twice
    await asyncio.to_thread(mail_servers.new_uidvalidity, address, 4242)
    await asyncio.to_thread(mail_servers.kick, address)
    await asyncio.to_thread(mail_servers.deliver, mails.simple("Après renumérotation"), address)
    posted = await wait_count(pro, room_id, mail_events, 4, timeout=30)
    box = bridge.store.mailbox(pro.user_id)
    assert box is not None and box.uidvalidity == 4242
    assert [e.source["content"]["body"].split("\n")[1] for e in mail_events(pro, room_id)] == [
        "Objet : Avant",
        "Objet : Après coupure",
        "Objet : Sans IDLE",
        "Objet : Après renumérotation",
    ]


async def test_sigkilled_in_the_middle_of_a_burst_posts_each_mail_once(
    connected: Any, bridge_factory: Any, mail_servers: Any, tmp_path: Path, synapse: Any
) -> None:
    """The bridge as a process of its own, SIGKILLed while it posts a burst of mails (just
    after the first shows in the room: some fetched, some posted, some recorded, one maybe
    half-way), then restarted: every mail is in the room exactly once."""
    data = tmp_path / "mail-burst"
    address, _, runner, _, pro, room_id = await connected(data)
    await runner.stop()

    subjects = [f"Rafale {i:02d}" for i in range(30)]
    for subject in subjects:
        await asyncio.to_thread(mail_servers.deliver, mails.simple(subject), address)
    with (tmp_path / "bridge.log").open("wb") as log:
        child = spawn(runner.config, synapse.secrets.directory, tmp_path / "bridge.json", log)
        try:
            await wait_count(pro, room_id, mail_events, 1, timeout=120)
            os.kill(child.pid, signal.SIGKILL)
        finally:
            if child.poll() is None:
                child.kill()
            child.wait(30)
    assert child.returncode == -signal.SIGKILL
    with contextlib.closing(sqlite3.connect(runner.config.database_path)) as db:
        (recorded,) = db.execute("SELECT count(*) FROM mails").fetchone()
    assert 0 < recorded < len(subjects)  # killed in the middle of the burst
    runner = bridge_factory(data)
    bridge = await runner.start()
    await wait_count(pro, room_id, mail_events, len(subjects), timeout=120)
    for _ in range(4):  # a quiet moment: nothing more comes
        await pro.sync_once(500)
    decrypt_late(pro, room_id)
    seen = [e.source["content"]["body"].split("\n")[1] for e in mail_events(pro, room_id)]
    assert sorted(seen) == [f"Objet : {s}" for s in subjects]  # each once
    assert bridge.store.count_posted(pro.user_id) == len(subjects)
