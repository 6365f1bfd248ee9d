"""The deployment's service accounts: the operator's admin account and the bot's account.

Registered once through the shared-secret API, their rate limits lifted. The admin's
access token is kept under var/secrets so the CLI never logs in again (login is rate
limited); the bot's account is created without a device: the bot logs in itself once with
its fixed device id.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from deployment.secrets import Secrets, read_or_create
from homeserver.admin_api import AdminApi, AdminApiError

ADMIN_LOCALPART = "cercle-admin"
ADMIN_TOKEN_FILE = "admin_access_token"


@dataclass(frozen=True)
class ServiceAccounts:
    admin_user_id: str
    admin_token: str = field(repr=False)
    bot_user_id: str


def admin_user_id(server_name: str) -> str:
    return f"@{ADMIN_LOCALPART}:{server_name}"


async def _ensure_admin(base_url: str, server_name: str, secrets: Secrets) -> str:
    token_path = secrets.path_of(ADMIN_TOKEN_FILE)
    if token_path.exists():
        token = token_path.read_text(encoding="utf-8").strip()
        async with AdminApi(base_url, token) as api:
            try:
                await api.whoami()
                return token
            except AdminApiError as exc:
                if exc.errcode not in ("M_UNKNOWN_TOKEN", "M_MISSING_TOKEN"):
                    raise
        token_path.unlink()
    async with AdminApi(base_url) as api:
        try:
            await api.register(
                secrets.registration_shared_secret,
                ADMIN_LOCALPART,
                secrets.admin_password,
                admin=True,
                displayname="Administration Cercle",
            )
        except AdminApiError as exc:
            if exc.errcode != "M_USER_IN_USE":
                raise
        login = await api.login(admin_user_id(server_name), secrets.admin_password, "CERCLE-CLI")
        token = login.access_token
    read_or_create(secrets.directory, ADMIN_TOKEN_FILE, lambda: token)
    return token


async def ensure_user_type(api: AdminApi, user_id: str, user_type: str) -> None:
    """Service accounts (``bot``, ``support``) are exempt from the Documents juridiques."""
    user = await api.get_user(user_id)
    if user is not None and user.get("user_type") != user_type:
        await api.create_or_modify_user(user_id, user_type=user_type)


async def ensure_service_accounts(
    base_url: str,
    server_name: str,
    secrets: Secrets,
    *,
    bot_localpart: str,
    bot_display_name: str,
) -> ServiceAccounts:
    admin_token = await _ensure_admin(base_url, server_name, secrets)
    bot_user_id = f"@{bot_localpart}:{server_name}"
    async with AdminApi(base_url, admin_token) as api:
        await api.override_ratelimit(admin_user_id(server_name))
        # Service accounts never accept the Documents juridiques: Synapse exempts these types.
        await ensure_user_type(api, admin_user_id(server_name), "support")
        if await api.get_user(bot_user_id) is None:
            # No device is created here: the bot logs in itself once, with its fixed device.
            await api.register(
                secrets.registration_shared_secret,
                bot_localpart,
                secrets.bot_password,
                displayname=bot_display_name,
            )
        await api.override_ratelimit(bot_user_id)
        await ensure_user_type(api, bot_user_id, "bot")
    return ServiceAccounts(admin_user_id(server_name), admin_token, bot_user_id)
