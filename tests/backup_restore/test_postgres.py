"""The PostgreSQL profile: Synapse's database is dumped with pg_dump while in use, and
restored with pg_restore into an empty database only."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
from psycopg2 import sql

from backup.crypto import ArchiveError, load_private_key
from backup.restore import restore_archive
from backup.snapshot import make_backup
from deployment.profile import Profile, load_profile
from tests.backup_restore.conftest import Deployment

pytestmark = [pytest.mark.postgres]

POSTGRES = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}


def admin() -> psycopg2.extensions.connection:
    connection = psycopg2.connect(dbname="postgres", **POSTGRES)
    connection.autocommit = True
    return connection


@pytest.fixture
def databases() -> Iterator[tuple[str, str]]:
    names = (f"cercle_bk_{secrets.token_hex(4)}", f"cercle_rs_{secrets.token_hex(4)}")
    connection = admin()
    with connection.cursor() as cursor:
        for name in names:
            cursor.execute(
                sql.SQL(
                    "CREATE DATABASE {} ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' "
                    "TEMPLATE template0"
                ).format(sql.Identifier(name))
            )
    try:
        yield names
    finally:
        with connection.cursor() as cursor:
            for name in names:
                cursor.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )
        connection.close()


def on_postgres(var: Path, backups: Path, database: str) -> Profile:
    return load_profile(
        env={},
        extra={
            "var_dir": str(var),
            "backup": {"directory": str(backups)},
            "homeserver": {"database": {"engine": "postgres", "name": database}},
        },
    )


def rows(database: str) -> list[tuple]:
    with psycopg2.connect(dbname=database, **POSTGRES) as connection, connection.cursor() as cur:
        cur.execute("SELECT id, body FROM events ORDER BY id")
        return cur.fetchall()


def test_pg_dump_then_pg_restore_into_an_empty_database(
    deployment: Deployment, databases: tuple[str, str], tmp_path: Path
) -> None:
    source, target = databases
    with psycopg2.connect(dbname=source, **POSTGRES) as connection, connection.cursor() as cur:
        cur.execute("CREATE TABLE events (id serial PRIMARY KEY, body text)")
        cur.executemany("INSERT INTO events (body) VALUES (%s)", [(f"e{i}",) for i in range(500)])
    profile = on_postgres(deployment.var, deployment.backups, source)
    result = make_backup(profile, deployment.backups, lambda _: None)
    store = next(s for s in result.manifest["stores"] if s["name"] == "synapse-db")
    assert store["kind"] == "postgres" and store["entries"][0]["size"] > 0

    key = load_private_key(deployment.key_file)
    clone = on_postgres(tmp_path / "clone" / "var", deployment.backups, target)
    restore_archive(clone, result.archive, key, lambda _: None)
    assert rows(target) == rows(source)

    again = on_postgres(tmp_path / "again" / "var", deployment.backups, target)
    with pytest.raises(ArchiveError, match="n'est pas vide"):
        restore_archive(again, result.archive, key, lambda _: None)


def test_a_restore_on_a_fresh_server_creates_the_database_as_cercle_up_does(
    deployment: Deployment, databases: tuple[str, str], tmp_path: Path
) -> None:
    """A new machine's PostgreSQL has no database yet: the restore used to refuse (« créez-la
    vide ») without saying which, nor that Synapse needs the C collation. It now creates it
    as `cercle up` would, says so, and restores into it."""
    source, _ = databases
    with psycopg2.connect(dbname=source, **POSTGRES) as connection, connection.cursor() as cur:
        cur.execute("CREATE TABLE events (id serial PRIMARY KEY, body text)")
        cur.executemany("INSERT INTO events (body) VALUES (%s)", [(f"e{i}",) for i in range(50)])
    archive = make_backup(
        on_postgres(deployment.var, deployment.backups, source), deployment.backups, lambda _: None
    ).archive
    missing = f"cercle_new_{secrets.token_hex(4)}"
    said: list[str] = []
    try:
        clone = on_postgres(tmp_path / "clone" / "var", deployment.backups, missing)
        restore_archive(clone, archive, load_private_key(deployment.key_file), said.append)
        assert rows(missing) == rows(source)
        assert f"Base PostgreSQL {missing} créée (vide) pour la restauration" in said
        connection = admin()
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT datcollate, datctype FROM pg_database WHERE datname = %s", (missing,)
            )
            assert cursor.fetchone() == ("C", "C")
        connection.close()
    finally:
        connection = admin()
        with connection.cursor() as cursor:
            cursor.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(missing))
            )
        connection.close()
