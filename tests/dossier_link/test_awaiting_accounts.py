"""The list of people added to a circle before their first login: durable, looked up once per
person and check, brought in when their account exists, kept when that fails."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from bots.dossier_link.awaiting_accounts import Awaited, AwaitingAccounts


async def test_found_accounts_are_brought_in_each_room_the_others_wait(tmp_path: Path) -> None:
    path = tmp_path / "dossier.sqlite3"
    awaiting = AwaitingAccounts(sqlite3.connect(path))
    awaiting.add("!a:x", "@lea:x", name="Léa", actor="@coord:x")
    awaiting.add("!b:x", "@lea:x", name="Léa", actor=None)
    awaiting.add("!a:x", "@paul:x", name="Paul", actor="@coord:x")
    awaiting.add("!a:x", "@lea:x", name="Léa K.", actor="@other:x")  # again: latest wins
    lookups: list[str] = []
    brought: list[tuple[str, str, str | None]] = []

    async def exists(user: str) -> bool:
        lookups.append(user)
        return user == "@lea:x"

    async def bring(awaited: Awaited) -> None:
        brought.append((awaited.room_id, awaited.name, awaited.actor))
        awaiting.remove(awaited.room_id, awaited.user_id)

    assert await awaiting.check_once(exists, bring) == 2
    assert sorted(lookups) == ["@lea:x", "@paul:x"]  # once per person, not per room
    assert sorted(brought) == [("!a:x", "Léa K.", "@other:x"), ("!b:x", "Léa", None)]
    reopened = AwaitingAccounts(sqlite3.connect(path))  # a restart of the bot
    assert [(a.room_id, a.user_id) for a in reopened.all()] == [("!a:x", "@paul:x")]


async def test_a_failed_lookup_or_bringing_is_tried_again_later(tmp_path: Path) -> None:
    awaiting = AwaitingAccounts(sqlite3.connect(":memory:"))
    awaiting.add("!a:x", "@lea:x", name="Léa", actor=None)
    awaiting.add("!b:x", "@paul:x", name="Paul", actor=None)

    async def homeserver_away(user: str) -> bool:
        raise ConnectionError("injoignable")

    async def dossier_away(awaited: Awaited) -> None:
        raise ConnectionError("injoignable")

    async def found(user: str) -> bool:
        return True

    assert await awaiting.check_once(homeserver_away, dossier_away) == 0
    assert await awaiting.check_once(found, dossier_away) == 0
    assert len(awaiting.all()) == 2  # both still awaited
    assert awaiting.remove("!a:x", "@lea:x") and not awaiting.remove("!a:x", "@lea:x")
