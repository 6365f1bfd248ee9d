"""The same deployment on PostgreSQL: a fresh database on 127.0.0.1:5432 (user postgres,
trust), the configuration rendered with `homeserver.database.engine: postgres`, a real
Synapse started by `homeserver.process`, then an account and an encrypted room on it."""

from __future__ import annotations

import json
import secrets
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest
from psycopg2 import sql
from support import SynapseUnderTest, start_synapse

from homeserver.process import is_healthy

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

POSTGRES = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}


def _admin_connection() -> Any:
    connection = psycopg2.connect(dbname="postgres", **POSTGRES)
    connection.autocommit = True  # CREATE/DROP DATABASE cannot run in a transaction
    return connection


@pytest.fixture
def fresh_database() -> Iterator[str]:
    name = f"cercle_test_{secrets.token_hex(4)}"
    connection = _admin_connection()
    try:
        with connection.cursor() as cursor:
            # What Synapse requires of its database: C collation, from template0.
            cursor.execute(
                sql.SQL(
                    "CREATE DATABASE {} ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' "
                    "TEMPLATE template0"
                ).format(sql.Identifier(name))
            )
        yield name
    finally:
        with connection.cursor() as cursor:
            cursor.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
        connection.close()


def _call(hs: SynapseUnderTest, method: str, path: str, token: str, body: Any = None) -> Any:
    request = urllib.request.Request(
        f"{hs.base_url}/_matrix/client/v3{path}",
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method=method,
    )
    with urllib.request.urlopen(request, timeout=30) as resp:
        return json.loads(resp.read())


def test_synapse_runs_on_a_fresh_postgres_database(fresh_database: str, tmp_path: Path) -> None:
    hs = start_synapse(
        tmp_path / "var",
        extra={
            "homeserver": {"database": {"engine": "postgres", "name": fresh_database, **POSTGRES}}
        },
    )
    try:
        rendered = hs.process.rendered.config_path.read_text(encoding="utf-8")
        assert "name: psycopg2" in rendered
        assert f'dbname: "{fresh_database}"' in rendered
        assert is_healthy(hs.base_url)

        user = hs.register("pg.infirmiere", "Mot-de-passe-pg-1")
        room = _call(hs, "POST", "/createRoom", user["access_token"], {"name": "Tournée"})
        room_id = urllib.parse.quote(room["room_id"])
        encryption = _call(
            hs, "GET", f"/rooms/{room_id}/state/m.room.encryption/", user["access_token"]
        )
        assert encryption == {"algorithm": "m.megolm.v1.aes-sha2"}

        # The account and the room really live in this PostgreSQL database.
        connection = psycopg2.connect(dbname=fresh_database, **POSTGRES)
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT name FROM users WHERE name = %s", (user["user_id"],))
                assert cursor.fetchall() == [(user["user_id"],)]
                cursor.execute("SELECT room_id FROM rooms WHERE room_id = %s", (room["room_id"],))
                assert cursor.fetchall() == [(room["room_id"],)]
        finally:
            connection.close()
    finally:
        hs.stop()
    assert not is_healthy(hs.base_url)
