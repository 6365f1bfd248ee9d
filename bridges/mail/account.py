"""The bridge's own Matrix account (``@cercle-courrier``), registered once through the
shared-secret API like the bot's, its rate limits lifted; its password is a deployment
secret under ``var/secrets``. The bridge logs in itself, once, with its fixed device."""

from __future__ import annotations

import secrets as _random

from deployment.secrets import Secrets, read_or_create
from homeserver.accounts import ensure_user_type
from homeserver.admin_api import AdminApi

PASSWORD_SECRET = "mail_bridge_password"
CROSS_SIGNING_SECRET = "mail_bridge_cross_signing_key"
PICKLE_SECRET = "mail_bridge_pickle_key"


def bridge_secret(secrets: Secrets, name: str) -> str:
    return read_or_create(secrets.directory, name, lambda: _random.token_urlsafe(32))


async def ensure_bridge_account(
    base_url: str, admin_token: str, secrets: Secrets, *, user_id: str, display_name: str
) -> None:
    localpart = user_id[1:].split(":", 1)[0]
    async with AdminApi(base_url, admin_token) as api:
        if await api.get_user(user_id) is None:
            await api.register(
                secrets.registration_shared_secret,
                localpart,
                bridge_secret(secrets, PASSWORD_SECRET),
                displayname=display_name,
            )
        await api.override_ratelimit(user_id)
        # a service account: its mail messages are not held back by the Documents juridiques
        await ensure_user_type(api, user_id, "bot")
