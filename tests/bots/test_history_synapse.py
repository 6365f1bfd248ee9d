"""Shared history on the real Synapse: the flag a member's client decrypts, the rotation when
the room's history visibility changes (the installed callback), and the bundle refusal for an
invitee without a cross-signed device."""

from __future__ import annotations

from typing import Any

import pytest
from nio import RoomCreateResponse, RoomPutStateResponse, RoomVisibility
from support import encrypted_room_state

from bots.matrix.cross_signing import ensure_cross_signed
from bots.matrix.history import SHARED_HISTORY_FIELD, install_shared_history
from bots.matrix.history_bundles import share_history_bundle
from tests.interop.echo import EchoPeer

pytestmark = pytest.mark.integration


def spy_room_keys(client: Any) -> list[dict[str, Any]]:
    """Record the Olm plaintext ``m.room_key`` payloads this nio client decrypts."""
    seen: list[dict[str, Any]] = []
    original = client.olm._handle_olm_event

    def spy(sender, sender_key, payload):
        if payload.get("type") == "m.room_key":
            seen.append(payload)
        return original(sender, sender_key, payload)

    client.olm._handle_olm_event = spy
    return seen


async def test_flag_on_the_wire_and_rotation_on_visibility_change(
    nio_client_factory, tmp_path
) -> None:
    bot = await nio_client_factory()
    member = await nio_client_factory()
    await ensure_cross_signed(bot, key_file=tmp_path / "xs.json", encryption_key="k", password="-")
    state = install_shared_history(bot)
    assert install_shared_history(bot) is state  # idempotent
    bot_peer, member_peer = EchoPeer(bot, reply=False), EchoPeer(member, reply=False)
    keys_seen = spy_room_keys(member)

    created = await bot.room_create(
        visibility=RoomVisibility.private,
        invite=[member.user_id],
        initial_state=encrypted_room_state(),
    )
    assert isinstance(created, RoomCreateResponse)
    room_id = created.room_id
    await member_peer.wait_for(lambda: room_id in member.invited_rooms)
    await member.join(room_id)
    await bot_peer.wait_for(
        lambda: room_id in bot.rooms and member.user_id in bot.rooms[room_id].users
    )

    await bot_peer.send(room_id, "avant")
    await member_peer.wait_for(lambda: keys_seen)
    first = keys_seen[0]["content"]
    assert first[SHARED_HISTORY_FIELD] is True
    # MSC4147: our published device keys, cross-signature included, in the Olm payload
    published = keys_seen[0]["sender_device_keys"]
    assert published["device_id"] == bot.device_id and published["user_id"] == bot.user_id
    assert len(published["signatures"][bot.user_id]) == 2  # device + self-signing key
    assert "unsigned" not in published
    assert "m.shared_history" not in first
    await member_peer.wait_for(
        lambda: [e for e in member_peer.received if getattr(e, "body", "") == "avant"]
    )

    put = await bot.room_put_state(
        room_id, "m.room.history_visibility", {"history_visibility": "joined"}
    )
    assert isinstance(put, RoomPutStateResponse)
    await bot_peer.wait_for(lambda: bot.rooms[room_id].history_visibility == "joined")
    await bot_peer.send(room_id, "après")
    await member_peer.wait_for(lambda: len(keys_seen) >= 2)
    second = keys_seen[1]["content"]
    assert second["session_id"] != first["session_id"]
    assert not any("shared_history" in key for key in second)
    await member_peer.wait_for(
        lambda: [e for e in member_peer.received if getattr(e, "body", "") == "après"]
    )


async def test_no_bundle_for_an_invitee_without_cross_signed_device(
    nio_client_factory, tmp_path
) -> None:
    bot = await nio_client_factory()
    await ensure_cross_signed(bot, key_file=tmp_path / "xs.json", encryption_key="k", password="-")
    install_shared_history(bot)
    created = await bot.room_create(
        visibility=RoomVisibility.private,
        initial_state=encrypted_room_state(None),
    )
    assert isinstance(created, RoomCreateResponse)
    plain = await nio_client_factory()  # a nio device: never cross-signed
    assert await share_history_bundle(bot, created.room_id, plain.user_id) == []
    server = bot.user_id.split(":", 1)[1]
    assert await share_history_bundle(bot, created.room_id, f"@personne:{server}") == []
