"""A request one Cercle process makes to another over a private socket (the pages' Courriers
→ the mail bridge's control socket, the directory → the homeserver's account gateway): the
shared secret as ``Authorization: Bearer``, compared in constant time, and a JSON object
that names a user of this server."""

from __future__ import annotations

import hmac
from typing import Any

from aiohttp import web

from deployment.conventions import MATRIX_USER_ID


async def user_request(
    request: web.Request, *, secret: str, server_name: str, user_key: str
) -> tuple[str, dict[str, Any]]:
    """The user id the body holds under ``user_key``, and the body. 401: not the secret;
    400: no JSON object, or no Matrix user id there; 403: a user of another server."""
    if not hmac.compare_digest(
        request.headers.get("Authorization", "").encode(), f"Bearer {secret}".encode()
    ):
        raise web.HTTPUnauthorized()
    try:
        body = await request.json()
    except ValueError:
        raise web.HTTPBadRequest() from None
    user_id = body.get(user_key) if isinstance(body, dict) else None
    if not isinstance(user_id, str) or not MATRIX_USER_ID.match(user_id):
        raise web.HTTPBadRequest()
    if user_id.split(":", 1)[1] != server_name:
        raise web.HTTPForbidden()
    return user_id, body
