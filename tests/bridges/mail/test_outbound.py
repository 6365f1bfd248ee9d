"""Outgoing mail end to end: a Matrix reply and ``!courrier`` submitted over TLS + AUTH to
the relay, delivered by Dovecot into the other mailbox, filed in the Sent folder; exactly
once when the bridge dies between the Matrix message and the SMTP submission; a refused
login told once to its owner."""

from __future__ import annotations

import asyncio
import email
import email.policy
import os
import signal
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
from nio.crypto.attachments import encrypt_attachment

from bridges.mail import outbound
from tests.bridges.mail import mails
from tests.bridges.mail.bridge_process import spawn
from tests.bridges.mail.test_inbound import (
    connected,
    decrypt_late,
    mail_events,
    pro_factory,
    wait_count,
    wait_notice,
)

pytestmark = pytest.mark.integration
__all__ = ["connected", "pro_factory"]  # the fixtures, imported for these tests


def parsed(raw: bytes) -> email.message.EmailMessage:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, email.message.EmailMessage)
    return msg


async def wait_mails(
    servers: Any, address: str, n: int, folder: str = "INBOX", timeout: float = 60.0
) -> list[email.message.EmailMessage]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = [parsed(r) for r in await asyncio.to_thread(servers.messages, address, folder)]
        if len(found) >= n or asyncio.get_running_loop().time() > deadline:
            return found
        await asyncio.sleep(0.3)


async def test_reply_and_compose_go_out_by_smtp_and_into_sent(
    connected: Any, mailbox_factory: Any, mail_servers: Any
) -> None:
    marie, _, _, _, pro, room_id = await connected()
    jean, _ = mailbox_factory()

    original = mails.base("Sortie de M. R.")
    del original["Message-ID"]
    original["Message-ID"] = "<orig-1@chu.mss.test>"
    original["Reply-To"] = jean
    original.set_content("Merci de passer demain.")
    original = original.as_bytes()
    await asyncio.to_thread(mail_servers.deliver, original, marie)
    (mail_event,) = await wait_count(pro, room_id, mail_events, 1)

    # a Matrix reply to the mail: mailed to the Reply-To, threaded
    await pro.say(
        room_id,
        "",
        {
            "msgtype": "m.text",
            "body": "> <@cercle-courrier:x> ✉️ Courrier de …\n\nBien reçu, je passe demain à 9 h.",
            "m.relates_to": {"m.in_reply_to": {"event_id": mail_event.event_id}},
        },
    )
    await wait_notice(pro, room_id, "Courrier envoyé")
    (answer,) = await wait_mails(mail_servers, jean, 1)
    assert answer["In-Reply-To"] == "<orig-1@chu.mss.test>"
    assert "<orig-1@chu.mss.test>" in answer["References"]
    assert answer["Subject"] == "Re: Sortie de M. R."
    assert answer["From"] == marie
    text = answer.get_body().get_content()
    assert "Bien reçu, je passe demain à 9 h." in text
    assert "Courrier de" not in text  # the reply fallback is not mailed

    # !courrier: a new mail, with the file posted before in the room
    # as Element sends a file in an encrypted room: AES-CTR ciphertext, keys in the event
    pdf_data = mails.PDF + bytes(20_000)  # many lines: bare LF would be refused by SMTP
    ciphertext, keys = encrypt_attachment(pdf_data)
    upload, _ = await pro.client.upload(
        lambda *_: ciphertext, content_type="application/octet-stream", filesize=len(ciphertext)
    )
    await pro.say(
        room_id,
        "",
        {
            "msgtype": "m.file",
            "body": "ordonnance.pdf",
            "info": {"mimetype": "application/pdf", "size": len(pdf_data)},
            "file": {
                "url": upload.content_uri,
                "key": keys["key"],
                "iv": keys["iv"],
                "hashes": keys["hashes"],
                "v": keys["v"],
            },
        },
    )
    await pro.say(room_id, f"!courrier à {jean} objet Ordonnance de M. R.\nBonjour,\nCi-joint.")
    await wait_notice(pro, room_id, "Ordonnance de M. R.")
    received = await wait_mails(mail_servers, jean, 2)
    new = received[1]
    assert new["Subject"] == "Ordonnance de M. R." and new["In-Reply-To"] is None
    text = new.get_body(preferencelist=("plain",)).get_content().replace("\r\n", "\n")
    assert "Bonjour,\nCi-joint." in text
    (pdf,) = list(new.iter_attachments())
    assert pdf.get_filename() == "ordonnance.pdf" and pdf.get_content() == pdf_data

    # a recipient the server refuses: told in French, not retried
    start = pro.mark(room_id)
    await pro.say(room_id, "!courrier à inconnu@ailleurs.test objet Perdu\nTexte.")
    await wait_notice(pro, room_id, "Courrier non envoyé : adresse refusée", start=start)

    sent = await wait_mails(mail_servers, marie, 2, folder="Sent")
    assert [m["Subject"] for m in sent] == ["Re: Sortie de M. R.", "Ordonnance de M. R."]


