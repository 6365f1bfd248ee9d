"""A cross-signed nio device against matrix-js-sdk (Rust crypto) in strict mode (MSC4153).

The control case (the same nio device *not* cross-signed) shows that the strict mode really
bites: its reply cannot be decrypted and it gets no room key from the js-sdk user.
"""

from __future__ import annotations

import pytest
from nio import RoomCreateResponse, RoomVisibility
from support import encrypted_room_state

from bots.matrix.cross_signing import ensure_cross_signed
from tests.interop.echo import EchoPeer

pytestmark = [pytest.mark.interop, pytest.mark.integration]


async def create_patient_like_room(client, invitee: str) -> str:
    response = await client.room_create(
        visibility=RoomVisibility.private,
        name="Interop",
        invite=[invitee],
        initial_state=encrypted_room_state(),
    )
    assert isinstance(response, RoomCreateResponse), response
    return str(response.room_id)


@pytest.mark.parametrize("cross_signed", [True, False], ids=["signed", "unsigned-control"])
async def test_strict_js_client_and_nio_device(
    cross_signed, user_factory, nio_client_factory, js_client_factory, tmp_path
) -> None:
    nio_client = await nio_client_factory()
    if cross_signed:
        await ensure_cross_signed(
            nio_client, key_file=tmp_path / "xs.json", encryption_key="k", password="unused"
        )
    peer = EchoPeer(nio_client)
    js = await js_client_factory()

    room_id = await create_patient_like_room(nio_client, js.user_id)
    await js.call("waitInvite", roomId=room_id, timeoutMs=30000)
    await js.call("join", roomId=room_id)
    await peer.wait_for(
        lambda: (
            js.user_id
            in (nio_client.rooms.get(room_id).users if room_id in nio_client.rooms else {})
        )
    )

    status = await js.call("deviceStatus", userId=nio_client.user_id, deviceId=nio_client.device_id)
    assert status["signedByOwner"] is cross_signed

    peer.start()
    try:
        await js.call("send", roomId=room_id, body="ping interop 42")
        if cross_signed:
            # the js-sdk user's message is decrypted by the nio device...
            got = await peer.wait_for(lambda: [e for e in peer.received if "42" in e.body])
            assert got[0].sender == js.user_id
            # ...and the nio reply decrypts on the js-sdk side without any warning
            reply = await js.decrypted(room_id, nio_client.user_id, "écho : ping interop 42")
            assert reply["senderDeviceId"] == nio_client.device_id
            assert reply["encryptionInfo"]["shieldReason"] != "UNSIGNED_DEVICE"
            # sender identity not verified by the js user (TOFU), but the device is signed:
            assert reply["encryptionInfo"]["shieldColour"] == "NONE", reply["encryptionInfo"]
        else:
            # strict mode: no room key for an unsigned device, and its messages are refused
            await peer.wait_for(lambda: peer.undecryptable, timeout=30)
            assert not [e for e in peer.received if "42" in e.body]
            await peer.send(room_id, "message d'un appareil non signé")
            refused = await js.call(
                "waitMessage",
                roomId=room_id,
                sender=nio_client.user_id,
                decrypted=False,
                timeoutMs=30000,
            )
            assert refused["decryptionFailure"], refused
            assert refused["failureReason"] == "UNSIGNED_SENDER_DEVICE", refused
    finally:
        await peer.stop()
