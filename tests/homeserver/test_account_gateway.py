"""Issue 12, finding 8: the account gateway holds the admin token for the dossier, and does
only what approvals and activations need: create a new approved non-admin account, set the
first password of an account never used. Pure rules, then the real service on a Unix socket
against a real Synapse."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pytest

from homeserver.account_gateway import creation_refusal, password_refusal
from homeserver.account_gateway.client import GatewayClient
from homeserver.accounts import admin_user_id
from homeserver.admin_api import AdminApi, AdminApiError


def test_creation_rules() -> None:
    ok = {"displayname": "X", "approved": True, "threepids": [], "external_ids": []}
    assert creation_refusal(None, ok) is None
    assert creation_refusal({"name": "@a:x"}, ok) is not None  # never modifies an account
    assert creation_refusal(None, {**ok, "admin": True}) is not None
    assert creation_refusal(None, {**ok, "password": "p"}) is not None
    assert creation_refusal(None, {**ok, "approved": False}) is not None


def test_password_rules() -> None:
    assert password_refusal({"admin": False}, []) is None
    assert password_refusal(None, []) is not None
    assert password_refusal({"admin": True}, []) is not None
    assert password_refusal({"deactivated": True}, []) is not None
    assert password_refusal({}, [{"device_id": "D"}]) is not None  # in use


@pytest.mark.integration
async def test_the_gateway_does_only_what_approvals_need(
    account_gateway: tuple[Path, str], synapse: Any, user_factory: Any
) -> None:
    socket, secret = account_gateway
    in_use = user_factory()  # logged in: has a device
    fresh = f"@neuf-{secrets.token_hex(3)}:{synapse.server_name}"
    async with GatewayClient(socket, secret) as client:
        assert await client.get_user(in_use.user_id) == {"name": in_use.user_id}
        assert await client.get_user(fresh) is None
        with pytest.raises(AdminApiError) as refused:
            await client.create_or_modify_user(in_use.user_id, displayname="Pirate", approved=True)
        assert refused.value.status == 403
        with pytest.raises(AdminApiError):
            await client.create_or_modify_user(fresh, displayname="X", approved=True, admin=True)
        with pytest.raises(AdminApiError) as refused:
            await client.reset_password(in_use.user_id, "Mot-de-passe-vole-123")
        assert refused.value.status == 403
        with pytest.raises(AdminApiError):  # the homeserver's admin account
            await client.reset_password(admin_user_id(synapse.server_name), "Mot-de-passe-vole-123")
        await client.create_or_modify_user(fresh, displayname="NEUF Compte", approved=True)
        await client.reset_password(fresh, "Premier-mot-de-passe-123")
    async with AdminApi(synapse.base_url, synapse.admin_token) as admin:
        created = await admin.get_user(fresh)
        assert created is not None and not created.get("admin")
        assert (await admin.get_user(in_use.user_id) or {}).get("displayname") != "Pirate"
    async with GatewayClient(socket, "mauvais-secret") as intruder:
        with pytest.raises(AdminApiError) as refused:
            await intruder.get_user(fresh)
        assert refused.value.status == 401


def test_the_dossier_process_gets_no_admin_token(tmp_path: Path) -> None:
    """The dossier's settings (the directory's included) carry the gateway, not the token."""
    from dossier_service.config import DossierConfig
    from dossier_service.directory.settings import DirectorySettings

    names = set(DossierConfig.model_fields) | set(DirectorySettings.model_fields)
    assert not any("admin_token" in name for name in names)
    assert {"account_gateway_socket", "account_gateway_secret"} <= names


@pytest.mark.integration
async def test_a_deactivated_account_loses_its_dossier_sessions(
    account_gateway: tuple[Path, str],
    synapse: Any,
    user_factory: Any,
    aiohttp_client: Any,
    tmp_path: Path,
) -> None:
    """However the account is deactivated (here straight through Synapse's admin API), the
    dossier finds out through the gateway and ends the sessions (issue 12, finding 5)."""
    from dossier_service import auth
    from dossier_service.app import create_app
    from dossier_service.config import DossierConfig
    from dossier_service.migrate import upgrade

    socket, secret = account_gateway
    config = DossierConfig(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'dossier.db'}",
        documents_dir=tmp_path / "documents",
        homeserver_url=synapse.base_url,
        server_name=synapse.server_name,
        session_key="cle-de-session",
        service_token="jeton-de-service-" + "x" * 20,
        account_gateway_socket=socket,
        account_gateway_secret=secret,
        account_check_seconds=0,
    )
    await upgrade(config.database_url)
    client = await aiohttp_client(create_app(config, with_pages=False))
    person = user_factory()
    headers = {
        "Authorization": "Bearer "
        + auth.issue_session(config.session_key, person.user_id, lifetime=3600)
    }
    assert (await client.get("/api/v1/me", headers=headers)).status == 200
    async with AdminApi(synapse.base_url, synapse.admin_token) as admin:
        await admin.deactivate_user(person.user_id, erase=False)
    assert (await client.get("/api/v1/me", headers=headers)).status == 401
