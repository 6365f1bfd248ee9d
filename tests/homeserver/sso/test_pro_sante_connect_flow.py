"""Pro Santé Connect through the real Synapse and a real OpenID provider: discovery,
redirect with PKCE, login, callback, account created, mapped, approved and linked to the
directory; the same person again lands on the same account."""

from __future__ import annotations

import sqlite3
from urllib.parse import urljoin

import aiohttp
import pytest
from support_oidc import psc_claims

from .conftest import SsoBrowser, SsoStack, visible_text

pytestmark = pytest.mark.integration

ACTIVE_RPPS = "810000000008"  # BOYER Raphael, Infirmier, Narbonne (RPPS sample)
ADELI = "0000000016"  # CAZALAS Mathieu, Médecin: in the directory, but not an RPPS number


async def test_login_flows_offer_pro_sante_connect_and_the_password(sso: SsoStack) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{sso.synapse.base_url}/_matrix/client/v3/login") as resp,
    ):
        flows = (await resp.json())["flows"]
    types = [f["type"] for f in flows]
    assert "m.login.password" in types and "m.login.sso" in types
    idps = next(f for f in flows if f["type"] == "m.login.sso")["identity_providers"]
    assert [(i["id"], i["name"]) for i in idps] == [
        ("oidc-psc", "Pro Santé Connect"),
        ("oidc-portail", "Portail régional"),
    ]


async def test_first_and_second_sso_login_of_an_active_rpps_professional(
    sso: SsoStack, browser: SsoBrowser
) -> None:
    sso.provider.set_user("psc-sub-boyer", psc_claims(ACTIVE_RPPS))
    checked = sso.provider.pkce_checked
    status, location, body = await browser.sso_login("psc-sub-boyer")
    assert status == 302, body[:500]
    # the authorization request Synapse sent: PKCE S256, the assurance level, a nonce
    sent = sso.provider.authorize_queries[-1]
    assert sent["code_challenge_method"] == "S256" and sent["code_challenge"]
    assert sent["acr_values"] == "eidas1" and sent["nonce"] and sent["state"]
    assert sso.provider.pkce_checked == checked + 1  # the verifier matched at /token
    assert location.startswith(f"{sso.synapse.profile.dossier_url}/connexion?loginToken=")

    status, login = await browser.token_login(location)
    assert status == 200, login  # approved at once: an active RPPS entry
    user_id = login["user_id"]
    assert user_id == f"@raphael.boyer:{sso.synapse.server_name}"
    async with browser.http.get(
        f"{sso.synapse.base_url}/_matrix/client/v3/profile/{user_id}/displayname",
        headers={"Authorization": f"Bearer {login['access_token']}"},
    ) as resp:
        assert (await resp.json())["displayname"] == "BOYER Raphael — Infirmier, Narbonne"

    # linked to its directory entry, with its audit row
    conn = sqlite3.connect(sso.directory_db)
    assert conn.execute(
        "SELECT national_id, source FROM annuaire_account_link WHERE mxid = ?", (user_id,)
    ).fetchall() == [(ACTIVE_RPPS, "Pro Santé Connect")]
    assert conn.execute(
        "SELECT count(*) FROM annuaire_audit WHERE action = 'compte.lie' AND target = ?", (user_id,)
    ).fetchone() == (1,)
    conn.close()

    # the same person again (another session, another device): the same account
    status, again = await browser.psc_session("psc-sub-boyer")
    assert status == 200 and again["user_id"] == user_id
    assert again["device_id"] != login["device_id"]

    # the dossier accepts this SSO account like any other (Matrix OpenID token)
    async with browser.http.post(
        f"{sso.synapse.base_url}/_matrix/client/v3/user/{user_id}/openid/request_token",
        json={},
        headers={"Authorization": f"Bearer {again['access_token']}"},
    ) as resp:
        openid = await resp.json()
    from dossier_service import auth

    assert (
        await auth.verify_openid_token(
            browser.http,
            homeserver_url=sso.synapse.base_url,
            access_token=openid["access_token"],
            server_name=sso.synapse.server_name,
        )
        == user_id
    )


async def test_someone_not_in_the_rpps_waits_for_approval(
    sso: SsoStack, browser: SsoBrowser
) -> None:
    sso.provider.set_user(
        "psc-sub-cazalas",
        psc_claims(ADELI, last_name="CAZALAS", first_name="MATHIEU", profession="10"),
    )
    status, answer = await browser.psc_session("psc-sub-cazalas")
    assert status == 403 and answer["errcode"] == "ORG.MATRIX.MSC3866_USER_AWAITING_APPROVAL", (
        answer
    )
    # the account exists, waits, and is linked to its directory entry (ADELI)
    user_id = f"@mathieu.cazalas:{sso.synapse.server_name}"
    async with browser.http.get(
        f"{sso.synapse.base_url}/_synapse/admin/v2/users/{user_id}",
        headers={"Authorization": f"Bearer {sso.synapse.admin_token}"},
    ) as resp:
        user = await resp.json()
    assert user["approved"] is False
    assert user["displayname"] == (
        "CAZALAS Mathieu — Médecin (Santé publique et médecine sociale), Alès"
    )
    conn = sqlite3.connect(sso.directory_db)
    assert conn.execute(
        "SELECT national_id FROM annuaire_account_link WHERE mxid = ?", (user_id,)
    ).fetchall() == [(ADELI,)]
    conn.close()


