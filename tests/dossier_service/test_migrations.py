"""Schema only through Alembic: empty → head on SQLite and PostgreSQL, and autogenerate
finds nothing to change between the models and the migrated schema."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine

import dossier_service.models as models
from dossier_service.migrate import MIGRATIONS_DIR, schema_differences, upgrade
from tests.dossier_service.conftest import _pg


async def _check(url: str) -> None:
    await upgrade(url)
    await upgrade(url)  # a second run is a no-op
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            tables = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
            assert set(models.metadata.tables) <= tables
            assert "alembic_version" in tables
            assert await conn.run_sync(schema_differences) == []
    finally:
        await engine.dispose()


async def test_sqlite_empty_to_head_matches_models(tmp_path: Path) -> None:
    await _check(f"sqlite+aiosqlite:///{tmp_path / 'nested' / 'dossier.db'}")


@pytest.mark.postgres
async def test_postgres_empty_to_head_matches_models() -> None:
    name = f"cercle_dossier_mig_{uuid.uuid4().hex[:10]}"
    try:
        await _pg(f'CREATE DATABASE "{name}"')
    except OSError:
        pytest.skip("PostgreSQL injoignable")
    try:
        await _check(f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}")
    finally:
        await _pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_alembic_ini_ships_inside_the_package() -> None:
    assert (MIGRATIONS_DIR / "alembic.ini").is_file()
    assert (MIGRATIONS_DIR / "env.py").is_file()
    assert list((MIGRATIONS_DIR / "versions").glob("*.py"))
