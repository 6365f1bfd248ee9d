"""Logging in with a Matrix OpenID token, logging out, who am I."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from sqlmodel.ext.asyncio.session import AsyncSession

from dossier_service import appkeys, auth
from dossier_service.api.context import context, read_json
from dossier_service.api.errors import ApiError
from dossier_service.api.runner import run
from dossier_service.policy import Principal
from dossier_service.schemas import OpenIdLoginIn, SessionsRevokeIn
from dossier_service.services import journal, sessions

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


@web.middleware
async def session_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Every request carrying a person's session asks the server whether it was ended
    (logout, deactivated account): a signature alone is not enough."""
    presented = auth.presented_session(request, request.app[appkeys.CONFIG])
    if presented is not None:
        async with request.app[appkeys.DATABASE].sessions() as db:
            revoked = await sessions.is_revoked(db, presented)
        checks = request.app.get(appkeys.ACCOUNT_CHECKS)
        if not revoked and checks is not None and not await checks.still_active(presented.user_id):
            async with request.app[appkeys.DATABASE].transaction() as db:
                await sessions.end_all_sessions(
                    db, user_id=presented.user_id, reason="compte désactivé"
                )
            revoked = True
        request[auth.REVOKED] = revoked
    return await handler(request)


async def end_presented_session(request: web.Request) -> None:
    """Logout (API and pages): the presented session ends on the server, for good."""
    presented = auth.presented_session(request, request.app[appkeys.CONFIG])
    if presented is None or request.get(auth.REVOKED):
        return
    async with request.app[appkeys.DATABASE].transaction() as db:
        await sessions.end_session(db, presented)
        await sessions.purge_expired(db)
        await journal.audit(
            db,
            principal=Principal(user_id=presented.user_id),
            action="logout",
            resource="session",
            patient_id=None,
            remote=request.remote or "",
        )


@routes.post("/api/v1/logout")
async def logout(request: web.Request) -> web.Response:
    """End this session (bearer token or cookie) on the server."""
    await end_presented_session(request)
    response = web.json_response({})
    auth.clear_session_cookie(response)
    return response


@routes.post("/api/v1/sessions/revoke")
async def revoke_sessions(request: web.Request) -> web.Response:
    """End every session of a person (admins, and the CLI when an account is deactivated)."""
    ctx = context(request)
    if not ctx.principal.privileged:
        raise ApiError("M_FORBIDDEN")
    data = await read_json(request, SessionsRevokeIn)

    async def work(db: AsyncSession) -> tuple[int, Any]:
        await sessions.end_all_sessions(db, user_id=data.user_id, reason=data.reason)
        await ctx.audit(db, action="update", resource="sessions", patient_id=None)
        return 200, {}

    return await run(ctx, work)


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
