"""The Courriers room of a professional, and her "Courriers" folder (a space) that holds it.

The room is encrypted, invite-only, with two members: the bridge and the professional;
only the bridge may invite (mail is personal and may be clinical). Both are created at
most once per person even when the bridge dies in the middle (``create_room_once``: the
intent is a room alias that Synapse refuses twice). Nothing about the mailbox (not even the
address) goes into room state, which is not encrypted.
"""

from __future__ import annotations

import asyncio
import time

from nio import AsyncClient

from bots.flags.spaces import personal_space_request
from bots.matrix.initial_state import private_room
from bots.matrix.io import MatrixIO
from bots.matrix.room_once import create_room_once

ROOM_NAME = "Courriers"
SPACE_TOPIC = "Votre messagerie sécurisée de santé, relayée par Cercle."
ROOM_TOPIC = (
    "Vos courriers de messagerie sécurisée de santé. Répondez à un courrier pour y répondre "
    "par courriel ; !courrier à <adresse> objet <objet> pour écrire ; !classer <patient> "
    "en réponse à un courrier pour le classer dans le dossier."
)


def courriers_room_request(owner: str) -> dict[str, object]:
    return dict(
        name=ROOM_NAME,
        topic=ROOM_TOPIC,
        invite=[owner],
        initial_state=private_room(),
        power_level_override={
            "users": {owner: 50},  # the bridge is the creator (room v12: unlimited)
            "invite": 100,
            "kick": 100,
            "state_default": 100,
            "events_default": 0,
        },
    )


async def ensure_courriers(
    client: AsyncClient, io: MatrixIO, owner: str, server_name: str
) -> tuple[str, str]:
    """(room id, space id) of ``owner``'s Courriers room and folder."""
    room_id, _ = await create_room_once(
        client, io, f"courriers|{owner}", courriers_room_request(owner)
    )
    space_id, _ = await create_room_once(
        client,
        io,
        f"courriers-folder|{owner}",
        personal_space_request(owner, ROOM_NAME, SPACE_TOPIC),
    )
    # idempotent: the same state written again is a no-op for clients
    await io.put_state(
        space_id, "m.space.child", {"via": [server_name], "suggested": True}, room_id
    )
    return room_id, space_id


async def wait_for_room(client: AsyncClient, room_id: str, timeout: float = 60.0) -> None:
    """Until the sync loop knows the room (nio encrypts only for rooms it has synced)."""
    deadline = time.monotonic() + timeout
    while room_id not in client.rooms:
        if time.monotonic() > deadline:
            raise TimeoutError("salon non synchronisé")
        await asyncio.sleep(0.1)
