"""Logging in with a Matrix OpenID token, logging out, who am I."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from dossier_service import appkeys, auth
from dossier_service.api.context import context, read_json
from dossier_service.policy import Principal
from dossier_service.schemas import OpenIdLoginIn
from dossier_service.services import journal

routes = web.RouteTableDef()


@routes.post("/api/v1/login")
async def login(request: web.Request) -> web.Response:
    """Exchange a Matrix OpenID token for a dossier session (cookie + bearer token)."""
    config = request.app[appkeys.CONFIG]
    data = await read_json(request, OpenIdLoginIn)
    user_id = await auth.verify_openid_token(
        request.app[appkeys.HTTP],
        homeserver_url=config.homeserver_url,
        access_token=data.access_token,
        server_name=config.server_name,
    )
    token = auth.issue_session(
        config.session_key, user_id, lifetime=config.session_lifetime_seconds
    )
    session = auth.read_session(config.session_key, token)
    assert session is not None
    async with request.app[appkeys.DATABASE].transaction() as db_session:
        await journal.audit(
            db_session,
            principal=Principal(user_id=user_id),
            action="login",
            resource="session",
            patient_id=None,
            remote=request.remote or "",
        )
    body: dict[str, Any] = {
        "user_id": user_id,
        "session_token": token,
        "csrf_token": auth.csrf_token(config.session_key, session),
        "expires_in": config.session_lifetime_seconds,
        "is_admin": user_id in config.admins,
    }
    response = web.json_response(body)
    auth.set_session_cookie(response, token, config)
    return response


@routes.post("/api/v1/logout")
async def logout(request: web.Request) -> web.Response:
    response = web.json_response({})
    auth.clear_session_cookie(response)
    return response


@routes.get("/api/v1/me")
async def me(request: web.Request) -> web.Response:
    ctx = context(request)
    body: dict[str, Any] = {
        "user_id": ctx.principal.user_id,
        "kind": ctx.principal.kind,
        "is_admin": ctx.principal.is_admin,
    }
    if ctx.session_info is not None:
        body["csrf_token"] = auth.csrf_token(ctx.config.session_key, ctx.session_info)
    return web.json_response(body)
