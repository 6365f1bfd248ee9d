"""Headless Chromium runs the whole SSO redirect chain once, from the dossier's login page:
"Se connecter avec Pro Santé Connect" -> Synapse -> the provider's login form -> Synapse's
callback -> back to the dossier with a login token -> the dossier session."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from support import BROWSER_MARKS, CHROMIUM, CHROMIUM_ARGS
from support_oidc import psc_claims

from dossier_service.app import create_app
from dossier_service.config import DossierConfig
from dossier_service.migrate import upgrade

from .conftest import SsoStack

pytestmark = BROWSER_MARKS


@pytest.fixture
async def dossier(sso: SsoStack, tmp_path: Path) -> AsyncIterator[str]:
    """The real dossier on the port of the profile: the address Synapse trusts for SSO."""
    port = int(sso.synapse.profile.section("dossier")["port"])
    config = DossierConfig(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'dossier.db'}",
        documents_dir=tmp_path / "documents",
        homeserver_url=sso.synapse.base_url,
        server_name=sso.synapse.server_name,
        session_key="clé-de-session-sso-" + "z" * 16,
        service_token="jeton-de-service-sso-" + "w" * 16,
        port=port,
        public_url=f"http://127.0.0.1:{port}",
        forms_dir=Path(__file__).resolve().parents[3] / "config" / "forms",
    )
    await upgrade(config.database_url)
    runner = web.AppRunner(create_app(config))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_dossier_login_through_pro_sante_connect_in_chromium(
    sso: SsoStack, dossier: str
) -> None:
    from playwright.async_api import async_playwright, expect

    expect.set_options(timeout=15_000)
    sso.provider.set_user(
        "psc-sub-robin", psc_claims("810000000015", last_name="ROBIN", first_name="MATHILDE")
    )
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(locale="fr-FR")
            await page.goto(f"{dossier}/connexion?suite=/taches")
            psc = page.get_by_role("link", name="Se connecter avec Pro Santé Connect")
            await expect(psc).to_be_visible()
            await expect(
                page.get_by_role("link", name="Se connecter avec Portail régional")
            ).to_be_visible()
            await expect(page.get_by_role("link", name="Documents juridiques")).to_have_attribute(
                "href", f"{sso.synapse.base_url}/_matrix/consent"
            )
            await psc.click()
            await page.wait_for_url(f"{sso.provider.issuer}/oauth2/authorize?**")
            await page.fill("input[name=sub]", "psc-sub-robin")
            await page.get_by_role("button", name="Authorize").click()
            await page.wait_for_url(f"{dossier}/taches", timeout=20_000)
            user_id = f"@mathilde.robin:{sso.synapse.server_name}"
            await expect(page.locator(".entete .qui")).to_contain_text(user_id)
        finally:
            await browser.close()
