"""Issue 11: every newcomer invited with ``!inviter`` reads the earlier conversation, or gets
it as a PDF — never nothing. The real bot; newcomers on Element's crypto stack (matrix-js-sdk
43 + Rust crypto, strict "only signed devices" mode):

* logging in for the first time *after* the invitation (no device when invited);
* whose device gets cross-signed only *after* joining (Element bootstraps a few seconds after
  its first login);
* with two devices (the second one cross-signed from the first);
* on a client that never cross-signs: the transcript PDF in the bot's direct chat.

The inviter's reply says which way the history went."""

from __future__ import annotations

from typing import Any

import pytest

from tests.interop.jsdriver import JsClient

pytestmark = [pytest.mark.interop, pytest.mark.integration]

EARLIER = "constantes du matin, marqueur-arrivee"


async def patient_room(cercle_bot: Any, js_client_factory: Any) -> tuple[str, JsClient, str]:
    """A nurse opens a patient room through the bot and writes in it: (bot, nurse, room)."""
    bot_user = str(cercle_bot.client.user_id)
    nurse = await js_client_factory()
    room_id = await nurse.new_patient_room(bot_user, "Arrivée interop")
    await nurse.call("waitJoined", roomId=room_id, userId=bot_user, timeoutMs=30000)
    await nurse.call("send", roomId=room_id, body=EARLIER)
    return bot_user, nurse, room_id


async def accept(newcomer: JsClient, room_id: str) -> None:
    await newcomer.call("waitInvite", roomId=room_id, timeoutMs=30000)
    await newcomer.call("join", roomId=room_id)


async def invite(nurse: JsClient, room_id: str, bot_user: str, who: str) -> str:
    """``!inviter`` and the bot's reply (plain text)."""
    await nurse.call("send", roomId=room_id, body=f"!inviter {who}")
    reply = await nurse.message(room_id, bot_user, "a été invité", 60000)
    return str(reply["content"]["body"])


async def reads_earlier(newcomer: JsClient, room_id: str, nurse: JsClient) -> dict[str, Any]:
    seen = await newcomer.message(room_id, nurse.user_id, "marqueur-arrivee", 45000)
    assert not seen["decryptionFailure"], seen
    return dict(seen)


async def direct_chat(newcomer: JsClient) -> str:
    """The bot's direct chat with ``newcomer``, joined."""
    dm = str((await newcomer.call("waitInvite", timeoutMs=60000))["roomId"])
    await newcomer.call("join", roomId=dm)
    return dm


async def receives_transcript(newcomer: JsClient, dm: str, bot_user: str) -> None:
    """The transcript PDF arrives in the bot's direct chat, readable."""
    pdf = await newcomer.message(dm, bot_user, "Historique de la conversation", 60000)
    assert pdf["content"]["msgtype"] == "m.file" and not pdf["decryptionFailure"], pdf


async def test_newcomer_logging_in_after_the_invitation_reads_the_history(
    cercle_bot: Any, js_client_factory: Any, user_factory: Any
) -> None:
    bot_user, nurse, room_id = await patient_room(cercle_bot, js_client_factory)
    doctor = user_factory()  # an account that has never logged in: no device keys yet

    reply = await invite(nurse, room_id, bot_user, doctor.user_id)
    assert "aucun appareil ne peut encore recevoir les clés" in reply, reply

    newcomer = await js_client_factory(doctor)  # first login, cross-signed at once
    await accept(newcomer, room_id)
    await reads_earlier(newcomer, room_id, nurse)  # the bundle, sent when they joined


async def test_device_cross_signed_after_joining_gets_the_history(
    cercle_bot: Any, js_client_factory: Any
) -> None:
    bot_user, nurse, room_id = await patient_room(cercle_bot, js_client_factory)
    newcomer = await js_client_factory(cross_sign=False)  # Element before its bootstrap

    reply = await invite(nurse, room_id, bot_user, newcomer.user_id)
    assert "aucun appareil ne peut encore recevoir les clés" in reply, reply
    await accept(newcomer, room_id)
    messages = await newcomer.call("messages", roomId=room_id)
    assert all(m["decryptionFailure"] for m in messages if m["sender"] == nurse.user_id)

    await newcomer.call("bootstrapCrossSigning")  # the device list changes: the bot retries
    await reads_earlier(newcomer, room_id, nurse)


