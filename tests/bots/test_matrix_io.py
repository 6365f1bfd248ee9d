"""The bot's I/O layer on a real Synapse: encrypted file, notice shape, errors as exceptions."""

from __future__ import annotations

import os

import pytest
from nio import DownloadResponse, RoomEncryptedFile
from nio.crypto.attachments import decrypt_attachment

from bots.matrix.io import MatrixRequestError
from tests.bots.conftest import dm_with_bot

pytestmark = pytest.mark.integration


async def test_file_is_uploaded_encrypted_and_readable_by_the_member(bot, pro_factory, synapse):
    alice = await pro_factory()
    dm = await dm_with_bot(alice, synapse.bot_user_id)
    await bot.app.sync_loop.stats.first_sync_done.wait()
    while dm not in bot.app.client.rooms:  # the bot's own sync has seen the room
        await alice.sync_once(200)
    data = b"%PDF-1.7 " + os.urandom(3000)
    await bot.app.services.io.send_file(
        dm, data, filename="synthese.pdf", mimetype="application/pdf"
    )
    event = await alice.wait_for(dm, lambda ev: isinstance(ev, RoomEncryptedFile))
    assert event.source["content"]["filename"] == "synthese.pdf"
    resp = await alice.client.download(event.url)
    assert isinstance(resp, DownloadResponse)
    assert resp.body != data  # the server holds ciphertext only
    plain = decrypt_attachment(resp.body, event.key["k"], event.hashes["sha256"], event.iv)
    assert plain == data


async def test_notice_shape_and_refusals_as_exceptions(bot, pro_factory, synapse):
    alice = await pro_factory()
    dm = await dm_with_bot(alice, synapse.bot_user_id)
    while dm not in bot.app.client.rooms:
        await alice.sync_once(200)
    io = bot.app.services.io
    await io.send_notice(
        dm, "Avis d'essai", "<b>Avis d'essai</b>", mentions=[alice.user_id], txn_id="cercle.test-1"
    )
    again = await io.send_notice(
        dm, "Avis d'essai", "<b>Avis d'essai</b>", mentions=[alice.user_id], txn_id="cercle.test-1"
    )
    # (not « Bonjour »: the bot's own welcome in a new direct chat starts so)
    notice = await alice.wait_notice(dm, "Avis d'essai")
    assert notice.event_id == again  # same transaction id: one event
    content = notice.source["content"]
    assert content["msgtype"] == "m.notice" and content["formatted_body"] == "<b>Avis d'essai</b>"
    assert content["m.mentions"] == {"user_ids": [alice.user_id]}
    assert await io.get_state(dm, "fr.cercle.absent") is None
    with pytest.raises(MatrixRequestError) as exc:
        await io.put_state("!inexistant:" + synapse.server_name, "m.room.topic", {"topic": "x"})
    assert exc.value.errcode in ("M_FORBIDDEN", "M_NOT_FOUND")
