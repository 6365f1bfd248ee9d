"""The planner's statistics of Cercle's PostgreSQL databases, when the server does not gather
them (its ``autovacuum`` is off).

PostgreSQL plans each query from statistics that autovacuum gathers as tables grow. With it
off (this machine's server, session 12) they are never gathered: Synapse's tables grew from
empty to tens of thousands of rows with the estimates of empty tables, its auth-chain query
took 1.2 s instead of 24 ms, and rooms were made at 1.9 a second instead of 5.3 — one
``ANALYZE`` made the difference. Turning autovacuum on is the operator's remedy (it also
reclaims dead rows, which this does not); until then Cercle says so at start, in
``cercle status`` and in its log, and runs ``ANALYZE`` on its own databases every 10 minutes.
"""

from __future__ import annotations

import logging
import threading
import time

import psycopg2

from deployment.dependencies import PostgresDatabase

log = logging.getLogger(__name__)

ANALYZE_EVERY_SECONDS = 600.0


def _connect(db: PostgresDatabase, name: str) -> psycopg2.extensions.connection:
    return psycopg2.connect(
        host=db.host,
        port=db.port,
        user=db.user,
        password=db.password or None,
        dbname=name,
        connect_timeout=5,
    )


def autovacuum_on(db: PostgresDatabase) -> bool | None:
    """The server's ``autovacuum`` setting; None when it cannot be read (not answering)."""
    try:
        connection = _connect(db, "postgres")
    except psycopg2.Error:
        return None
    try:
        with connection.cursor() as cursor:
            cursor.execute("SHOW autovacuum")
            row = cursor.fetchone()
    finally:
        connection.close()
    return row is not None and row[0] == "on"


def autovacuum_warning(db: PostgresDatabase) -> str:
    """French, for an operator: what is off, what it costs, what Cercle does, what to do."""
    return (
        f"autovacuum est désactivé sur PostgreSQL {db.host}:{db.port} : ses statistiques ne "
        "sont jamais mises à jour et Synapse ralentit à mesure que ses tables grandissent. "
        f"Cercle lance ANALYZE sur ses bases toutes les {ANALYZE_EVERY_SECONDS / 60:.0f} min, "
        "mais ne récupère pas les lignes mortes : activez-le (« ALTER SYSTEM SET autovacuum = "
        "on; SELECT pg_reload_conf(); » en superutilisateur)"
    )


def autovacuum_warnings(databases: list[PostgresDatabase]) -> list[str]:
    """One warning per server of ``databases`` whose autovacuum is off."""
    seen: set[tuple[str, int]] = set()
    warnings = []
    for db in databases:
        if (db.host, db.port) in seen:
            continue
        seen.add((db.host, db.port))
        if autovacuum_on(db) is False:
            warnings.append(autovacuum_warning(db))
    return warnings


def analyze(db: PostgresDatabase) -> float:
    """``ANALYZE`` of the whole database ``db.name``; its duration in seconds."""
    began = time.monotonic()
    connection = _connect(db, db.name)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    finally:
        connection.close()
    return time.monotonic() - began


class StatisticsUpkeep:
    """Ticked by the supervisor: every ``interval`` seconds, each database whose server has
    autovacuum off is analysed, in a thread of its own (an ANALYZE of Synapse's database
    takes seconds; the supervisor's loop restarts processes meanwhile)."""

    def __init__(
        self, databases: list[PostgresDatabase], interval: float = ANALYZE_EVERY_SECONDS
    ) -> None:
        self.databases = databases
        self.interval = interval
        self._next = 0.0
        self._running: threading.Thread | None = None

    def tick(self, now: float) -> threading.Thread | None:
        """Start a round when one is due and none is running; the round's thread."""
        if now < self._next or (self._running is not None and self._running.is_alive()):
            return None
        self._next = now + self.interval
        self._running = threading.Thread(target=self.round, name="postgres-analyze", daemon=True)
        self._running.start()
        return self._running

    def round(self) -> list[str]:
        """One round: the databases analysed (autovacuum off on their server)."""
        done = []
        for db in self.databases:
            if autovacuum_on(db) is not False:  # on, or not answering (status tells that)
                continue
            try:
                seconds = analyze(db)
            except psycopg2.Error as exc:  # told, without the server's text
                log.error("ANALYZE de la base %s impossible (%s)", db.name, exc.pgcode or "?")
                continue
            log.info("statistiques de la base %s mises à jour en %.1f s", db.name, seconds)
            done.append(db.name)
        return done
