"""The dossier's database layer built other ways, to measure against the service's own.

    service      `dossier_service.db.build_database`: SQLite statements in the event loop's
                 thread (`sqlite_driver`), requests served by the pool in the order they
                 came (`fair_pool`); both go past the libraries' public API.
    public       public APIs only: aiosqlite's own driver (each call a trip to its thread),
                 SQLAlchemy's own pool, and a first-come-first-served line in front of it
                 (an ``asyncio.Semaphore`` of the pool's size, taken by each transaction).
    inline-line  the service's driver, the line instead of the fair pool.

``bench/dossier_load.py --designs service,public,inline-line`` measures them side by side.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, fields

from sqlmodel.ext.asyncio.session import AsyncSession

from dossier_service.db import Database, build_database, engine_options

DESIGNS = ("service", "public", "inline-line")
LINE_TIMEOUT = 60.0  # as the pool's own wait


@dataclass(frozen=True)
class LinedDatabase(Database):
    """Transactions wait in line, first come first served (asyncio wakes its waiters in
    order), never inside the pool: at most as many in flight as the pool has connections."""

    line: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(1))

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        if self.line.locked():  # a timer only when there is a wait
            async with asyncio.timeout(LINE_TIMEOUT):
                await self.line.acquire()
        else:
            await self.line.acquire()
        try:
            async with super().transaction() as session:
                yield session
        finally:
            self.line.release()


def build(url: str, design: str) -> Database:
    if design == "service":
        return build_database(url)
    if design not in DESIGNS:
        raise SystemExit(f"conception inconnue : {design} (au choix : {', '.join(DESIGNS)})")
    options = engine_options(url)
    del options["poolclass"]  # SQLAlchemy's own: the line keeps it from ever having waiters
    if design == "public":
        options.pop("module", None)  # aiosqlite's own driver
    base = build_database(url, options=options)
    line = asyncio.Semaphore(options["pool_size"] + options["max_overflow"])
    return LinedDatabase(**{f.name: getattr(base, f.name) for f in fields(Database)}, line=line)
