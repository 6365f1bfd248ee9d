"""Behind the region profile's proxy the caller's address is nginx's word, from loopback only."""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestClient

from dossier_service.forwarded import behind_proxy, client_address


def test_client_address_trusts_the_header_only_from_loopback() -> None:
    assert client_address("127.0.0.1", "203.0.113.7") == "203.0.113.7"
    assert client_address("::1", "2001:db8::1") == "2001:db8::1"
    assert client_address("198.51.100.2", "203.0.113.7") == "198.51.100.2"  # not the proxy
    assert client_address("127.0.0.1", "pas une adresse") == "127.0.0.1"
    assert client_address("127.0.0.1", None) == "127.0.0.1"
    assert client_address("127.0.0.1", "10.0.0.1, 203.0.113.7") == "203.0.113.7"


async def test_the_middleware_gives_handlers_the_clients_address(aiohttp_client) -> None:  # type: ignore[no-untyped-def]
    async def who(request: web.Request) -> web.Response:
        return web.Response(text=request.remote or "")

    app = web.Application()
    app.router.add_get("/", who)
    behind_proxy(app)
    client: TestClient = await aiohttp_client(app)
    assert await (await client.get("/", headers={"X-Forwarded-For": "203.0.113.9"})).text() == (
        "203.0.113.9"
    )
    assert await (await client.get("/")).text() == "127.0.0.1"
