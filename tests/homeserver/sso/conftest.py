"""One Synapse with single sign-on for the SSO tests: Pro Santé Connect served by a real
OpenID provider on loopback (tests/support_oidc.py), the regional portal pointed at a port
where nothing listens (a provider that is down), the directory imported from the RPPS
sample, password login closed to RPPS professionals; all rendered by the deployment's own
code."""

from __future__ import annotations

import html as html_module
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlparse

import aiohttp
import pytest
from support import RPPS_SAMPLE, SynapseUnderTest, free_port, start_synapse
from support_oidc import Provider, running_provider

from dossier_service.directory.importer import import_extract
from tests.directory_support import connect

CLIENT_ID = "cercle-test"


@dataclass
class SsoStack:
    synapse: SynapseUnderTest
    provider: Provider
    directory_db: Path


@pytest.fixture(scope="package")
def sso(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SsoStack]:
    var = tmp_path_factory.mktemp("cercle-sso")
    secrets_dir = var / "secrets"
    secrets_dir.mkdir(mode=0o700)
    for idp in ("psc", "portail"):
        path = secrets_dir / f"oidc_{idp}_client_secret"
        path.write_text("secret-de-test\n")
        path.chmod(0o600)
    # the directory is in the dossier's database (its default place), where the module reads it
    directory_db = var / "dossier" / "dossier.db"
    conn = connect(directory_db)
    import_extract(conn, RPPS_SAMPLE)
    conn.close()
    with running_provider() as provider:
        dead = f"http://127.0.0.1:{free_port()}"
        hs = start_synapse(
            var,
            extra={
                "homeserver": {
                    "log_level": "INFO",
                    "sso": {
                        "password_login": False,  # RPPS professionals must use PSC
                        "providers": {
                            "psc": {
                                "enabled": True,
                                "issuer": provider.issuer,
                                "client_id": CLIENT_ID,
                                "scopes": ["openid", "profile"],
                            },
                            "portail": {"enabled": True, "issuer": dead, "client_id": CLIENT_ID},
                        },
                    },
                }
            },
        )
        try:
            yield SsoStack(hs, provider, directory_db)
        finally:
            hs.stop()


class SsoBrowser:
    """Follows the SSO redirect chain like a browser would (cookies kept, redirects by
    hand so each hop can be looked at)."""

    def __init__(self, stack: SsoStack, http: aiohttp.ClientSession) -> None:
        self.stack = stack
        self.http = http
        self.cookies = ""
        self.authorize_url = ""

    async def get(self, url: str, cookies: str = "") -> tuple[int, str, str]:
        headers = {"Cookie": cookies} if cookies else {}
        async with self.http.get(url, allow_redirects=False, headers=headers) as resp:
            self.cookies = "; ".join(f"{k}={m.value}" for k, m in resp.cookies.items())
            return resp.status, resp.headers.get("Location", ""), await resp.text()

    async def sso_login(
        self, sub: str, *, idp: str = "oidc-psc", client: str | None = None
    ) -> tuple[int, str, str]:
        """Start at Synapse's redirect endpoint, log in at the provider as ``sub``, come
        back to Synapse's callback; returns the last (status, location, body). The client
        is the dossier's login page unless said (the one address Synapse trusts)."""
        client = client or f"{self.stack.synapse.profile.dossier_url}/connexion"
        status, location, body = await self.get(
            f"{self.stack.synapse.base_url}/_matrix/client/v3/login/sso/redirect/{idp}?redirectUrl={client}"
        )
        if status != 302:
            return status, location, body
        # Synapse's session cookies are "Secure": a browser keeps them for http://127.0.0.1
        # (a secure context), aiohttp's jar does not; they are handed back as a browser would.
        session_cookies = self.cookies
        self.authorize_url = location
        form_status, _, form = await self.get(location)  # the provider's login form
        assert form_status == 200, form[:300]
        async with self.http.post(location, data={"sub": sub}, allow_redirects=False) as resp:
            assert resp.status in (302, 303), await resp.text()
            callback = urljoin(location, resp.headers["Location"])
        return await self.get(callback, session_cookies)

    async def token_login(self, location: str) -> tuple[int, Any]:
        """The client's part after ``sso_login``: the login token of the redirect
        ``location`` traded at Synapse for a session; (status, answer)."""
        async with self.http.post(
            f"{self.stack.synapse.base_url}/_matrix/client/v3/login",
            json={"type": "m.login.token", "token": login_token_of(location)},
        ) as resp:
            return resp.status, await resp.json()

    async def psc_session(self, sub: str) -> tuple[int, Any]:
        """``sub`` logs in through Pro Santé Connect, is sent back to the client (302), whose
        login token is then traded for a session: (status, answer)."""
        status, location, body = await self.sso_login(sub)
        assert status == 302, body[:500]
        return await self.token_login(location)


def login_token_of(location: str) -> str:
    return parse_qs(urlparse(location).query)["loginToken"][0]


def visible_text(html: str) -> str:
    return html_module.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)))


@pytest.fixture
async def browser(sso: SsoStack) -> Any:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        yield SsoBrowser(sso, http)
