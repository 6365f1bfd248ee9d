"""The servers the region profile relies on and does not run itself: Redis (Synapse's
replication between its processes) and PostgreSQL (Synapse's and the dossier's databases).

Cercle cannot restart them (they are the machine's services), so it says when one does not
answer: `cercle up` refuses to start without them, `cercle status` shows them, and the
supervisor logs when one stops or comes back. Without Redis Synapse's processes start and
answer ``/health`` but no longer tell each other anything: a message persisted by one is never
seen by the `/sync` of another — what nobody would otherwise be told.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import psycopg2
from sqlalchemy import make_url

from deployment.profile import Profile


@dataclass(frozen=True)
class Dependency:
    name: str  # "Redis", "PostgreSQL"
    host: str
    port: int
    role: str  # what it is for, in French
    remedy: str  # what the operator does, in French
    answers: Callable[[], bool] = field(compare=False, repr=False)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def unreachable(self) -> str:
        """French, for an operator: which server, where, what it breaks, what to do."""
        return f"{self.name} ne répond pas sur {self.address} ({self.role}) : {self.remedy}"


def region_dependencies(profile: Profile) -> list[Dependency]:
    """Redis, then each PostgreSQL server of the profile (Synapse's, the dossier's if
    elsewhere)."""
    redis = profile.section("region")["redis"]
    host, port = str(redis["host"]), int(redis["port"])
    found = [
        Dependency(
            "Redis",
            host,
            port,
            "la réplication entre les processus de Synapse",
            "démarrez-le (« systemctl start redis-server ») ou corrigez region.redis",
            partial(redis_answers, host, port),
        )
    ]
    servers: set[tuple[str, int]] = set()
    for db in postgres_databases(profile):
        if (db.host, db.port) in servers:
            continue
        servers.add((db.host, db.port))
        found.append(
            Dependency(
                "PostgreSQL",
                db.host,
                db.port,
                "les bases de Synapse et du dossier",
                f"démarrez-le (« systemctl start postgresql ») ou corrigez {db.setting}",
                partial(postgres_answers, db.host, db.port, db.user, db.password),
            )
        )
    return found


@dataclass(frozen=True)
class PostgresDatabase:
    host: str
    port: int
    user: str
    password: str = field(repr=False)
    name: str
    setting: str  # where the profile names it
    synapse: bool  # Synapse's (it needs the C collation)


def postgres_databases(profile: Profile) -> list[PostgresDatabase]:
    """The profile's databases on PostgreSQL: Synapse's, then the dossier's."""
    found: list[PostgresDatabase] = []
    db = profile.section("homeserver")["database"]
    if db["engine"] == "postgres":
        found.append(
            PostgresDatabase(
                str(db["host"]),
                int(db["port"]),
                str(db["user"]),
                str(db["password"] or ""),
                str(db["name"]),
                "homeserver.database",
                synapse=True,
            )
        )
    url = str(profile.section("dossier").get("database_url") or "")
    if url.startswith("postgresql"):
        parsed = make_url(url)
        found.append(
            PostgresDatabase(
                parsed.host or "127.0.0.1",
                parsed.port or 5432,
                parsed.username or "postgres",
                parsed.password or "",
                str(parsed.database),
                "dossier.database_url",
                synapse=False,
            )
        )
    return found


def redis_answers(host: str, port: int, timeout: float = 2.0) -> bool:
    """True when a Redis server answers PING there (RESP's +PONG, or NOAUTH: it is there)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as conn:
            conn.settimeout(timeout)
            conn.sendall(b"*1\r\n$4\r\nPING\r\n")
            answer = conn.recv(64)
    except OSError:
        return False
    return answer.startswith((b"+PONG", b"-NOAUTH"))


def postgres_answers(host: str, port: int, user: str, password: str, timeout: int = 3) -> bool:
    """True when the server accepts a connection to its ``postgres`` database."""
    try:
        psycopg2.connect(
            host=host,
            port=port,
            user=user,
            password=password or None,
            dbname="postgres",
            connect_timeout=timeout,
        ).close()
    except psycopg2.Error:
        return False
    return True
