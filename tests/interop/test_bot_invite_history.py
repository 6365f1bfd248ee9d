"""History for a newcomer invited by the real bot (issue 6, key bundle path): a js-sdk
professional opens a patient room, writes, raises a flag, then has the bot invite a colleague
(``!inviter``). The bot sends its MSC4268 bundle before the invite; the colleague's js-sdk
client (strict mode) reads the earlier messages — the bot's and the first professional's,
whose key the bot received with the shared-history flag."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.interop, pytest.mark.integration]


async def test_colleague_invited_by_the_bot_reads_the_earlier_conversation(
    cercle_bot, js_client_factory
) -> None:
    bot_user = cercle_bot.client.user_id
    nurse = await js_client_factory()
    doctor = await js_client_factory()

    room_id = await nurse.new_patient_room(bot_user, "Historique interop")

    await nurse.call("send", roomId=room_id, body="constantes du matin : TA 13/8 marqueur-hist")
    await nurse.call("send", roomId=room_id, body="!demande avis-interop-3")
    await nurse.call(
        "waitMessage", roomId=room_id, sender=bot_user, contains="avis-interop-3", timeoutMs=45000
    )

    await nurse.call("send", roomId=room_id, body=f"!inviter {doctor.user_id}")
    invite = await doctor.call("waitInvite", roomId=room_id, timeoutMs=45000)
    assert invite["inviter"] == bot_user
    await doctor.key_bundle(room_id, bot_user)  # sent before the invite, by to-device
    await doctor.call("join", roomId=room_id)

    await doctor.decrypted(room_id, nurse.user_id, "marqueur-hist")
    await doctor.decrypted(room_id, bot_user, "avis-interop-3")

    # after the bundle, the bot's Olm payloads carry sender_device_keys (MSC4147): its next
    # room key (the invitation notice) is accepted by both Rust crypto clients, no warning
    for js in (nurse, doctor):
        notice = await js.call(
            "waitMessage", roomId=room_id, sender=bot_user, contains="a été invité", timeoutMs=30000
        )
        assert notice["encryptionInfo"] == {"shieldColour": "NONE", "shieldReason": None}, notice
