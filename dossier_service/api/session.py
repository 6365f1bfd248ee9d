"""Logging in with a Matrix OpenID token, logging out, who am I."""

from __future__ import annotations

from typing import Any, Literal

from aiohttp import web
from aiohttp.typedefs import Handler
from pydantic import BaseModel, Field
from sqlmodel.ext.asyncio.session import AsyncSession

from dossier_service import appkeys, auth
from dossier_service.api.operation import (
    PUBLIC,
    SIGNED_IN,
    Audit,
    Call,
    Operations,
    allowed_when,
)
from dossier_service.policy import Principal
from dossier_service.schemas import OpenIdLoginIn, SessionsRevokeIn
from dossier_service.services import sessions

operations = Operations()


class Me(BaseModel):
    """Who is calling (``GET /api/v1/me``)."""

    user_id: str
    kind: Literal["user", "service"]
    is_admin: bool
    csrf_token: str | None = Field(
        default=None, repr=False
    )  # for a cookie session: the header its writes must carry


class LoggedIn(BaseModel):
    """A new dossier session (``POST /api/v1/login``)."""

    user_id: str
    session_token: str = Field(repr=False)
    csrf_token: str = Field(repr=False)
    expires_in: int
    is_admin: bool


async def _verify_openid(call: Call) -> None:
    """The Matrix OpenID token, checked with the homeserver before any transaction."""
    config = call.request.app[appkeys.CONFIG]
    user_id = await auth.verify_openid_token(
        call.request.app[appkeys.HTTP],
        homeserver_url=config.homeserver_url,
        access_token=call.data(OpenIdLoginIn).access_token,
        server_name=config.server_name,
    )
    call.principal = Principal(user_id=user_id)
    return None


@operations.post(
    "/api/v1/login",
    access=PUBLIC,
    audit=Audit("login", "session"),
    body=OpenIdLoginIn,
    before=_verify_openid,
    response=LoggedIn,
)
async def login(call: Call, session: AsyncSession) -> web.StreamResponse:
    """Exchange a Matrix OpenID token for a dossier session (cookie + bearer token)."""
    config = call.request.app[appkeys.CONFIG]
    assert call.principal is not None
    user_id = call.principal.user_id
    token = auth.issue_session(
        config.session_key, user_id, lifetime=config.session_lifetime_seconds
    )
    issued = auth.read_session(config.session_key, token)
    assert issued is not None
    body: dict[str, Any] = {
        "user_id": user_id,
        "session_token": token,
        "csrf_token": auth.csrf_token(config.session_key, issued),
        "expires_in": config.session_lifetime_seconds,
        "is_admin": user_id in config.admins,
    }
    response = web.json_response(body)
    auth.set_session_cookie(response, token, config)
    return response


@web.middleware
async def session_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every request carrying a person's session asks the server whether it was ended
    (logout, deactivated account): a signature alone is not enough."""
    presented = auth.presented_session(request, request.app[appkeys.CONFIG])
    if presented is not None:
        database = request.app[appkeys.DATABASE]
        memory = database.revoked  # the ended sessions in memory (revoked_sessions.py)
        revoked = memory.answer(presented) if memory is not None else None
        if revoked is None:
            async with database.sessions() as db:
                if memory is not None:
                    revoked = await memory.is_revoked(db, presented)
                else:
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


def _logged_out() -> web.Response:
    response = web.json_response({})
    auth.clear_session_cookie(response)
    return response


async def _presented(call: Call) -> web.StreamResponse | None:
    """No session presented, or one already ended: nothing to end, nothing written."""
    presented = auth.presented_session(call.request, call.request.app[appkeys.CONFIG])
    if presented is None or call.request.get(auth.REVOKED):
        return _logged_out()
    call.principal = Principal(user_id=presented.user_id)
    call.state["presented"] = presented
    return None


@operations.post(
    "/api/v1/logout", access=PUBLIC, audit=Audit("logout", "session"), before=_presented
)
async def logout(call: Call, session: AsyncSession) -> web.StreamResponse:
    """End this session (bearer token or cookie) on the server."""
    await sessions.end_session(session, call.state["presented"])
    await sessions.purge_expired(session)
    return _logged_out()


@operations.post(
    "/api/v1/sessions/revoke",
    access=allowed_when("privileged", lambda principal: principal.privileged),
    audit=Audit("update", "sessions"),
    body=SessionsRevokeIn,
)
async def revoke_sessions(call: Call, session: AsyncSession) -> tuple[int, Any]:
    """End every session of a person (admins, and the CLI when an account is deactivated)."""
    data = call.data(SessionsRevokeIn)
    await sessions.end_all_sessions(session, user_id=data.user_id, reason=data.reason)
    return 200, {}


@operations.answer("GET", "/api/v1/me", access=SIGNED_IN, audit=None, response=Me)
async def me(call: Call) -> web.StreamResponse:
    ctx = call.ctx
    body: dict[str, Any] = {
        "user_id": ctx.principal.user_id,
        "kind": ctx.principal.kind,
        "is_admin": ctx.principal.is_admin,
    }
    if ctx.session_info is not None:
        body["csrf_token"] = auth.csrf_token(ctx.config.session_key, ctx.session_info)
    return web.json_response(body)
