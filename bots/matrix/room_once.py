"""Creating a room at most once per intent, even when the bot dies in the middle.

A room is created for a reason that has a stable name — the command event of
``!patient nouveau``, the file opened in the dossier. If the bot is killed after the
homeserver created the room but before the bot recorded it, the replayed command (or feed
event) must find that room instead of creating a second one.

The homeserver itself keeps the intent: the room is created with a local alias derived from
the intent (``#cercle-<sha256>:server``, 32 hex digits, nothing about the patient in it).
Synapse refuses a second creation with the same alias (``M_ROOM_IN_USE``), atomically; the
alias then resolves to the room made the first time. This also covers a creation whose
answer was lost on the network and that is sent again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from nio import AsyncClient, RoomResolveAliasResponse

from bots.matrix.io import MatrixIO, MatrixRequestError, _check
from bots.matrix.timing import waiting_for_server


def intent_alias(intent: str) -> str:
    """Pure: the alias localpart of the room created for ``intent``."""
    return "cercle-" + hashlib.sha256(intent.encode()).hexdigest()[:32]


async def create_room_once(
    client: AsyncClient, io: MatrixIO, intent: str, request: Mapping[str, Any]
) -> tuple[str, bool]:
    """The room for ``intent``: (room id, True) when created now, (room id, False) when a
    previous attempt already created it."""
    localpart = intent_alias(intent)
    try:
        return await io.create_room(alias=localpart, **request), True
    except MatrixRequestError as exc:
        if exc.errcode != "M_ROOM_IN_USE":
            raise
    server = str(client.user_id).split(":", 1)[1]
    resp = await waiting_for_server(client.room_resolve_alias(f"#{localpart}:{server}"))
    return str(_check(resp, "resolve_alias", RoomResolveAliasResponse).room_id), False
