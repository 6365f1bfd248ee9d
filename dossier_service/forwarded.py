"""Behind the region profile's proxy: the caller's address is the one nginx saw.

nginx (homeserver/templates/nginx.conf.j2) *replaces* ``X-Forwarded-For`` with the address
of its client, so the header is trusted only on connections from loopback, where the proxy
is; anything else keeps the socket's address. Without this, every caller would be
127.0.0.1 to the audit log and to the directory's per-address limit of account requests.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_LOOPBACK = ("127.0.0.1", "::1")


def client_address(remote: str | None, forwarded_for: str | None) -> str | None:
    """Pure: the proxy's word for the client when the connection comes from loopback."""
    if remote not in _LOOPBACK or not forwarded_for:
        return remote
    candidate = forwarded_for.split(",")[-1].strip()
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote


@web.middleware
async def forwarded_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    remote = client_address(request.remote, request.headers.get("X-Forwarded-For"))
    if remote is not None and remote != request.remote:
        request = request.clone(remote=remote)
    return await handler(request)


def behind_proxy(app: web.Application) -> None:
    """An extension of ``create_app``: the first middleware to see each request."""
    app.middlewares.insert(0, forwarded_middleware)
