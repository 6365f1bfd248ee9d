"""Logging in with a Matrix OpenID token: against a small userinfo server for the refusal
paths, and end to end against the real Synapse (integration)."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from dossier_service import auth
from dossier_service.app import create_app
from dossier_service.config import DossierConfig


async def _userinfo_server(aiohttp_server: Any, tokens: dict[str, str]) -> TestServer:
    async def userinfo(request: web.Request) -> web.Response:
        sub = tokens.get(request.query.get("access_token", ""))
        if sub is None:
            return web.json_response(
                {"errcode": "M_UNKNOWN_TOKEN", "error": "Invalid access token"}, status=401
            )
        return web.json_response({"sub": sub})

    app = web.Application()
    app.router.add_get("/_matrix/federation/v1/openid/userinfo", userinfo)
    server: TestServer = await aiohttp_server(app)
    return server


async def test_openid_login_paths(
    aiohttp_client: Any, aiohttp_server: Any, test_config: DossierConfig
) -> None:
    hs = await _userinfo_server(
        aiohttp_server, {"good": "@alice:cercle.test", "foreign": "@eve:evil.example"}
    )
    config = test_config.replaced(homeserver_url=str(hs.make_url("")).rstrip("/"))
    client = await aiohttp_client(create_app(config, with_pages=False))
    resp = await client.post(
        "/api/v1/login",
        json={
            "access_token": "good",
            "token_type": "Bearer",
            "matrix_server_name": "cercle.test",
            "expires_in": 3600,
        },
    )
    assert resp.status == 200
    body = await resp.json()
    assert body["user_id"] == "@alice:cercle.test"
    cookie = resp.cookies[auth.SESSION_COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
    me = await client.get(
        "/api/v1/me", headers={"Authorization": f"Bearer {body['session_token']}"}
    )
    assert (await me.json())["user_id"] == "@alice:cercle.test"
    bad = await client.post("/api/v1/login", json={"access_token": "wrong"})
    assert bad.status == 401 and (await bad.json())["errcode"] == "M_UNKNOWN_TOKEN"
    foreign = await client.post("/api/v1/login", json={"access_token": "foreign"})
    assert foreign.status == 403
    malformed = await client.post(
        "/api/v1/login", data=b"{", headers={"Content-Type": "application/json"}
    )
    assert malformed.status == 400
    await hs.close()
    down = await client.post("/api/v1/login", json={"access_token": "good"})
    assert down.status == 503 and (await down.json())["errcode"] == "CERCLE_HOMESERVER_UNREACHABLE"


@pytest.mark.integration
async def test_login_with_a_real_synapse_openid_token(
    synapse: Any, user_factory: Any, aiohttp_client: Any, test_config: DossierConfig
) -> None:
    user = user_factory()
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{synapse.base_url}/_matrix/client/v3/user/{user.user_id}/openid/request_token",
            json={},
            headers={"Authorization": f"Bearer {user.access_token}"},
        ) as resp,
    ):
        assert resp.status == 200
        openid = await resp.json()
    config = test_config.replaced(homeserver_url=synapse.base_url, server_name=synapse.server_name)
    client = await aiohttp_client(create_app(config, with_pages=False))
    resp = await client.post("/api/v1/login", json=openid)
    assert resp.status == 200, await resp.text()
    session = await resp.json()
    assert session["user_id"] == user.user_id
    # the cookie session works for the API, with its CSRF token on writes
    created = await client.post(
        "/api/v1/patients",
        json={"label": "Patient de test"},
        headers={auth.CSRF_HEADER: session["csrf_token"]},
    )
    assert created.status == 201
    pid = (await created.json())["id"]
    file = await client.get(f"/api/v1/patients/{pid}")
    assert file.status == 200 and (await file.json())["my_role"] == "coordinateur"
    # an access token is not an OpenID token: refused by the homeserver
    refused = await client.post("/api/v1/login", json={"access_token": user.access_token})
    assert refused.status == 401


async def test_login_page_uses_the_public_homeserver_and_the_service_the_internal_one(
    aiohttp_client: Any, aiohttp_server: Any, test_config: DossierConfig
) -> None:
    """Browsers log in at the homeserver's public URL; the service checks the OpenID token at
    the internal one. Over https the session cookie is ``SameSite=None; Secure`` (Element's
    iframe is another site); over http it stays ``Lax``."""
    import re

    hs = await _userinfo_server(aiohttp_server, {"good": "@alice:cercle.test"})
    internal = str(hs.make_url("")).rstrip("/")
    public = "https://matrix.cercle.example"
    for secure in (True, False):
        config = test_config.replaced(
            homeserver_url=internal,
            public_homeserver_url=public + "/",
            public_url="https://dossier.cercle.example" if secure else test_config.public_url,
            secure_cookies=secure,
        )
        client = await aiohttp_client(create_app(config))
        page = await client.get("/connexion")
        html = await page.text()
        assert page.status == 200
        assert f'data-homeserver="{public}"' in html and internal not in html
        csp = page.headers["Content-Security-Policy"]
        assert f"connect-src 'self' {public};" in csp and internal not in csp
        found = re.search(r'name="csrf_token" value="([^"]+)"', html)
        assert found is not None
        resp = await client.post(
            "/connexion/openid",
            json={"access_token": "good", "matrix_server_name": "cercle.test"},
            headers={auth.CSRF_HEADER: found.group(1)},
        )
        assert resp.status == 200, await resp.text()  # checked at the internal URL
        assert (await resp.json())["user_id"] == "@alice:cercle.test"
        cookie = resp.cookies[auth.SESSION_COOKIE]
        if secure:
            assert cookie["samesite"] == "None" and cookie["secure"] and cookie["httponly"]
        else:
            assert cookie["samesite"] == "Lax" and not cookie["secure"]
        await client.close()
    await hs.close()
