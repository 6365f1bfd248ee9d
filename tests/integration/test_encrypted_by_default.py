"""Done-when of the foundation: a user creates a room and it is encrypted; messages are
exchanged end-to-end encrypted between two nio clients on the real Synapse."""

from __future__ import annotations

import pytest
from nio import RoomCreateResponse
from support import send_and_decrypt

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

    text = "bonjour, œ et €"
    assert await send_and_decrypt(alice, bob, created.room_id, text) == [text]