async def test_newcomer_with_two_devices_gets_the_bundle_on_both(
    cercle_bot: Any, js_client_factory: Any
) -> None:
    bot_user, nurse, room_id = await patient_room(cercle_bot, js_client_factory)
    first = await js_client_factory()
    second = await js_client_factory(first.test_user, new_device=True, cross_sign=False)
    await first.call("crossSignDevice", deviceId=second.device_id)

    reply = await invite(nurse, room_id, bot_user, first.user_id)
    assert "MSC4268) avec 2 appareils" in reply, reply
    await accept(first, room_id)
    await reads_earlier(first, room_id, nurse)
    arrival = cercle_bot.services.arrivals.store.get(room_id, first.user_id)
    assert arrival.devices == {first.device_id, second.device_id}


async def test_client_that_never_cross_signs_gets_the_transcript(
    cercle_bot: Any, js_client_factory: Any
) -> None:
    bot_user, nurse, room_id = await patient_room(cercle_bot, js_client_factory)
    newcomer = await js_client_factory(cross_sign=False, strict=False)  # like Cinny

    reply = await invite(nurse, room_id, bot_user, newcomer.user_id)
    assert "sinon une transcription PDF" in reply, reply
    await accept(newcomer, room_id)

    await receives_transcript(newcomer, await direct_chat(newcomer), bot_user)
    told = await nurse.message(room_id, bot_user, "Historique transmis", 30000)
    assert "en transcription PDF" in told["content"]["body"]
    # once per person and room: asking again is refused
    await newcomer.call("send", roomId=room_id, body="!historique")
    again = await newcomer.message(room_id, bot_user, "déjà été envoyé", 30000)
    assert again


async def test_invited_from_element_reads_through_its_bundle_and_is_offered_the_transcript(
    cercle_bot: Any, js_client_factory: Any
) -> None:
    bot_user, nurse, room_id = await patient_room(cercle_bot, js_client_factory)
    newcomer = await js_client_factory()
    await nurse.call("invite", roomId=room_id, userId=newcomer.user_id)  # Element's own bundle
    await accept(newcomer, room_id)
    await reads_earlier(newcomer, room_id, nurse)
    # the bot cannot know whether that bundle came: it offers the transcript, once
    dm = await direct_chat(newcomer)
    offer = await newcomer.message(dm, bot_user, "!historique", 60000)
    assert "messages d'avant votre arrivée" in offer["content"]["body"], offer


async def test_device_cross_signed_while_the_bot_is_down_gets_the_history_after_restart(
    synapse: Any, tmp_path: Any, js_client_factory: Any
) -> None:
    from tests.bots.conftest import BotRunner, make_bot_config

    runner = BotRunner(
        synapse, make_bot_config(synapse, tmp_path / "bot", history_fallback_seconds=120.0)
    )
    app = await runner.start()
    try:
        bot_user, nurse, room_id = await patient_room(app, js_client_factory)
        newcomer = await js_client_factory(cross_sign=False)
        reply = await invite(nurse, room_id, bot_user, newcomer.user_id)
        assert "aucun appareil ne peut encore recevoir les clés" in reply, reply
        await accept(newcomer, room_id)
        await nurse.call("waitJoined", roomId=room_id, userId=newcomer.user_id, timeoutMs=30000)

        await runner.stop()  # what the bot remembers of the newcomer is on disk
        await newcomer.call("bootstrapCrossSigning")
        await runner.start()  # its next sync carries the device-list change
        await reads_earlier(newcomer, room_id, nurse)
    finally:
        await runner.stop()


async def test_joining_with_the_device_that_cannot_take_keys_is_offered_the_transcript(
    cercle_bot: Any, js_client_factory: Any
) -> None:
    bot_user, nurse, room_id = await patient_room(cercle_bot, js_client_factory)
    signed = await js_client_factory()
    unsigned = await js_client_factory(
        signed.test_user, new_device=True, cross_sign=False, strict=False
    )
    reply = await invite(nurse, room_id, bot_user, signed.user_id)
    assert "MSC4268) avec 1 appareil" in reply, reply
    await accept(unsigned, room_id)  # the person joins from the other device: no keys there
    dm = await direct_chat(unsigned)
    offer = await unsigned.message(dm, bot_user, "!historique", 60000)
    assert "ne peut pas recevoir les clés" in offer["content"]["body"], offer
    await unsigned.call("send", roomId=room_id, body="!historique")
    await receives_transcript(unsigned, dm, bot_user)