async def test_killed_between_matrix_reply_and_smtp_sends_once(
    connected: Any, bridge_factory: Any, mailbox_factory: Any, mail_servers: Any, tmp_path: Any
) -> None:
    data = tmp_path / "mail-out"
    marie, _, runner, _, pro, room_id = await connected(data)
    jean, _ = mailbox_factory()

    real_submit = outbound.submit
    died = asyncio.Event()

    def die_before_submit(*args: Any, **kwargs: Any) -> None:
        died.set()
        raise asyncio.CancelledError  # the process dies: nothing reaches the SMTP server

    outbound.submit = die_before_submit  # type: ignore[assignment]
    try:
        await pro.say(room_id, f"!courrier à {jean} objet Une seule fois\nTexte.")
        await asyncio.wait_for(died.wait(), 60)
    finally:
        outbound.submit = real_submit
    await runner.kill()
    assert await wait_mails(mail_servers, jean, 1, timeout=1) == []

    runner = bridge_factory(data)
    await runner.start()
    await wait_notice(pro, room_id, "Une seule fois")
    (mail,) = await wait_mails(mail_servers, jean, 1)
    # restarted again: the event is done, the mail filed; nothing is sent a second time
    await runner.stop()
    runner = bridge_factory(data)
    bridge = await runner.start()
    assert bridge.store.unfinished_outgoing() == []
    for _ in range(4):
        await pro.sync_once(500)
    assert len(await wait_mails(mail_servers, jean, 2, timeout=2)) == 1
    assert len(await wait_mails(mail_servers, marie, 2, folder="Sent", timeout=2)) == 1
    assert mail["Subject"] == "Une seule fois"


async def test_sigkilled_after_smtp_accepted_data_sends_once(
    connected: Any,
    bridge_factory: Any,
    mailbox_factory: Any,
    mail_servers: Any,
    tmp_path: Path,
    synapse: Any,
) -> None:
    """The bridge, a process of its own, is SIGKILLed by the submission server once it has
    taken the mail (delivered it, filed its Sent copy) and before its 250 reaches the bridge:
    the bridge recorded nothing after ``submitting``. Restarted, it finds the mail's
    Message-ID in Sent and does not submit again: one mail, one Sent copy, one notice."""
    data = tmp_path / "mail-sigkill"
    marie, _, runner, _, pro, room_id = await connected(data, sent_copy_by_server=True)
    jean, _ = mailbox_factory()
    mail_servers.sent_copy.add(marie)  # this operator files what it sends in Sent
    await runner.stop()

    log = (tmp_path / "bridge.log").open("wb")
    child = spawn(runner.config, synapse.secrets.directory, tmp_path / "bridge.json", log)
    killed = threading.Event()

    def kill_bridge(login: str, raw: bytes) -> None:
        if login == marie and b"Une seule fois" in raw and not killed.is_set():
            os.kill(child.pid, signal.SIGKILL)
            child.wait(30)
            killed.set()

    mail_servers.after_data = kill_bridge
    try:
        await pro.say(room_id, f"!courrier à {jean} objet Une seule fois\nTexte.")
        assert await asyncio.to_thread(killed.wait, 120), (tmp_path / "bridge.log").read_text()
    finally:
        mail_servers.after_data = None
        if child.poll() is None:
            child.kill()
        child.wait(30)
        log.close()
    assert child.returncode == -signal.SIGKILL
    with sqlite3.connect(runner.config.database_path) as db:
        states = [r[0] for r in db.execute("SELECT state FROM outgoing")]
    assert states == ["submitting"]  # the 250 never reached it: the outcome is unknown
    assert len(await wait_mails(mail_servers, jean, 1)) == 1  # the mail did leave

    runner = bridge_factory(data, sent_copy_by_server=True)
    bridge = await runner.start()
    await wait_notice(pro, room_id, "Une seule fois")
    for _ in range(4):
        await pro.sync_once(500)
    decrypt_late(pro, room_id)
    sent_notices = [n for n in pro.notices(room_id) if "Courrier envoyé" in n]
    assert len(sent_notices) == 1 and "Une seule fois" in sent_notices[0]
    assert bridge.store.unfinished_outgoing() == []
    assert len(await wait_mails(mail_servers, jean, 2, timeout=2)) == 1
    assert len(await wait_mails(mail_servers, marie, 2, folder="Sent", timeout=2)) == 1


async def test_refused_login_is_told_once_and_not_retried(
    connected: Any, bridge_factory: Any, mail_servers: Any, tmp_path: Any
) -> None:
    data = tmp_path / "mail-refused"
    marie, marie_pw, runner, bridge, pro, dm_room = await connected(data)

    # a wrong password at !connecter: refused at once, nothing stored
    start = pro.mark(pro.dm)
    await pro.say(pro.dm, f"!connecter {marie} mauvais-mot-de-passe")
    await wait_notice(pro, pro.dm, "a refusé cet identifiant", start=start)

    # the password changes at the operator: the bridge's next login is refused
    mail_servers.add_mailbox(marie, "nouveau-" + marie_pw)
    await runner.stop()
    runner = bridge_factory(data)
    bridge = await runner.start()
    await wait_notice(pro, dm_room, "a refusé la connexion de votre boîte")
    watcher = bridge.mailboxes.watchers[pro.user_id]
    await asyncio.wait_for(watcher, 30)  # the watcher stopped: no retry storm
    state = bridge.store.mailbox(pro.user_id)
    assert state is not None and state.state == "connexion refusée"
    # a restart does not try again (nor notify again) until new credentials are given
    await runner.stop()
    runner = bridge_factory(data)
    bridge = await runner.start()
    assert (
        pro.user_id not in bridge.mailboxes.watchers
        or bridge.mailboxes.watchers[pro.user_id].done()
        or await asyncio.wait_for(bridge.mailboxes.watchers[pro.user_id], 30) is None
    )
    for _ in range(3):
        await pro.sync_once(500)
    decrypt_late(pro, dm_room)
    refusals = [n for n in pro.notices(dm_room) if "a refusé la connexion de votre boîte" in n]
    assert len(refusals) == 1

    from bridges.mail.status import mailbox_lines, mailbox_report

    report = mailbox_report(bridge.config.database_path)
    (line,) = mailbox_lines([r for r in report if r["owner"] == pro.user_id])
    assert "connexion refusée" in line and marie in line
