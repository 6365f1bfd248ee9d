"""Fixtures for the interop tests: js-sdk clients (Element's Rust crypto) in Node."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.interop.jsdriver import JsClient, js_available


@pytest.fixture
async def js_client_factory(
    synapse: Any, user_factory: Callable[..., Any], tmp_path: Path
) -> AsyncIterator[Callable[..., Awaitable[JsClient]]]:
    """``await js_client_factory(user=None, strict=True, cross_sign=True, new_device=False)``
    -> a started js-sdk client (``new_device``: a second login of ``user``)."""
    missing = js_available()
    if missing:
        pytest.skip(f"interop js-sdk impossible : {missing}")
    clients: list[JsClient] = []

    async def make(
        user: Any = None, *, strict: bool = True, cross_sign: bool = True, new_device: bool = False
    ) -> JsClient:
        user = user or user_factory()
        suffix = f"-{len(clients)}" if new_device else ""
        client = await JsClient.spawn(tmp_path / f"jsclient-{user.localpart}{suffix}.log")
        clients.append(client)
        await client.start(
            synapse.base_url,
            user.user_id,
            user.access_token,
            user.device_id,
            user.password,
            strict=strict,
            cross_sign=cross_sign,
            new_device=new_device,
        )
        client.test_user = user  # type: ignore[attr-defined]
        return client

    yield make
    for client in clients:
        await client.close()


@pytest.fixture
async def cercle_bot(synapse: Any, tmp_path: Path) -> AsyncIterator[Any]:
    """The real Cercle bot (``bots.app.BotApp``) running in-process, with the session's bot
    identity: the same cross-signing key file as every other bot test of the session."""
    import secrets

    from bots.app import BotApp
    from bots.config import BotConfig

    config = BotConfig.from_profile(
        synapse.profile,
        data_dir=tmp_path / "bot",
        device_id="CERCLEBOT" + secrets.token_hex(3).upper(),
        sync_timeout_ms=5_000,
        backoff_max_seconds=2.0,
        cross_signing_key_path=synapse.var_dir / "bot" / "cross_signing.enc",
        history_fallback_seconds=6.0,  # a newcomer without any capable device: PDF after 6 s
    )
    app = await BotApp.create(
        config,
        password=synapse.secrets.bot_password,
        pickle_key=synapse.secrets.bot_pickle_key,
        cross_signing_key=synapse.secrets.bot_cross_signing_key,
    )
    try:
        await app.start()
        yield app
    finally:
        await app.stop()
