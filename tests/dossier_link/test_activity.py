"""The bot's activity counts (issue 18): each message counted once across replays, per room
and Paris day; totals queued in the real durable outbox only when they changed."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from bots.dossier_link.activity import ACTIVITY, Activity, flag_ref, paris_day
from bots.outbox import Outbox, open_outbox_database


def ms(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp() * 1000)  # type: ignore[misc]


def activity(tmp_path: Path) -> tuple[Activity, Outbox]:
    conn = open_outbox_database(tmp_path / "bot.sqlite3")
    outbox = Outbox(conn, tmp_path / "blobs")
    return Activity(conn, outbox), outbox


def queued(outbox: Outbox) -> list[dict[str, object]]:
    return [
        dict(i.payload)
        for i in outbox.due(at_ms=ms(2030, 1, 1), limit=500)
        if i.operation == ACTIVITY
    ]


def test_each_message_counts_once_per_paris_day(tmp_path: Path) -> None:
    act, outbox = activity(tmp_path)
    assert act.message("!r", "$1", ms(2026, 3, 1, 22, 30))  # 23:30 in Paris: 1 March
    assert act.message("!r", "$2", ms(2026, 3, 1, 23, 30))  # 00:30 in Paris: 2 March
    assert act.message("!r", "$3", ms(2026, 3, 2, 8, 0))
    assert not act.message("!r", "$3", ms(2026, 3, 2, 8, 0))  # replayed after a crash
    assert act.flush(now_ms=ms(2026, 3, 2, 9)) == 2
    totals = {(p["room_id"], p["day"]): p["count"] for p in queued(outbox)}
    assert totals == {("!r", "2026-03-01"): 1, ("!r", "2026-03-02"): 2}
    assert act.flush(now_ms=ms(2026, 3, 2, 9)) == 0  # nothing changed: nothing queued
    act.message("!r", "$4", ms(2026, 3, 2, 9, 0))
    assert act.flush(now_ms=ms(2026, 3, 2, 10)) == 1
    latest = [p for p in queued(outbox) if p["day"] == "2026-03-02"]
    assert sorted(p["count"] for p in latest) == [2, 3]  # the dossier keeps the largest


def test_remembered_ids_are_forgotten_after_a_few_days(tmp_path: Path) -> None:
    act, _ = activity(tmp_path)
    act.message("!r", "$old", ms(2026, 3, 1, 8))
    act.flush(now_ms=ms(2026, 3, 10, 8))
    left = act.db.execute("SELECT count(*) FROM activity_seen").fetchone()[0]
    assert left == 0


def test_a_flag_and_its_acknowledgement_share_the_flags_identity(tmp_path: Path) -> None:
    act, outbox = activity(tmp_path)
    act.flag_raised("!r", "urgent", by="@a:t", at_ms=1000)
    act.flag_raised("!r", "urgent", by="@a:t", at_ms=1000)  # replay: one entry
    act.flag_acknowledged("!r", by="@b:t", at_ms=5000, flag_by="@a:t", flag_at_ms=1000)
    act.exported("!r", event_id="$e", at_ms=7000)
    kinds = [(p["kind"], p.get("ref"), p.get("of_ref")) for p in queued(outbox)]
    ref = flag_ref("!r", "@a:t", 1000)
    assert kinds[0] == ("signalement", ref, None)
    assert kinds[1][0] == "prise_en_compte" and kinds[1][2] == ref
    assert kinds[2] == ("export", "$e", None)
    assert len(kinds) == 3
    assert paris_day(ms(2026, 7, 1, 22, 30)) == "2026-07-02"  # summer time
