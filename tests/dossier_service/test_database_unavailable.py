"""A database out of reach is told as such: 503 « réessayez », Matrix-shaped, with a
reference and ``Retry-After``, never a bare « Erreur interne »; and the dossier serves again
as soon as the database is back. A fault of the dossier's own stays a 500."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import exc as sa

from dossier_service.app import create_app
from dossier_service.config import DossierConfig
from dossier_service.database_unavailable import database_unavailable
from tests.dossier_service.conftest import COORD, Api, _pg, session_headers, with_config


class _PgError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


def _wrapped(orig: BaseException) -> sa.DBAPIError:
    return sa.OperationalError("SELECT 1", {}, orig)


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError(111, "Connect call failed"),
        ConnectionResetError(),
        sa.TimeoutError("QueuePool limit reached"),
        _wrapped(_PgError("53300")),  # too many connections
        _wrapped(_PgError("08006")),  # connection failure
        _wrapped(_PgError("57P01")),  # administrator shutdown
        _wrapped(sqlite3.OperationalError("database is locked")),
        _wrapped(sqlite3.OperationalError("database or disk is full")),
    ],
    ids=repr,
)
def test_out_of_reach(error: BaseException) -> None:
    assert database_unavailable(error)


@pytest.mark.parametrize(
    "error",
    [
        ValueError("mauvaise valeur"),
        _wrapped(_PgError("23505")),  # a unique violation: the dossier's fault
        _wrapped(_PgError("42P01")),  # an undefined table
        _wrapped(sqlite3.OperationalError("no such table: patient")),
    ],
    ids=repr,
)
def test_own_faults_are_not_out_of_reach(error: BaseException) -> None:
    assert not database_unavailable(error)


def test_the_cause_is_followed() -> None:
    try:
        try:
            raise ConnectionRefusedError(111, "refused")
        except ConnectionRefusedError as inner:
            raise RuntimeError("connexion impossible") from inner
    except RuntimeError as outer:
        assert database_unavailable(outer)


class Cut:
    """A TCP relay to PostgreSQL that the test can cut (every connection closed, new ones
    refused) and mend: the database server going away and coming back."""

    def __init__(self) -> None:
        self.server: asyncio.Server | None = None
        self.port = 0
        self.links: set[asyncio.StreamWriter] = set()

    async def open(self) -> None:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in list(self.links):
            writer.close()
        await self.server.wait_closed()
        self.server = None

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", 5432)
        self.links |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self.links -= {writer, up_writer}


@pytest.fixture
async def through_cut(
    pg_template: str, test_config: DossierConfig, aiohttp_client: Any
) -> AsyncIterator[tuple[Api, Cut]]:
    name = f"cercle_dossier_cut_{uuid.uuid4().hex[:10]}"
    await _pg(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"')
    cut = Cut()
    await cut.open()
    config = with_config(
        test_config, database_url=f"postgresql+asyncpg://postgres@127.0.0.1:{cut.port}/{name}"
    )
    app = create_app(config, with_pages=False)
    try:
        yield Api(client=await aiohttp_client(app), app=app), cut
    finally:
        if cut.server is not None:
            await cut.cut()
        await _pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.integration
@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # unused: replaced
async def test_a_database_gone_is_a_clear_503_and_the_dossier_serves_when_it_is_back(
    through_cut: tuple[Api, Cut],
) -> None:
    api, cut = through_cut
    patient = await api.new_patient()
    await api.ok("GET", f"/api/v1/patients/{patient}", as_user=COORD)

    await cut.cut()
    resp = await api.client.get(f"/api/v1/patients/{patient}", headers=session_headers(COORD))
    body = await resp.json()
    assert resp.status == 503, body
    assert body["errcode"] == "CERCLE_DATABASE_UNAVAILABLE"
    assert "réessayez" in body["error"] and "réf." in body["error"]
    assert resp.headers["Retry-After"] == "5"

    await cut.open()  # the same port: the server is back
    await api.ok("GET", f"/api/v1/patients/{patient}", as_user=COORD)
    await api.new_patient()  # and writes again
