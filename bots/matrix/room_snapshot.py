"""The rooms' state, kept in the bot's SQLite file so that a restart resumes with an
incremental sync instead of asking the homeserver for the full state of every room
(issue 15: 20,000 rooms took minutes of Synapse time at each start).

What is kept: the current state events of every joined room (members who left are dropped),
written from each sync response **before** the batch's token can be saved, so the snapshot is
never behind the token. What is rebuilt at start: nio's ``MatrixRoom`` objects (members,
power levels, encryption, name …, built directly: nio's own event parsing validates each
event against a JSON schema, ~0.1 ms each, seconds for a region) and the bot's
``RoomStateCache`` (patient rooms, flags, spaces, creators).

The snapshot is *complete* once a full-state sync has been recorded in it (the first start, or
the first start after an upgrade); until then the sync loop asks for the full state once.
"""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from nio import AsyncClient, MatrixRoom, SyncResponse
from nio.events.room_events import DefaultLevels, PowerLevels

from bots.matrix.room_state import RoomStateCache

_SCHEMA = """
CREATE TABLE IF NOT EXISTS room_state (
    room_id TEXT NOT NULL,
    type TEXT NOT NULL,
    state_key TEXT NOT NULL,
    sender TEXT NOT NULL,
    content TEXT NOT NULL,           -- JSON; ids, names, levels: no clinical content (inv. 3)
    PRIMARY KEY (room_id, type, state_key)
) WITHOUT ROWID;
-- rooms whose members a sync may have left incomplete or wrong (member_repair), until they
-- are read back from the server: a crash or an unanswered read does not leave them so
CREATE TABLE IF NOT EXISTS members_unread (room_id TEXT PRIMARY KEY) WITHOUT ROWID;
"""
_COMPLETE = "room_snapshot_complete"


