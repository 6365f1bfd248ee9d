"""The dossier link's first start on an existing deployment (real dossier service): events
older than a day at the bot's very first start are applied quietly (no notice), recent ones
are announced; once the bot has a position, everything after it is announced."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bots.dossier_client import DossierClient
from bots.dossier_link.feed import FeedConsumer, event_time
from bots.dossier_link.store import SyncStore
from bots.outbox import open_outbox_database
from tests.dossier_link.dossier_support import (
    COORD,
    NURSE,
    coordination_task,
    file_with_tasks,
    professional,
)
from tests.dossier_link.test_e2e_sync import env, eventually  # noqa: F401


class Seen:
    def __init__(self) -> None:
        self.announced: list[int] = []
        self.quiet: list[int] = []

    async def announce(self, event: Mapping[str, Any]) -> None:
        self.announced.append(int(event["seq"]))

    async def apply_quietly(self, event: Mapping[str, Any]) -> None:
        self.quiet.append(int(event["seq"]))

    def consumer(self, client: DossierClient, store: SyncStore, now: datetime) -> FeedConsumer:
        return FeedConsumer(
            client, store, self.announce, quiet_handler=self.apply_quietly, clock=lambda: now
        )


def test_event_time_reads_iso_and_tolerates_garbage() -> None:
    assert event_time({"at": "2026-11-25T10:00:00Z"}) == datetime(2026, 11, 25, 10, tzinfo=UTC)
    assert event_time({"at": "2026-11-25T10:00:00"}) == datetime(2026, 11, 25, 10, tzinfo=UTC)
    assert event_time({"at": "hier"}) is None and event_time({}) is None


async def test_first_start_quiets_old_events_then_announces_what_follows(
    dossier: DossierClient, tmp_path: Path
) -> None:
    pid, events = await file_with_tasks(dossier, [f"ancienne {n}" for n in range(3)])
    old = [e["seq"] for e in events]
    # the file, the nurse added to its circle, three tasks
    assert len(old) == 5 and all(event_time(e) for e in events)
    two_days_later = datetime.now(UTC) + timedelta(days=2)

    # an existing deployment: the bot starts for the first time two days after these
    store = SyncStore(open_outbox_database(tmp_path / "sync.sqlite3"))
    seen = Seen()
    first = seen.consumer(dossier, store, two_days_later)
    assert first.first_start
    assert await first.run_once() == len(old)
    assert (seen.quiet, seen.announced) == (old, [])  # applied, not announced
    assert store.cursor() == old[-1]

    # the next start has a position: even "old" events after it are announced
    await coordination_task(dossier, pid, "nouvelle", assignee=NURSE, actor=COORD, key="new")
    again = seen.consumer(
        dossier, SyncStore(open_outbox_database(tmp_path / "sync.sqlite3")), two_days_later
    )
    assert not again.first_start
    assert await again.run_once() == 1
    assert seen.announced == [old[-1] + 1] and seen.quiet == old

    # a bot new together with the dossier: its first events are recent, all announced
    fresh = Seen()
    other = fresh.consumer(
        dossier, SyncStore(open_outbox_database(tmp_path / "b.sqlite3")), datetime.now(UTC)
    )
    assert await other.run_once() == len(old) + 1
    assert fresh.quiet == [] and len(fresh.announced) == len(old) + 1


# ------------------------------------------------------------------ with the real bot
@pytest.mark.integration
async def test_bot_first_start_on_existing_deployment_applies_old_events_quietly(env: Any) -> None:  # noqa: F811
    """The bot starts its dossier sync on a dossier whose events are two days old: the care
    circle still becomes the room's membership, no old notice is posted; a new event is."""
    nurse, gp = await env.make_pro(), await env.make_pro()
    room_id, pid = await env.patient_room(nurse, "Suivi ancien")
    await env.runner.stop()
    gp_member = professional(gp.user_id, "Dr Ancien", "Médecin généraliste")
    await env.dossier.add_circle_member(pid, gp_member, actor=nurse.user_id, key="old-gp")
    await coordination_task(
        env.dossier, pid, "Bilan ancien", assignee=nurse.user_id, key="old-task"
    )
    # two days pass; the bot had never run the sync with this data (no position in the feed)
    db_url = env.server.config.database_url
    with sqlite3.connect(db_url.split("///", 1)[1]) as dossier_db:
        dossier_db.execute("UPDATE outbox_events SET at = datetime(at, '-2 days')")
    with sqlite3.connect(env.runner.config.data_dir / "dossier.sqlite3") as bot_db:
        bot_db.execute("DELETE FROM feed_cursor")
    start = nurse.mark(room_id)
    app = await env.runner.start()
    await gp.wait_member(room_id, gp.user_id)  # the membership side effect was applied
    feed = app.dossier_sync.feed
    assert feed.first_start
    await eventually(lambda: _async(feed.quieted), lambda n: n >= 2, what="événements anciens lus")
    await coordination_task(
        env.dossier, pid, "Bilan nouveau", assignee=nurse.user_id, key="new-task"
    )
    await nurse.wait_notice(room_id, "Nouvelle tâche « Bilan nouveau »", start=start)
    bodies = [b for b in nurse.notices(room_id)]
    assert not [b for b in bodies if "Bilan ancien" in b]
    assert not [b for b in bodies if "Dr Ancien rejoint le cercle de soins" in b]


async def _async(value: Any) -> Any:
    return value
