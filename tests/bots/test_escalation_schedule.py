"""The escalation schedule on a real SQLite file with a controlled clock: due reminders,
the limit, acknowledgement, and resumption by a new process (a new store on the same file)."""

from __future__ import annotations

from bots.flags.escalation import Escalation, EscalationStore, Escalator
from bots.matrix.ledger import open_database


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def make(tmp_path, clock, sent):
    db = open_database(tmp_path / "bot.sqlite3")
    esc = Escalator(EscalationStore(db), interval_seconds=600, max_reminders=3, clock=clock)

    async def notify(e: Escalation, n: int) -> str:
        sent.append((e.room_id, n))
        return f"$reminder{n}"

    esc.set_notify(notify)
    return esc, db


async def test_reminders_every_interval_up_to_the_limit(tmp_path):
    clock, sent = Clock(), []
    esc, _ = make(tmp_path, clock, sent)
    esc.start("!r:s", "@a:s", int(clock.now * 1000), "$notice")
    assert await esc.tick() == 0
    clock.now += 599
    assert await esc.tick() == 0
    clock.now += 1
    assert await esc.tick() == 1
    clock.now += 600
    await esc.tick()
    clock.now += 600
    await esc.tick()
    clock.now += 6000
    await esc.tick()
    assert sent == [("!r:s", 1), ("!r:s", 2), ("!r:s", 3)]
    assert esc.store.get("!r:s").state == "exhausted"
    assert esc.is_urgent_notice("!r:s", "$notice") and esc.is_urgent_notice("!r:s", "$reminder2")


async def test_acknowledged_stops_and_restart_resumes(tmp_path):
    clock, sent = Clock(), []
    esc, db = make(tmp_path, clock, sent)
    esc.start("!a:s", "@a:s", int(clock.now * 1000), "$n1")
    esc.start("!b:s", "@a:s", int(clock.now * 1000), "$n2")
    clock.now += 600
    await esc.tick()
    esc.acknowledge("!a:s", "@b:s", int(clock.now * 1000))
    db.close()
    # a new process on the same file
    again, _ = make(tmp_path, clock, sent)
    clock.now += 600
    await again.tick()
    assert sent == [("!a:s", 1), ("!b:s", 1), ("!b:s", 2)]
    assert again.store.get("!a:s").acknowledged_by == "@b:s"
    # long downtime: one reminder on return, not the whole backlog
    clock.now += 6000
    assert await again.tick() == 1
    assert again.store.get("!b:s").next_at_ms == int(clock.now * 1000) + 600_000


async def test_a_stale_escalation_is_dropped_without_a_reminder(tmp_path):
    """The notifier finds the urgency cleared in the room (the bot died before stopping the
    escalation): nothing is sent, the escalation is forgotten, other rooms go on."""
    from bots.flags.escalation import StaleEscalation

    clock, sent = Clock(), []
    db = open_database(tmp_path / "bot.sqlite3")
    esc = Escalator(EscalationStore(db), interval_seconds=600, max_reminders=3, clock=clock)

    async def notify(e: Escalation, n: int) -> str:
        if e.room_id == "!cleared:x":
            raise StaleEscalation(e.room_id)
        sent.append((e.room_id, n))
        return f"$reminder{n}"

    esc.set_notify(notify)
    esc.start("!cleared:x", "@a:x", 1_000_000, "$n1")
    esc.start("!live:x", "@a:x", 1_000_000, "$n2")
    clock.now += 601
    assert await esc.tick() == 1
    assert sent == [("!live:x", 1)]
    assert esc.store.get("!cleared:x") is None and esc.store.get("!live:x") is not None
    clock.now += 601
    await esc.tick()
    assert sent == [("!live:x", 1), ("!live:x", 2)]
