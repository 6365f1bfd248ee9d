"""Issue 3's interop test: the real Cercle bot and an Element-like client (matrix-js-sdk 43,
Rust crypto, "only signed devices" mode). The js-sdk user opens a patient room through the
bot and raises ``!urgent``; the bot decrypts the command and its notice decrypts on the
js-sdk side, from a device signed by its owner, with no warning."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.interop, pytest.mark.integration]


async def test_js_user_raises_urgent_in_a_patient_room(cercle_bot, js_client_factory) -> None:
    bot_user = cercle_bot.client.user_id
    bot_device = cercle_bot.client.device_id
    js = await js_client_factory()

    # a direct chat with the bot, then `!patient nouveau` (the bot must decrypt it)
    dm = (await js.call("createRoom", name="Cercle", invite=[bot_user]))["roomId"]
    await js.call("waitJoined", roomId=dm, userId=bot_user, timeoutMs=30000)
    status = await js.call("deviceStatus", userId=bot_user, deviceId=bot_device)
    assert status["signedByOwner"], status
    await js.call("send", roomId=dm, body="!patient nouveau Interop js")
    invite = await js.call("waitInvite", timeoutMs=30000)
    assert invite["inviter"] == bot_user
    room_id = invite["roomId"]
    await js.call("join", roomId=room_id)

    await js.call("send", roomId=room_id, body="!urgent ordonnance-interop-7")
    notice = await js.decrypted(room_id, bot_user, "ordonnance-interop-7", timeout_ms=45000)
    assert notice["content"]["msgtype"] == "m.notice"
    assert notice["senderDeviceId"] == bot_device
    assert notice["encryptionInfo"] == {"shieldColour": "NONE", "shieldReason": None}, notice

    # every bot message the js-sdk user saw decrypted, none flagged
    for message in await js.call("messages", roomId=room_id):
        if message["sender"] == bot_user:
            assert not message["decryptionFailure"], message
            assert message["encryptionInfo"]["shieldColour"] == "NONE", message
