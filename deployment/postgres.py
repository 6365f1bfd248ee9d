"""PostgreSQL databases of a deployment, created when missing (region profile).

Synapse needs its database in UTF8 with the C collation, created from ``template0``
(Synapse's docs/postgres.md); the dossier's is created the same way (its ordering never
depends on the collation). Creating needs a role allowed to (``postgres`` on this machine).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import psycopg2
from psycopg2 import sql

from deployment.dependencies import PostgresDatabase


class DatabaseSetupError(Exception):
    """The server cannot be reached or refuses (French message, no secrets)."""


def _maintenance_connection(*, host: str, port: int, user: str, password: str) -> Any:
    """A connection to the server's ``postgres`` database (where databases are created and
    looked up), given up after 10 s."""
    return psycopg2.connect(
        host=host,
        port=port,
        user=user,
        password=password or None,
        dbname="postgres",
        connect_timeout=10,
    )


def ensure_database(host: str, port: int, user: str, password: str, name: str) -> bool:
    """Create ``name`` (UTF8, C collation, template0) if missing; True when created."""
    try:
        connection = _maintenance_connection(host=host, port=port, user=user, password=password)
    except psycopg2.OperationalError as exc:
        raise DatabaseSetupError(
            f"PostgreSQL injoignable sur {host}:{port} (utilisateur {user}) : "
            "démarrez le serveur ou corrigez homeserver.database"
        ) from exc
    connection.autocommit = True  # CREATE DATABASE cannot run in a transaction
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cursor.fetchone() is not None:
                return False
            cursor.execute(
                sql.SQL(
                    "CREATE DATABASE {} ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' "
                    "TEMPLATE template0"
                ).format(sql.Identifier(name))
            )
            return True
    except psycopg2.errors.DuplicateDatabase:
        return False  # created meanwhile by another start
    except psycopg2.Error as exc:
        raise DatabaseSetupError(
            f"création de la base {name} refusée par PostgreSQL ({exc.pgcode})"
        ) from exc
    finally:
        connection.close()


def check_collation(host: str, port: int, user: str, password: str, name: str) -> str | None:
    """A French problem when ``name`` exists without the C collation Synapse needs."""
    connection = _maintenance_connection(host=host, port=port, user=user, password=password)
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT datcollate, datctype FROM pg_database WHERE datname = %s", (name,)
            )
            row = cursor.fetchone()
    finally:
        connection.close()
    if row is not None and (row[0] != "C" or row[1] != "C"):
        return (
            f"la base {name} existe avec la collation {row[0]}/{row[1]} ; Synapse demande C/C "
            "(recréez-la avec LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0)"
        )
    return None


def ensure_databases(databases: Iterable[PostgresDatabase]) -> list[str]:
    """Each database created when missing; an existing one of Synapse's without the C
    collation refused (``DatabaseSetupError``, in French). The names created, in order:
    what `cercle up` does before starting, and a restore before placing its dumps."""
    created: list[str] = []
    for db in databases:
        where = (db.host, db.port, db.user, db.password, db.name)
        if ensure_database(*where):
            created.append(db.name)
        elif db.synapse:
            problem = check_collation(*where)
            if problem:
                raise DatabaseSetupError(problem)
    return created
