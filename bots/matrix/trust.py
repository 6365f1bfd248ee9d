"""The bot's device-trust policy, in one place.

The bot cannot verify anyone interactively (nio has no in-room verification), and the
server is the deployment's own. The policy is therefore: **the bot shares its room keys with
every device of the room's current members (joined or invited), as the server lists them**.
It applies this explicitly, device by device, by marking each new device "ignored" in
nio's store (it receives keys but is *not* marked verified, so a future verification or
cross-signing check can still tell them apart); blacklisted devices stay excluded. Nothing
else in the bot passes ``ignore_unverified_devices=True``.

It also makes sure the room key reaches them. nio shares a room's outbound Megolm session
once and re-shares only when a member or device change invalidates it; but an invalidation
that arrives while that very session is being shared (keys claimed, to-device messages in
flight: seconds under load) is dropped (``invalidate_outbound_session`` keeps a session not
yet marked shared), and the session is then marked shared without the newcomer: every later
message sent with it is unreadable to them. So before each send the session is checked
against the room's current member devices: one that some member device never received is
shared again with those devices only (same session, no rotation: a newcomer reads from now
on, as Element does), one given to someone no longer a member is replaced.
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
        sharing = client.sharing_session.get(room_id)
        if sharing is not None:  # a share in flight: check what it actually reached
            await sharing.wait()
        session_reaches_members(client, room_id)


def session_reaches_members(client: AsyncClient, room_id: str) -> None:
    """The room's outbound Megolm session, if already shared, is re-opened for the member
    devices it never reached (nio then shares the same session with those only) or dropped
    if someone no longer a member received it (nio then starts a new one). No await: the
    ``room_send`` that follows decides on what this leaves."""
    olm, room = client.olm, client.rooms.get(room_id)
    session = olm.outbound_group_sessions.get(room_id) if olm is not None else None
    if room is None or session is None or not session.shared or session.expired:
        return
    members = set(room.users)
    if {user for user, _ in session.users_shared_with} - members:
        log.info("clé de salon donnée à un ancien membre : renouvelée room=%s", room_id)
        client.invalidate_outbound_session(room_id)
        return
    known = session.users_shared_with | session.users_ignored
    missed = [
        (user_id, device.id)
        for user_id in members
        for device in client.device_store.active_user_devices(user_id)
        if (user_id, device.id) not in known
        and not device.blacklisted
        and not (user_id == client.user_id and device.id == client.device_id)
    ]
    if missed:
        log.info(
            "clé de salon à partager avec %d appareil(s) manqué(s) room=%s", len(missed), room_id
        )
        session.shared = False
