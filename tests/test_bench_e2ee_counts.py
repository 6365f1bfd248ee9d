"""The E2EE load's final count (bench/common/region_e2ee.py): each command answered by exactly
one notice of its kind, told apart by its motif.

A 5-minute run at the issue's size reported 74 « doubled » answers where the bot had sent
none twice: the motifs were ``bench-e2ee 0-3``, ``bench-e2ee 0-33``…, and the notice of one
contains the other. Here the timelines are written by hand (no server): what the count must
say for them is known.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from bench.common.region_e2ee import ACK, CLEAR, URGENT, E2eeLoad, Member, Seen, motif

BOT, SHARD = "@cercle-bot:x", "@cercle-bot-2:x"  # the front, the second account
ROOM = "!patient:x"


def notice(body: str, n: int, sender: str = BOT) -> Seen:
    content = {"msgtype": "m.notice", "body": body}
    return Seen(f"$e{n}", sender, content, 0.0, 0)


def load_with(cycles: list[int], answered: dict[int, int], bot: str = BOT) -> E2eeLoad:
    """Room 0, flag cycles numbered ``cycles``; cycle n answered ``answered[n]`` times by
    ``bot``, one of the two accounts of the bot."""
    load = E2eeLoad("http://127.0.0.1:9", (BOT, SHARD), Path("."), http=None)  # type: ignore[arg-type]
    me, other = (Member(SimpleNamespace(user_id=u), load.results) for u in ("@a:x", "@b:x"))
    load.members, load.rooms = [me, other], [ROOM, "!other:x"]
    count = 0
    for n in cycles:
        m = motif(0, n)
        load.commands[(0, URGENT, m)] += 1
        load.commands[(0, ACK, m)] += 1
        load.commands[(0, CLEAR, "")] += 1
        for _ in range(answered.get(n, 1)):
            count += 3
            me.timeline[ROOM].append(notice(f"🔴 {URGENT} par A.\nMotif : {m}", count, bot))
            other.timeline[ROOM].append(notice(f"👀 {ACK} par B.\nMotif : {m}", count + 1, bot))
            me.timeline[ROOM].append(notice(f"✅ Signalement {CLEAR} par A.", count + 2, bot))
    return load


def summary_after_settle(load: E2eeLoad) -> dict[str, Any]:
    asyncio.run(load.settle(0.0))
    return load.summary(1.0)


def test_a_motif_that_contains_another_is_not_a_double() -> None:
    figures = summary_after_settle(load_with([3, 33, 333], {}))
    assert (figures["lost"], figures["doubled"]) == (0, 0)


def test_a_notice_sent_twice_is_counted_as_doubled_by_kind() -> None:
    figures = summary_after_settle(load_with([3, 33], {33: 2}))
    assert figures["doubled"] == 3
    assert figures["doubled_by_kind"] == {"urgent": 1, "ack": 1, "clear": 1}
    assert figures["lost"] == 0


def test_an_unanswered_command_is_counted_as_lost_by_kind() -> None:
    figures = summary_after_settle(load_with([3, 33], {3: 0}))
    assert figures["lost_by_kind"] == {"urgent": 1, "ack": 1, "clear": 1}
    assert figures["doubled"] == 0


def test_answers_from_the_account_the_room_lives_with_count() -> None:
    # bot.shards (the region profile has two): the room's answers come from cercle-bot-2
    figures = summary_after_settle(load_with([3, 33], {}, bot=SHARD))
    assert (figures["lost"], figures["doubled"]) == (0, 0)
