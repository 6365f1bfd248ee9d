"""An event the bot cannot decrypt is kept (by id, ciphertext only), its key requested, and
handled once the key arrives late; no error is ever replied."""

from __future__ import annotations

from typing import Any

import pytest
from nio import ToDeviceMessage
from support import eventually

from tests.bots.conftest import dm_with_bot

pytestmark = pytest.mark.integration


async def test_command_handled_when_its_key_arrives_late(bot, pro_factory, synapse):
    alice = await pro_factory()
    dm = await dm_with_bot(alice, synapse.bot_user_id)
    client = alice.client
    if client.should_query_keys:
        await client.keys_query()
    bot_device = client.device_store[synapse.bot_user_id][bot.app.client.device_id]

    # alice's client withholds its room key from the bot's device …
    client.blacklist_device(bot_device)
    await client.share_group_session(dm, ignore_unverified_devices=True)
    outbound = client.olm.outbound_group_sessions[dm]
    session_id, session_key = outbound.id, outbound.session_key  # index 0
    event_id = await alice.say(dm, "!aide demande")

    ledger = bot.app.ledger

    async def undecrypted() -> list[tuple[str, str, Any]]:
        return ledger.all_undecrypted()

    kept = await eventually(
        undecrypted,
        lambda rows: any(r[0] == event_id for r in rows),
        timeout=10,
        what="événement indéchiffrable consigné",
    )
    _, _, source = next(r for r in kept if r[0] == event_id)
    assert "!aide" not in str(source)  # only the ciphertext is kept
    assert session_id in bot.app.sync_loop.undecryptable.requested  # key requested

    # … then the key arrives, late, as an ordinary m.room_key over Olm
    await client.keys_claim({synapse.bot_user_id: [bot_device.id]})
    olm_session = client.olm.session_store.get(bot_device.curve25519)
    content = {
        "algorithm": "m.megolm.v1.aes-sha2",
        "room_id": dm,
        "session_id": session_id,
        "session_key": session_key,
    }
    payload = client.olm._olm_encrypt(olm_session, bot_device, "m.room_key", content)
    await client.to_device(
        ToDeviceMessage("m.room.encrypted", synapse.bot_user_id, bot_device.id, payload)
    )
    reply = await alice.wait_notice(dm, "!demande [motif]", timeout=30)
    assert reply.source["content"]["m.relates_to"]["m.in_reply_to"]["event_id"] == event_id
    assert event_id not in [e for e, _, _ in ledger.all_undecrypted()]  # handled: forgotten
    # one reply, no error before it (while the key was missing) and none doubled after it:
    # the bot's answer to a later command of this chat comes after all of them
    assert await alice.bot_notices_so_far(dm, synapse.bot_user_id) == [
        reply.source["content"]["body"]
    ]
