"""Run the Alembic migrations programmatically (at service start and in tests)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

_LOCK = 0x63657263  # "cerc": the migrations' advisory lock
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config(str(MIGRATIONS_DIR / "alembic.ini"))
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def _upgrade(connection: Connection, cfg: Config, revision: str) -> None:
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, revision)


async def upgrade(url: str, revision: str = "head") -> None:
    """``alembic upgrade head`` on ``url``, inside the running event loop."""
    if url.startswith("sqlite"):
        _ensure_sqlite_dir(url)
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            if engine.dialect.name == "postgresql":
                # several dossier processes start together (region profile): one migrates,
                # the others wait for it, then find nothing left to do
                await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK})
            await connection.run_sync(_upgrade, alembic_config(url), revision)
    finally:
        await engine.dispose()


def upgrade_sync(url: str, revision: str = "head") -> None:
    asyncio.run(upgrade(url, revision))


def _ensure_sqlite_dir(url: str) -> None:
    path = url.split(":///", 1)[-1]
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)


def schema_differences(connection: Connection) -> list[Any]:
    """What autogenerate would change between the models and ``connection``'s schema."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    import dossier_service.models as models

    ctx = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(ctx, models.metadata))


def sync_url(url: str) -> str:
    """The same database through a blocking driver (no event loop needed)."""
    if url.startswith("sqlite+aiosqlite://"):
        return "sqlite://" + url.split("://", 1)[1]
    if url.startswith("postgresql+asyncpg://"):
        return "postgresql+psycopg2://" + url.split("://", 1)[1]
    return url


def upgrade_blocking(url: str, revision: str = "head") -> None:
    """``alembic upgrade head`` without an event loop (CLI commands, test fixtures)."""
    from sqlalchemy import create_engine

    if url.startswith("sqlite"):
        _ensure_sqlite_dir(url)
    engine = create_engine(sync_url(url))
    try:
        with engine.begin() as connection:
            _upgrade(connection, alembic_config(url), revision)
    finally:
        engine.dispose()
