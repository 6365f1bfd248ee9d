"""The bot's I/O layer on a real Synapse: encrypted file, notice shape, errors as exceptions."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import pytest
from nio import (
    RoomEncryptedFile,
    RoomInviteResponse,
    ShareGroupSessionResponse,
)
from nio.crypto.attachments import decrypt_attachment
from support import download_media
from support import eventually as poll_until

from bots.matrix.io import MatrixRequestError
from tests.bots.conftest import WELCOME, dm_with_bot

pytestmark = pytest.mark.integration


async def test_file_is_uploaded_encrypted_and_readable_by_the_member(bot, pro_factory, synapse):
    alice = await pro_factory()
    dm = await dm_with_bot(alice, synapse.bot_user_id)
    await bot.app.sync_loop.stats.first_sync_done.wait()
    while dm not in bot.app.client.rooms:  # the bot's own sync has seen the room
        await alice.sync_once(200)
    data = b"%PDF-1.7 " + os.urandom(3000)
    io = bot.app.services.io
    await io.send_uploaded(
        dm, await io.upload_encrypted(data), filename="synthese.pdf", mimetype="application/pdf"
    )
    event = await alice.wait_for(dm, lambda ev: isinstance(ev, RoomEncryptedFile))
    assert event.source["content"]["filename"] == "synthese.pdf"
    ciphertext = await download_media(alice.client, event.url)
    assert ciphertext != data  # the server holds ciphertext only
    plain = decrypt_attachment(ciphertext, event.key["k"], event.hashes["sha256"], event.iv)
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


async def test_a_member_who_joins_while_the_room_key_is_shared_can_read_what_follows(
    bot, pro_factory, synapse, monkeypatch
):
    """nio drops the invalidation a join makes while the room's Megolm session is being
    shared, and marks that session shared without the newcomer: the bot's next message must
    still reach them (bots.matrix.trust.session_reaches_members). Bob is someone the bot
    already knows (his device accepted in another room), as a colleague added to a patient
    room usually is: no new device to accept invalidates the session later."""
    alice, bob = await pro_factory(), await pro_factory()
    client = bot.app.client
    await bob.wait_notice(await dm_with_bot(bob, synapse.bot_user_id), WELCOME)

    async def bob_devices_accepted() -> list[bool]:
        return [d.ignored for d in client.device_store.active_user_devices(bob.user_id)]

    await poll_until(bob_devices_accepted, lambda a: bool(a) and all(a), what="Bob connu du bot")
    dm = await dm_with_bot(alice, synapse.bot_user_id)
    await alice.wait_notice(dm, WELCOME)  # the bot's own first share in the room is over
    sharing, real_send = asyncio.Event(), client._send

    def bob_joined_for_the_bot() -> bool:
        member = client.rooms[dm].users.get(bob.user_id)
        return member is not None and not member.invited

    async def held_send(response_class: Any, *args: Any, **kwargs: Any) -> Any:
        # the room key's to-device messages wait until Bob's join is in the bot's state
        room_id = kwargs.get("response_data", (None,))[0]
        if response_class is ShareGroupSessionResponse and room_id == dm and not sharing.is_set():
            sharing.set()
            deadline = time.monotonic() + 45
            while not bob_joined_for_the_bot() and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
        return await real_send(response_class, *args, **kwargs)

    monkeypatch.setattr(client, "_send", held_send)
    client.invalidate_outbound_session(dm)  # the next message shares a new session
    first = asyncio.create_task(bot.app.services.io.send_notice(dm, "Avis un"))
    await asyncio.wait_for(sharing.wait(), 45)  # shared with Alice only, not yet marked
    invited = await alice.client.room_invite(dm, bob.user_id)
    assert isinstance(invited, RoomInviteResponse), invited
    await bob.wait_member(dm, bob.user_id)
    await asyncio.wait_for(first, 60)
    assert bob_joined_for_the_bot()
    await bot.app.services.io.send_notice(dm, "Avis deux")
    notice = await bob.wait_notice(dm, "Avis deux", timeout=30)
    assert notice.source["content"]["msgtype"] == "m.notice"
