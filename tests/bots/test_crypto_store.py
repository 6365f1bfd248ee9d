"""The bot's crypto store (nio's, through the session's client configuration): handling a
sync response writes nothing to it unless a room became encrypted — that write sat between
each command and its reply (issue 15)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from nio import AsyncClient, SyncResponse
from support import one_room_sync

from bots.matrix.session import client_config

ROOM = "!salon:cercle.test"
BOT = "@bot:cercle.test"


def response(token: str, *timeline: dict[str, Any]) -> SyncResponse:
    return one_room_sync(ROOM, token, *timeline)


def event(event_type: str, content: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "type": event_type,
        "event_id": f"${event_type}{len(content)}",
        "sender": "@alice:cercle.test",
        "origin_server_ts": 1,
        "content": content,
        **extra,
    }


@pytest.fixture
async def client(tmp_path: Path) -> Any:
    client = AsyncClient(
        "http://localhost",
        BOT,
        device_id="CERCLETEST",
        store_path=str(tmp_path),
        config=client_config("clé de test", 2.0),
    )
    client.restore_login(BOT, "CERCLETEST", "jeton")  # loads the store (account created)
    yield client
    await client.close()


async def test_a_sync_with_no_newly_encrypted_room_writes_nothing(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    statements: list[str] = []
    database = client.store.database
    run = database.execute_sql

    def counted(sql: str, *args: Any, **kwargs: Any) -> Any:
        statements.append(sql)
        return run(sql, *args, **kwargs)

    monkeypatch.setattr(database, "execute_sql", counted)
    await client.receive_response(
        response("s1", event("m.room.message", {"msgtype": "m.text", "body": "!aide vu"}))
    )
    assert statements == []

    # a room that becomes encrypted is still saved, and known again after a restart
    encryption = event("m.room.encryption", {"algorithm": "m.megolm.v1.aes-sha2"}, state_key="")
    await client.receive_response(response("s2", encryption))
    assert statements
    assert ROOM in client.store.load_encrypted_rooms()
