"""A stale /sync state block (a membership change that forked the room) does not leave the
bot with a former member in the room, or a joined one only invited: the members are read back
from the server, nio's room and the snapshot corrected (``bots.matrix.member_repair``)."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from nio import AsyncClient, AsyncClientConfig, SyncResponse

from bots.matrix.member_repair import repair_members, rooms_to_check
from bots.matrix.room_snapshot import RoomSnapshot
from bots.matrix.room_state import RoomStateCache
from tests.homeserver.test_sync_full_state_fork import forked_room, one_event_back

pytestmark = pytest.mark.integration


def snapshot_members(db: sqlite3.Connection, room_id: str) -> dict[str, str]:
    return {
        user: content
        for user, content in db.execute(
            "SELECT state_key, json_extract(content, '$.membership') FROM room_state "
            "WHERE room_id=? AND type='m.room.member'",
            (room_id,),
        )
    }


@dataclass
class Stale:
    """The host's client after the sync whose state block is stale, and its snapshot."""

    client: AsyncClient
    snapshot: RoomSnapshot
    db: sqlite3.Connection
    resp: SyncResponse
    host: Any
    guest: Any
    room: str


@asynccontextmanager
async def stale_view(
    synapse: Any, user_factory: Any, tmp_path: Path, move: str
) -> AsyncIterator[Stale]:
    host, guest, room, _, now = forked_room(synapse, user_factory, move)
    client = AsyncClient(
        synapse.base_url, host.user_id, config=AsyncClientConfig(encryption_enabled=False)
    )
    client.access_token, client.device_id = host.access_token, host.device_id
    try:
        resp = await client.sync(timeout=0, since=one_event_back(now))
        assert isinstance(resp, SyncResponse)
        db = sqlite3.connect(tmp_path / "bot.sqlite3", isolation_level=None)
        db.execute("CREATE TABLE sync_state (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        snapshot = RoomSnapshot(db, RoomStateCache())
        snapshot.record(resp, full_state=False)
        yield Stale(client, snapshot, db, resp, host, guest, room)
    finally:
        await client.close()


async def test_a_member_who_left_is_not_brought_back(
    synapse: Any, user_factory: Any, tmp_path: Path
) -> None:
    async with stale_view(synapse, user_factory, tmp_path, "leave") as s:
        members = s.client.rooms[s.room]
        # what Synapse and nio give without the repair: she is back (synapse#17430)
        assert s.guest.user_id in members.users
        assert snapshot_members(s.db, s.room)[s.guest.user_id] == "join"
        assert rooms_to_check(s.resp) == {s.room: "state"}

        assert await repair_members(s.client, s.room, s.snapshot)
        assert s.guest.user_id not in members.users
        assert s.host.user_id in members.users
        assert snapshot_members(s.db, s.room) == {s.host.user_id: "join"}
        assert not await repair_members(s.client, s.room, s.snapshot)  # nothing left to correct


async def test_a_member_who_joined_is_not_left_invited(
    synapse: Any, user_factory: Any, tmp_path: Path
) -> None:
    async with stale_view(synapse, user_factory, tmp_path, "join") as s:
        members = s.client.rooms[s.room]
        assert s.guest.user_id in members.invited_users  # the stale invitation
        assert rooms_to_check(s.resp) == {s.room: "state"}

        assert await repair_members(s.client, s.room, s.snapshot)
        assert s.guest.user_id in members.users
        assert s.guest.user_id not in members.invited_users
        assert snapshot_members(s.db, s.room) == {
            s.host.user_id: "join",
            s.guest.user_id: "join",
        }