async def test_a_name_already_taken_by_someone_else_is_not_taken_over(
    sso: SsoStack, browser: SsoBrowser
) -> None:
    """An existing password account "marie.leroy" belongs to someone else: a PSC login of
    another Marie Leroy gets a new account, never that one."""
    other = sso.synapse.register("marie.leroy", "mot-de-passe-de-test")
    sso.provider.set_user(
        "psc-sub-leroy", psc_claims("899700000001", last_name="LEROY", first_name="MARIE")
    )
    status, answer = await browser.psc_session("psc-sub-leroy")
    # not in the directory: waits for approval, under a new id
    assert status == 403, answer
    async with browser.http.get(
        f"{sso.synapse.base_url}/_synapse/admin/v2/users/@marie.leroy2:{sso.synapse.server_name}",
        headers={"Authorization": f"Bearer {sso.synapse.admin_token}"},
    ) as resp:
        assert resp.status == 200
        created = await resp.json()
    assert created["external_ids"] == [{"auth_provider": "oidc-psc", "external_id": "899700000001"}]
    async with browser.http.get(
        f"{sso.synapse.base_url}/_synapse/admin/v2/users/{other['user_id']}",
        headers={"Authorization": f"Bearer {sso.synapse.admin_token}"},
    ) as resp:
        assert (await resp.json())["external_ids"] == []


async def test_an_account_the_directory_links_to_the_professional_is_the_one_used(
    sso: SsoStack, browser: SsoBrowser
) -> None:
    """Created earlier by an admin (password) and linked in the directory: the first PSC
    login of that professional lands on it, and records the PSC id on it."""
    from dossier_service.directory.accounts import link
    from tests.directory_support import connect

    existing = sso.synapse.register("jp.thomas", "mot-de-passe-de-test")
    conn = connect(sso.directory_db)
    link(conn, existing["user_id"], "810000000022", source="demande", actor="test")
    conn.close()
    sso.provider.set_user(
        "psc-sub-thomas",
        psc_claims("810000000022", last_name="THOMAS", first_name="JEAN-PIERRE", profession="10"),
    )
    status, login = await browser.psc_session("psc-sub-thomas")
    assert status == 200 and login["user_id"] == existing["user_id"], login
    async with browser.http.get(
        f"{sso.synapse.base_url}/_synapse/admin/v2/users/{existing['user_id']}",
        headers={"Authorization": f"Bearer {sso.synapse.admin_token}"},
    ) as resp:
        user = await resp.json()
    assert user["external_ids"] == [{"auth_provider": "oidc-psc", "external_id": "810000000022"}]


async def test_the_provider_picker_page_is_french(sso: SsoStack, browser: SsoBrowser) -> None:
    """A client that does not pick a provider itself gets Synapse's picker, in French."""
    status, location, _ = await browser.get(
        f"{sso.synapse.base_url}/_matrix/client/v3/login/sso/redirect"
        f"?redirectUrl={sso.synapse.profile.dossier_url}/connexion"
    )
    assert status == 302 and "/_synapse/client/pick_idp" in location
    status, _, body = await browser.get(urljoin(sso.synapse.base_url, location))
    text = visible_text(body)
    assert status == 200
    assert "Choisissez comment vous connecter" in text
    assert "Pro Santé Connect" in text and "Portail régional" in text


async def test_userinfo_answered_as_a_signed_jwt(sso: SsoStack, browser: SsoBrowser) -> None:
    """PSC's userinfo is a signed JWT: Synapse checks it against the provider's keys."""
    sso.provider.set_user(
        "psc-sub-mercier",
        psc_claims("810000000036", last_name="MERCIER", first_name="NOEMIE", profession="10"),
    )
    sso.provider.userinfo_as_jwt = True
    served = sso.provider.userinfo_jwts
    try:
        status, location, body = await browser.sso_login("psc-sub-mercier")
    finally:
        sso.provider.userinfo_as_jwt = False
    assert status == 302, visible_text(body)[:300]
    assert sso.provider.userinfo_jwts == served + 1
    status, login = await browser.token_login(location)
    assert status == 200 and login["user_id"] == f"@noemie.mercier:{sso.synapse.server_name}"
