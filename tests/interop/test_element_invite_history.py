"""Why the shared-history flag matters: an Element user (js-sdk 43, strict mode) invites a
colleague into a room where a cross-signed nio device has written. js-sdk builds its own
MSC4268 bundle from the keys it holds: with the flag on the nio device's room key, the
colleague reads the nio message; without it (plain nio), the key is withheld."""

from __future__ import annotations

import pytest

from bots.matrix.cross_signing import ensure_cross_signed
from bots.matrix.history import install_shared_history
from tests.interop.echo import EchoPeer

pytestmark = [pytest.mark.interop, pytest.mark.integration]


@pytest.mark.parametrize("flagged", [True, False], ids=["with-flag", "plain-nio-control"])
async def test_element_inviter_shares_the_bot_messages_only_when_flagged(
    flagged, nio_client_factory, js_client_factory, tmp_path
) -> None:
    bot = await nio_client_factory()
    await ensure_cross_signed(bot, key_file=tmp_path / "xs.json", encryption_key="k", password="-")
    if flagged:
        install_shared_history(bot)
    peer = EchoPeer(bot, reply=False)
    inviter = await js_client_factory()
    colleague = await js_client_factory()

    room_id = (await inviter.call("createRoom", name="Patient", invite=[bot.user_id]))["roomId"]
    await peer.wait_for(lambda: room_id in bot.invited_rooms)
    await bot.join(room_id)
    await inviter.call("waitJoined", roomId=room_id, userId=bot.user_id, timeoutMs=30000)
    await peer.wait_for(
        lambda: room_id in bot.rooms and inviter.user_id in bot.rooms[room_id].users
    )
    await peer.send(room_id, "note du bot marqueur-elt")
    await inviter.call(
        "waitMessage", roomId=room_id, sender=bot.user_id, contains="marqueur-elt", timeoutMs=30000
    )

    await inviter.call("invite", roomId=room_id, userId=colleague.user_id)
    await colleague.call("waitInvite", roomId=room_id, timeoutMs=30000)
    await colleague.key_bundle(room_id, inviter.user_id)  # js-sdk's own, sent on invite
    await colleague.call("join", roomId=room_id)

    if flagged:
        await colleague.decrypted(room_id, bot.user_id, "marqueur-elt")
    else:
        # a negative check: the key never comes. The bundle was imported when join returned
        # (it had arrived); a message sent after that, once read, outlasts the decryption
        # retries the import set off (no other source of keys: no backup, no key requests)
        await inviter.call("send", roomId=room_id, body="repère après l'arrivée")
        await colleague.decrypted(room_id, inviter.user_id, "repère après l'arrivée")
        from_bot = [
            m
            for m in await colleague.call("messages", roomId=room_id)
            if m["sender"] == bot.user_id
        ]
        assert from_bot and all(m["decryptionFailure"] for m in from_bot), from_bot
