"""The bot's device-trust policy, in one place.

The bot cannot verify anyone interactively (nio has no in-room verification), and the
server is the deployment's own. The policy is therefore: **the bot shares its room keys with
every device of the room's current members (joined or invited), as the server lists them**.
It applies this explicitly, device by device, by marking each new device "ignored" in
nio's store (it receives keys but is *not* marked verified, so a future verification or
cross-signing check can still tell them apart); blacklisted devices stay excluded. Nothing
else in the bot passes ``ignore_unverified_devices=True``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from nio import AsyncClient, LocalProtocolError

from bots.matrix.timing import waiting_for_server

log = logging.getLogger(__name__)


class MemberDeviceTrust:
    def __init__(self, client: AsyncClient) -> None:
        self._client = client
        self._query_lock = asyncio.Lock()

    async def prepare_room(self, room_id: str) -> None:
        """Make sure every device of the room's members is known and explicitly trusted."""
        client = self._client
        room = client.rooms.get(room_id)
        if room is None or not room.encrypted or client.olm is None:
            return
        if not room.members_synced:
            await waiting_for_server(client.joined_members(room_id))
        if client.should_query_keys:
            async with self._query_lock:
                if client.should_query_keys:
                    # LocalProtocolError: the sync loop's own query got there first
                    with contextlib.suppress(LocalProtocolError):
                        await waiting_for_server(client.keys_query())
        for user_id in list(room.users):
            for device in client.device_store.active_user_devices(user_id):
                if device.verified or device.ignored or device.blacklisted:
                    continue
                if user_id == client.user_id and device.id == client.device_id:
                    continue
                client.ignore_device(device)
                log.info("appareil %s de %s accepté pour les clés de salon", device.id, user_id)
