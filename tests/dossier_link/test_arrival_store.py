"""Issue 11: what the bot remembers of each newcomer, and the pure rules deciding what their
history still needs (bundle to new devices, transcript after the grace, once)."""

from __future__ import annotations

import sqlite3

from bots.dossier_link.arrival_store import ArrivalStore, history_way, transcript_due, watching

ROOM, USER = "!r:cercle.test", "@ide:cercle.test"
MINUTE = 60_000


def store() -> ArrivalStore:
    return ArrivalStore(sqlite3.connect(":memory:", isolation_level=None))


def test_fallback_only_after_the_grace_and_without_any_device() -> None:
    s = store()
    s.invited(ROOM, USER, actor="@coord:cercle.test", by_bot=True, at_ms=0)
    arrival = s.get(ROOM, USER)
    assert arrival is not None and not transcript_due(
        arrival, 10 * MINUTE, 3 * MINUTE
    )  # not joined
    s.joined(ROOM, USER, MINUTE)
    arrival = s.get(ROOM, USER)
    assert arrival is not None
    assert not transcript_due(arrival, 3 * MINUTE, 3 * MINUTE)
    assert transcript_due(arrival, 4 * MINUTE, 3 * MINUTE)
    assert [a.user_id for a in s.awaiting_history()] == [USER]
    s.devices_sent(ROOM, USER, ["DEV1"], 2 * MINUTE)
    arrival = s.get(ROOM, USER)
    assert arrival is not None and arrival.devices == {"DEV1"}
    assert not transcript_due(arrival, 10 * MINUTE, 3 * MINUTE)
    assert s.awaiting_history() == []


def test_transcript_once_per_person_and_room_and_again_after_a_failure() -> None:
    s = store()
    s.invited(ROOM, USER, actor=None, by_bot=False, at_ms=0)
    assert s.transcript_sent(ROOM, USER, 1) is True
    assert s.transcript_sent(ROOM, USER, 2) is False
    s.transcript_failed(ROOM, USER)
    assert s.transcript_sent(ROOM, USER, 3) is True
    assert s.offered(ROOM, USER, 4) is False  # already sent: no offer


def test_watch_window_and_a_new_invitation_after_leaving() -> None:
    s = store()
    s.invited(ROOM, USER, actor=None, by_bot=True, at_ms=0)
    s.joined(ROOM, USER, MINUTE)
    s.devices_sent(ROOM, USER, ["A"], MINUTE)
    arrival = s.get(ROOM, USER)
    assert arrival is not None
    assert watching(arrival, 2 * MINUTE, 60 * MINUTE)
    assert not watching(arrival, 62 * MINUTE, 60 * MINUTE)
    s.left(ROOM, USER, 5 * MINUTE)
    left = s.get(ROOM, USER)
    assert left is not None and not watching(left, 6 * MINUTE, 60 * MINUTE)
    assert s.of_user(USER) == []
    s.invited(ROOM, USER, actor=None, by_bot=True, at_ms=10 * MINUTE)
    again = s.get(ROOM, USER)
    assert again is not None and again.devices == frozenset() and again.joined_at_ms is None
    # an invitation seen twice keeps the first one
    s.invited(ROOM, USER, actor="@autre:cercle.test", by_bot=False, at_ms=11 * MINUTE)
    same = s.get(ROOM, USER)
    assert same is not None and same.by_bot and same.invited_at_ms == 10 * MINUTE


def test_the_way_told_to_the_inviter() -> None:
    s = store()
    s.invited(ROOM, USER, actor=None, by_bot=True, at_ms=0)
    arrival = s.get(ROOM, USER)
    assert arrival is not None
    assert "transcription PDF 3 min après son arrivée" in history_way(arrival, 3)
    s.devices_sent(ROOM, USER, ["A", "B"], 1)
    arrival = s.get(ROOM, USER)
    assert arrival is not None
    assert history_way(arrival, 3) == "clés de l'historique partagées (MSC4268) avec 2 appareils"
