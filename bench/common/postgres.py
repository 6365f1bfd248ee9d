"""The PostgreSQL server of a bench run with a ``postgresql…`` URL: databases of the bench's
own, created beside that URL's and dropped afterwards, through the server's ``postgres``
database (autocommit: CREATE and DROP DATABASE refuse a transaction)."""

from __future__ import annotations

import psycopg2
from psycopg2 import sql
from sqlalchemy import make_url


class Server:
    """The server ``base_url`` names; ``url(name)`` is the URL of its database ``name``."""

    def __init__(self, base_url: str) -> None:
        self.base = make_url(base_url)
        admin = self.base.set(drivername="postgresql", database="postgres")
        self._dsn = admin.render_as_string(hide_password=False)

    def url(self, database: str) -> str:
        return self.base.set(database=database).render_as_string(hide_password=False)

    def execute(self, statement: str) -> None:
        connection = psycopg2.connect(self._dsn)
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                cursor.execute(statement)
        finally:
            connection.close()

    def exists(self, database: str) -> bool:
        connection = psycopg2.connect(self._dsn)
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
                return cursor.fetchone() is not None
        finally:
            connection.close()

    def drop(self, databases: list[str]) -> None:
        """Drop them, even with sessions still open on them."""
        connection = psycopg2.connect(self._dsn)
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                for name in databases:
                    cursor.execute(
                        sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                            sql.Identifier(name)
                        )
                    )
        finally:
            connection.close()
