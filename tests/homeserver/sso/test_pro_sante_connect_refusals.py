"""Bad input on the SSO path: a provider that is down, ID tokens that must not be trusted,
claims without the national id. Each is refused with a French page, creates no account,
and leaves no token content in Synapse's log."""

from __future__ import annotations

import aiohttp
import pytest
from support_oidc import psc_claims

from .conftest import SsoBrowser, SsoStack, visible_text

pytestmark = pytest.mark.integration


async def _user_exists(sso: SsoStack, http: aiohttp.ClientSession, localpart: str) -> bool:
    async with http.get(
        f"{sso.synapse.base_url}/_synapse/admin/v2/users/@{localpart}:{sso.synapse.server_name}",
        headers={"Authorization": f"Bearer {sso.synapse.admin_token}"},
    ) as resp:
        return resp.status == 200


async def test_a_provider_that_is_down_gets_a_french_page_and_passwords_still_work(
    sso: SsoStack, browser: SsoBrowser
) -> None:
    status, _, body = await browser.sso_login("quelqu-un", idp="oidc-portail")
    text = visible_text(body)
    assert status >= 400, text[:300]
    assert "Le fournisseur d'identité est indisponible pour le moment" in text
    assert "Se connecter avec un mot de passe" in text
    # password login is still offered, and works
    user = sso.synapse.register("pro.sans.psc", "mot-de-passe-de-test")
    assert user["access_token"]
    async with browser.http.get(f"{sso.synapse.base_url}/_matrix/client/v3/login") as resp:
        flows = [f["type"] for f in (await resp.json())["flows"]]
    assert "m.login.password" in flows


@pytest.mark.parametrize("tamper", ["signature", "issuer", "audience", "expired"])
async def test_an_id_token_that_cannot_be_trusted_is_refused(
    sso: SsoStack, browser: SsoBrowser, tamper: str
) -> None:
    national_id = {
        "signature": "810000000015",
        "issuer": "810000000022",
        "audience": "810000000039",
        "expired": "810000000046",
    }[tamper]
    sub = f"psc-sub-{tamper}"
    sso.provider.set_user(sub, psc_claims(national_id, last_name="FALSIFIE", first_name=tamper))
    sso.provider.tamper = tamper
    try:
        status, location, body = await browser.sso_login(sub)
    finally:
        sso.provider.tamper = None
    text = visible_text(body)
    assert status >= 400 and "loginToken" not in location, (status, location)
    assert "La connexion a échoué" in text and "vérifiée" in text
    assert not await _user_exists(sso, browser.http, f"{tamper}.falsifie")
    # logged, without the token nor what it says
    log = sso.synapse.log_text
    token = sso.provider.id_tokens[-1]
    assert token.split(".")[1] not in log and token.split(".")[2] not in log
    assert national_id not in log and "FALSIFIE" not in log


async def test_the_tampering_itself_keeps_a_good_token_good(
    sso: SsoStack, browser: SsoBrowser
) -> None:
    """Control for the test above: re-signed by the provider's key with nothing changed, the
    token is accepted, so each refusal comes from the one claim (or key) changed."""
    sso.provider.set_user("psc-sub-resign", psc_claims("810000000053", last_name="TEMOIN"))
    sso.provider.tamper = "resign"
    try:
        status, location, body = await browser.sso_login("psc-sub-resign")
    finally:
        sso.provider.tamper = None
    assert status == 302 and "loginToken=" in location, visible_text(body)[:300]


async def test_claims_without_the_national_id_are_refused_with_a_clear_message(
    sso: SsoStack, browser: SsoBrowser
) -> None:
    sso.provider.set_user("psc-sub-sans-id", psc_claims(None, last_name="SANSID"))
    status, location, body = await browser.sso_login("psc-sub-sans-id")
    text = visible_text(body)
    assert status >= 400 and "loginToken" not in location
    assert "n'a pas transmis votre identifiant national de professionnel de santé" in text
    assert "Aucun compte n'a été créé" in text
    assert not await _user_exists(sso, browser.http, "raphael.sansid")
    assert "SANSID" not in sso.synapse.log_text