class RoomSnapshot:
    def __init__(self, conn: sqlite3.Connection, cache: RoomStateCache) -> None:
        self._db = conn
        self._cache = cache
        self._db.executescript(_SCHEMA)

    def complete(self) -> bool:
        row = self._db.execute("SELECT value FROM sync_state WHERE key=?", (_COMPLETE,)).fetchone()
        return bool(row and row[0] == "1")

    # -- written from every sync response --
    def record(self, resp: SyncResponse, *, full_state: bool, unread: Iterable[str] = ()) -> None:
        """The state the response carries; ``full_state``: it is every joined room's whole
        state, the snapshot is replaced by it. ``unread``: rooms whose members are to be read
        back from the server (kept until ``members_read``)."""
        unread = list(unread)
        # the last event of each (room, type, state key) wins; None: a member who left
        latest: dict[tuple[str, str, str], tuple[str, str] | None] = {}
        for room_id, info in resp.rooms.join.items():
            events: Iterable[Any] = [*info.state, *info.timeline.events]
            # no gap: every membership change since the last sync is in the timeline
            gapless = not info.timeline.limited
            for event in events:
                source = getattr(event, "source", None)
                if not isinstance(source, Mapping):
                    continue
                state_key = source.get("state_key")
                event_type = source.get("type")
                content = source.get("content")
                if not (
                    isinstance(state_key, str)
                    and isinstance(event_type, str)
                    and isinstance(content, Mapping)
                ):
                    continue
                key = (room_id, event_type, state_key)
                membership = content.get("membership") if event_type == "m.room.member" else None
                if (
                    membership == "invite"
                    and gapless
                    and self._joined(key, latest, full_state=full_state)
                ):
                    # a joined member is invited only after leaving (the auth rules), and
                    # without a gap her leave would be here: a stale state block (a join that
                    # forked the room, element-hq/synapse#17430). nio keeps her joined; the
                    # snapshot too, so a restart rebuilds the same. After a gap, she may
                    # have left and been invited again in it: the invitation is kept.
                    continue
                if event_type == "m.room.member" and membership not in ("join", "invite"):
                    latest[key] = None
                else:
                    sender = str(source.get("sender", ""))
                    latest[key] = (sender, json.dumps(content, separators=(",", ":")))
        left = list(resp.rooms.leave)
        if not (latest or left or full_state or unread):
            return
        db = self._db
        db.execute("BEGIN")
        try:
            if full_state:
                db.execute("DELETE FROM room_state")
                db.execute("DELETE FROM members_unread")
            for room_id in left:
                db.execute("DELETE FROM room_state WHERE room_id=?", (room_id,))
                db.execute("DELETE FROM members_unread WHERE room_id=?", (room_id,))
            db.executemany(
                "INSERT OR IGNORE INTO members_unread(room_id) VALUES(?)",
                [(room_id,) for room_id in unread],
            )
            db.executemany(
                "DELETE FROM room_state WHERE room_id=? AND type=? AND state_key=?",
                [key for key, value in latest.items() if value is None],
            )
            db.executemany(
                "INSERT INTO room_state(room_id, type, state_key, sender, content) "
                "VALUES(?, ?, ?, ?, ?) ON CONFLICT(room_id, type, state_key) DO UPDATE SET "
                "sender=excluded.sender, content=excluded.content",
                [(*key, *value) for key, value in latest.items() if value is not None],
            )
            if full_state:
                db.execute(
                    "INSERT INTO sync_state(key, value) VALUES(?, '1') "
                    "ON CONFLICT(key) DO UPDATE SET value='1'",
                    (_COMPLETE,),
                )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def members(self, room_ids: Iterable[str]) -> dict[str, dict[str, str] | None]:
        """Each room's members as held (user → ``join`` | ``invite``); None for a room not
        held (a joined room always holds the bot's own join)."""
        out: dict[str, dict[str, str] | None] = {}
        for room_id in room_ids:
            rows = self._db.execute(
                "SELECT state_key, json_extract(content, '$.membership') FROM room_state "
                "WHERE room_id=? AND type='m.room.member'",
                (room_id,),
            ).fetchall()
            out[room_id] = {str(user): str(m) for user, m in rows} if rows else None
        return out

    def unread_members(self) -> set[str]:
        """The rooms whose members are still to be read back (``record``'s ``unread``)."""
        return {str(r) for (r,) in self._db.execute("SELECT room_id FROM members_unread")}

    def members_read(self, room_id: str) -> None:
        self._db.execute("DELETE FROM members_unread WHERE room_id=?", (room_id,))

    def replace_members(self, room_id: str, events: Iterable[Mapping[str, Any]]) -> None:
        """The room's members replaced by ``events`` (raw member events of its whole current
        state, as the server returns it): those joined or invited are kept."""
        rows = [
            (
                room_id,
                "m.room.member",
                str(event["state_key"]),
                str(event.get("sender", "")),
                json.dumps(event["content"], separators=(",", ":")),
            )
            for event in events
            if event["content"].get("membership") in ("join", "invite")
        ]
        db = self._db
        db.execute("BEGIN")
        try:
            db.execute(
                "DELETE FROM room_state WHERE room_id=? AND type='m.room.member'", (room_id,)
            )
            db.executemany(
                "INSERT INTO room_state(room_id, type, state_key, sender, content) "
                "VALUES(?, ?, ?, ?, ?)",
                rows,
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _joined(
        self,
        key: tuple[str, str, str],
        latest: Mapping[tuple[str, str, str], tuple[str, str] | None],
        *,
        full_state: bool,
    ) -> bool:
        """Whether the member of ``key`` is joined: by this response so far, else by the
        snapshot (replaced by a full-state response, so not read for one)."""
        if key in latest:
            value = latest[key]
            raw = value[1] if value is not None else None
        elif full_state:
            raw = None
        else:
            row = self._db.execute(
                "SELECT content FROM room_state WHERE room_id=? AND type=? AND state_key=?", key
            ).fetchone()
            raw = row[0] if row else None
        return raw is not None and json.loads(raw).get("membership") == "join"

    # -- read once at start --
    def restore(self, client: AsyncClient) -> int:
        """nio's rooms and the state cache rebuilt from the snapshot; returns the room count."""
        by_room: dict[str, list[tuple[str, str, str, str]]] = defaultdict(list)
        for room_id, event_type, state_key, sender, content in self._db.execute(
            "SELECT room_id, type, state_key, sender, content FROM room_state"
        ):
            by_room[room_id].append((event_type, state_key, sender, content))
        known_devices = {user for user, _ in client.device_store.items()} if client.olm else set()
        unread = self.unread_members()
        for room_id, rows in by_room.items():
            room = MatrixRoom(room_id, client.user_id, room_id in client.encrypted_rooms)
            members: list[tuple[str, Mapping[str, Any]]] = []
            for event_type, state_key, sender, raw in rows:
                content = json.loads(raw)
                if event_type == "m.room.member":
                    members.append((state_key, content))
                else:
                    _apply(room, event_type, state_key, content)
                    self._cache.observe_raw(room_id, event_type, state_key, sender, content)
            for user_id, content in members:  # after the power levels: nio reads them here
                room.add_member(
                    user_id,
                    _str_or_none(content.get("displayname")),
                    _str_or_none(content.get("avatar_url")),
                    invited=content.get("membership") == "invite",
                )
            # the whole member list is known, unless a read-back is still owed (a lazy
            # sync's new room, a gap): no /joined_members request before the room's first send
            room.members_synced = room_id not in unread
            client.rooms[room_id] = room
            if room.encrypted:
                client.encrypted_rooms.add(room_id)
                if client.olm is not None:
                    # users whose devices nio already stores are tracked; their changes come
                    # in the sync's device lists. Others are queried once.
                    client.olm.tracked_users.update(u for u in room.users if u in known_devices)
                    client.olm.update_tracked_users(room)
        return len(by_room)


def _default_levels(content: Mapping[str, Any]) -> DefaultLevels:
    """nio's defaults for the keys the content leaves out (its schema fills them the same)."""
    levels = DefaultLevels()
    for name in (
        "ban",
        "invite",
        "kick",
        "redact",
        "state_default",
        "events_default",
        "users_default",
    ):
        value = content.get(name)
        if isinstance(value, int):
            setattr(levels, name, value)
    if isinstance(content.get("notifications"), Mapping):
        levels.notifications = dict(content["notifications"])
    return levels


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _apply(room: MatrixRoom, event_type: str, state_key: str, content: Mapping[str, Any]) -> None:
    """What nio's ``MatrixRoom.handle_event`` does with each state event, from its content."""
    if event_type == "m.room.create":
        room.federate = bool(content.get("m.federate", True))
        room.room_version = str(content.get("room_version", "1"))
        room.room_type = _str_or_none(content.get("type"))
    elif event_type == "m.room.encryption":
        room.encrypted = True
    elif event_type == "m.room.power_levels":
        room.power_levels.update(
            PowerLevels(
                _default_levels(content),
                dict(content.get("users") or {}),
                dict(content.get("events") or {}),
            )
        )
    elif event_type == "m.room.name":
        room.name = _str_or_none(content.get("name"))
    elif event_type == "m.room.topic":
        room.topic = _str_or_none(content.get("topic"))
    elif event_type == "m.room.canonical_alias":
        room.canonical_alias = _str_or_none(content.get("alias"))
    elif event_type == "m.room.join_rules":
        room.join_rule = str(content.get("join_rule", room.join_rule))
    elif event_type == "m.room.history_visibility":
        room.history_visibility = str(content.get("history_visibility", "shared"))
    elif event_type == "m.room.guest_access":
        room.guest_access = str(content.get("guest_access", "forbidden"))
    elif event_type == "m.room.avatar":
        room.room_avatar_url = _str_or_none(content.get("url"))
    elif event_type == "m.room.tombstone":
        room.replacement_room = _str_or_none(content.get("replacement_room"))
    elif event_type == "m.space.parent" and "via" in content:
        room.parents.add(state_key)
    elif event_type == "m.space.child" and "via" in content:
        room.children.add(state_key)
