"""Done-when of the foundation: a user creates a room and it is encrypted; messages are
exchanged end-to-end encrypted between two nio clients on the real Synapse."""

from __future__ import annotations

import pytest
from nio import MegolmEvent, RoomCreateResponse, RoomMessageText, RoomSendResponse
from support import eventually

pytestmark = pytest.mark.integration


async def test_new_room_is_encrypted_and_messages_decrypt(nio_client_factory) -> None:
    alice = await nio_client_factory()
    bob = await nio_client_factory()
    # A plain createRoom with no encryption asked: the server turns it on by default.
    created = await alice.room_create(name="Salle de test", invite=[bob.user_id])
    assert isinstance(created, RoomCreateResponse)
    await bob.sync(timeout=0)
    await bob.join(created.room_id)
    await alice.sync(timeout=0)
    room = alice.rooms[created.room_id]
    assert room.encrypted

    await alice.keys_query()
    sent = await alice.room_send(
        created.room_id,
        "m.room.message",
        {"msgtype": "m.text", "body": "bonjour, œ et €"},
        ignore_unverified_devices=True,
    )
    assert isinstance(sent, RoomSendResponse)

    bodies: list[str] = []

    async def received() -> list[str]:
        resp = await bob.sync(timeout=500)
        joined = resp.rooms.join.get(created.room_id)
        for event in joined.timeline.events if joined else []:
            assert not isinstance(event, MegolmEvent), "undecryptable"
            if isinstance(event, RoomMessageText):
                bodies.append(event.body)
        return bodies

    await eventually(received, bool, timeout=15, what="message reçu", interval=0.1)
    assert bodies == ["bonjour, œ et €"]
