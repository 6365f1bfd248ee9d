"""History for newcomers: a cross-signed nio device sends an MSC4268 key bundle before
inviting a matrix-js-sdk user (Rust crypto, strict mode), who then reads the earlier
messages. Control: a user invited without a bundle cannot read them."""

from __future__ import annotations

import pytest
from nio import RoomCreateResponse, RoomVisibility
from support import encrypted_room_state

from bots.matrix import history_bundles
from bots.matrix.cross_signing import ensure_cross_signed
from bots.matrix.history import install_shared_history
from bots.matrix.history_bundles import share_history_bundle
from tests.interop.echo import EchoPeer

pytestmark = [pytest.mark.interop, pytest.mark.integration]


# matrix-js-sdk 43 (matrix-sdk-crypto-wasm 18.9) accepts both names of the to-device event.
@pytest.mark.parametrize("event_type", ["io.element.msc4268.room_key_bundle", "m.room_key_bundle"])
async def test_invited_js_user_reads_earlier_messages_with_the_bundle(
    event_type, nio_client_factory, js_client_factory, tmp_path, monkeypatch
) -> None:
    monkeypatch.setattr(history_bundles, "BUNDLE_EVENT_TYPE", event_type)
    bot = await nio_client_factory()
    await ensure_cross_signed(bot, key_file=tmp_path / "xs.json", encryption_key="k", password="-")
    install_shared_history(bot)
    peer = EchoPeer(bot, reply=False)

    created = await bot.room_create(
        visibility=RoomVisibility.private,
        name="Historique",
        initial_state=encrypted_room_state(),
    )
    assert isinstance(created, RoomCreateResponse)
    room_id = created.room_id
    await peer.wait_for(lambda: room_id in bot.rooms and bot.rooms[room_id].encrypted)
    await peer.send(room_id, "historique 1 : tension 14/9")
    await peer.send(room_id, "historique 2 : pansement refait")

    newcomer = await js_client_factory()
    outsider = await js_client_factory()

    assert await share_history_bundle(bot, room_id, newcomer.user_id)
    for js in (newcomer, outsider):
        invited = await bot.room_invite(room_id, js.user_id)
        assert not hasattr(invited, "status_code"), invited
        await js.call("waitInvite", roomId=room_id, timeoutMs=30000)
    await newcomer.key_bundle(room_id, bot.user_id)  # arrived before joining
    for js in (newcomer, outsider):
        await js.call("join", roomId=room_id)

    for body in ("historique 1 : tension 14/9", "historique 2 : pansement refait"):
        seen = await newcomer.decrypted(room_id, bot.user_id, body)
        # imported from a bundle: Element shows the grey "authenticity not guaranteed" shield
        assert seen["encryptionInfo"] == {
            "shieldColour": "GREY",
            "shieldReason": "AUTHENTICITY_NOT_GUARANTEED",
        }

    # control: the member invited without a bundle sees the same events, undecryptable
    messages = await outsider.call("messages", roomId=room_id)
    from_bot = [m for m in messages if m["sender"] == bot.user_id]
    assert from_bot, messages
    assert all(m["decryptionFailure"] for m in from_bot), from_bot
