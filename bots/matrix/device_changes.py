"""Device-list « changes » that are only members sent again by a lazy sync (issue 15).

The bot's incremental syncs lazy-load members. Synapse then sends a speaker's member event
in the room's ``state`` block again whenever it is not the one it last sent to this device
*for that user*: it remembers one event per user (not per room) and only the last 100
users. A nurse who writes in two of her patients' rooms in turn, or any speaker once a bot
hears more than 100 people, is sent again at nearly every message. Synapse counts every
member event of a response as someone newly met and names them in ``device_lists.changed``
(``SyncResultBuilder.calculate_user_changes``), so nio queried their keys before the bot
handled the message: one ``/keys/query`` round trip ahead of each command, for a device
list that did not change (tests/bots/test_device_changes.py: 6 queries for 6 messages).

A user named as changed whose every member event in the response is in a ``state`` block
and says the membership the bot already held is therefore not queried at once: the query
is **deferred, not dropped**, and made for all such users together with the first /sync
answer once ``flush_seconds`` have passed (an idle bot's long-poll answers at least every
30 s). A real change that comes in the same response (a new device, and a
message within the same sync) is learnt then. A user named without a member event in the
response, with one in the timeline (a membership that happened), or whose membership
differs from what was held, is queried at once, as before.

Two cases where the coincidence is the rule, not the exception, are never deferred (found by
hand: a second device logged in while the bot was stopped wrote a command, and could not read
the answer):
- the first sync after a start: it covers the whole time the bot was away, when a device may
  have been added by someone who also wrote;
- a user whose device the bot does not know sent it an Olm message in the response (a room
  key, before the first message of a new device): their device list did change
  (``unknown_senders``), so their keys are queried before the batch is handled.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping

from nio import DummyEvent, OlmEvent, RoomKeyEvent, RoomMemberEvent, SyncResponse


def lazy_resends(resp: SyncResponse, before: Mapping[str, Mapping[str, str] | None]) -> set[str]:
    """The users of ``device_lists.changed`` named only for a member event sent again
    (pure). ``before``: each joined room's members as held before the response (user →
    ``join`` | ``invite``; None: a room not held)."""
    changed = set(resp.device_list.changed)
    resent: set[str] = set()
    real: set[str] = set()
    for room_id, info in resp.rooms.join.items():
        held = before.get(room_id)
        for event in info.timeline.events:
            if isinstance(event, RoomMemberEvent) and event.state_key in changed:
                real.add(event.state_key)
        for event in info.state:
            if not isinstance(event, RoomMemberEvent) or event.state_key not in changed:
                continue
            if held is not None and held.get(event.state_key) == event.membership:
                resent.add(event.state_key)
            else:
                real.add(event.state_key)
    return resent - real


def unknown_senders(
    to_device: Iterable[object], known_keys: Callable[[str], Iterable[str]]
) -> set[str]:
    """The users who sent an Olm message (a room key, a dummy, one that could not be
    decrypted) from a Curve25519 key none of their known devices has (pure). ``known_keys``:
    a user's devices' Curve25519 keys as held. A key request is not such a message: its
    ``sender_key`` names the session's creator, not the device asking."""
    senders: set[str] = set()
    for event in to_device:
        if isinstance(event, (OlmEvent, DummyEvent, RoomKeyEvent)) and (
            event.sender_key not in set(known_keys(event.sender))
        ):
            senders.add(event.sender)
    return senders


class DeferredKeyQueries:
    """The users whose key query waits (``defer``), handed back together once the oldest
    has waited ``flush_seconds`` (``due``)."""

    def __init__(
        self, flush_seconds: float = 30.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.flush_seconds = flush_seconds
        self._clock = clock
        self._users: set[str] = set()
        self._since = 0.0

    def defer(self, users: Iterable[str]) -> None:
        users = set(users)
        if users and not self._users:
            self._since = self._clock()
        self._users |= users

    def due(self) -> set[str]:
        if not self._users or self._clock() - self._since < self.flush_seconds:
            return set()
        users, self._users = self._users, set()
        return users

    def release(self, users: Iterable[str]) -> None:
        """No longer waiting: these users' keys are being queried now."""
        self._users.difference_update(users)

    @property
    def waiting(self) -> frozenset[str]:
        return frozenset(self._users)
