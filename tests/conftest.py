"""Shared fixtures: a real Synapse for the test session, users and E2EE nio clients.

The Synapse is rendered by the same code as `make up` (homeserver.render), in a temporary
directory on a free port, so the tests exercise the real configuration.
"""

from __future__ import annotations

import itertools
import os
import secrets as _random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from support import SynapseUnderTest, TestUser, start_synapse


@pytest.fixture(autouse=True)
def _cli_profile_stays_in_its_test() -> Iterator[None]:
    """`cercle.cli.main` names the profile in ``CERCLE_CONFIG`` for the children it starts;
    called in-process by a test, that choice must not follow the worker into the next test
    (a later `command_line` would print « --config <another test's file> »)."""
    before = os.environ.get("CERCLE_CONFIG")
    yield
    if before is None:
        os.environ.pop("CERCLE_CONFIG", None)
    else:
        os.environ["CERCLE_CONFIG"] = before


@pytest.fixture(scope="session")
def synapse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SynapseUnderTest]:
    hs = start_synapse(tmp_path_factory.mktemp("cercle-var"))
    try:
        yield hs
    finally:
        hs.stop()


_counter = itertools.count(1)


@pytest.fixture
def user_factory(synapse: SynapseUnderTest) -> Callable[..., TestUser]:
    def make(
        localpart: str | None = None, *, admin: bool = False, displayname: str | None = None
    ) -> TestUser:
        localpart = localpart or f"pro{next(_counter)}-{_random.token_hex(3)}"
        password = _random.token_urlsafe(12)
        out = synapse.register(localpart, password, admin=admin, displayname=displayname)
        return TestUser(out["user_id"], localpart, password, out["access_token"], out["device_id"])

    return make


@pytest.fixture
async def nio_client_factory(
    synapse: SynapseUnderTest, user_factory: Callable[..., TestUser], tmp_path: Path
) -> AsyncIterator[Callable[..., Awaitable[Any]]]:
    from nio import AsyncClient, AsyncClientConfig

    clients: list[AsyncClient] = []

    async def make(user: TestUser | None = None) -> AsyncClient:
        user = user or user_factory()
        store = tmp_path / f"nio-{user.localpart}-{user.device_id}"
        store.mkdir(parents=True, exist_ok=True)
        client = AsyncClient(
            synapse.base_url,
            user.user_id,
            device_id=user.device_id,
            store_path=str(store),
            config=AsyncClientConfig(encryption_enabled=True, store_sync_tokens=True),
        )
        client.restore_login(user.user_id, user.device_id, user.access_token)
        client.test_user = user  # type: ignore[attr-defined]
        clients.append(client)
        if client.should_upload_keys:
            await client.keys_upload()
        await client.sync(timeout=0, full_state=True)
        return client

    yield make
    for client in clients:
        await client.close()


@asynccontextmanager
async def serve_account_gateway(
    synapse: SynapseUnderTest, socket: Path
) -> AsyncIterator[tuple[Path, str]]:
    """The real account gateway (issue 12) on the Unix ``socket``, holding the test
    Synapse's admin token: (socket, secret)."""
    from aiohttp import web

    from homeserver.account_gateway import create_gateway_app
    from homeserver.admin_api import AdminApi

    secret = _random.token_urlsafe(16)
    async with AdminApi(synapse.base_url, synapse.admin_token) as admin:
        runner = web.AppRunner(
            create_gateway_app(admin, secret=secret, server_name=synapse.server_name)
        )
        await runner.setup()
        await web.UnixSite(runner, str(socket)).start()
        try:
            yield socket, secret
        finally:
            await runner.cleanup()


@pytest.fixture
async def account_gateway(
    synapse: SynapseUnderTest, tmp_path: Path
) -> AsyncIterator[tuple[Path, str]]:
    """:func:`serve_account_gateway` for one test."""
    async with serve_account_gateway(synapse, tmp_path / "gateway.sock") as served:
        yield served
