"""With `password_login: false`: an RPPS professional of the directory logs in with Pro Santé
Connect only; the social sector, admins and service accounts keep their password."""

from __future__ import annotations

import pytest
from support import password_login
from support_oidc import psc_claims

from dossier_service.directory.accounts import link
from tests.directory_support import connect

from .conftest import SsoBrowser, SsoStack

pytestmark = pytest.mark.integration


async def test_rpps_professionals_use_psc_the_others_keep_their_password(
    sso: SsoStack, browser: SsoBrowser
) -> None:
    http, base = browser.http, sso.synapse.base_url
    rpps = sso.synapse.register("sophie.sabourin", "mot-de-passe-de-test")
    conn = connect(sso.directory_db)
    link(conn, rpps["user_id"], "810000000029", source="demande", actor="test")
    conn.close()
    status, refused = await password_login(http, base, rpps["user_id"], "mot-de-passe-de-test")
    assert status == 403 and refused["errcode"] == "M_FORBIDDEN", refused
    assert "Connectez-vous avec Pro Santé Connect" in refused["fr.cercle.raison"]

    # the same person through PSC lands on that account
    sso.provider.set_user(
        "psc-sub-sabourin",
        psc_claims("810000000029", last_name="SABOURIN", first_name="SOPHIE", profession="91"),
    )
    status, session = await browser.psc_session("psc-sub-sabourin")
    assert status == 200 and session["user_id"] == rpps["user_id"]

    # a social worker (not in the RPPS), the bot: passwords still work
    social = sso.synapse.register("assistante.sociale", "mot-de-passe-de-test")
    status, _ = await password_login(http, base, social["user_id"], "mot-de-passe-de-test")
    assert status == 200
    status, _ = await password_login(http, base, sso.synapse.bot_user_id, sso.synapse.bot_password)
    assert status == 200
