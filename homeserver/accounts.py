"""The deployment's service accounts: the operator's admin account and the bot's accounts.

Registered once through the shared-secret API, their rate limits lifted. The admin's
access token is kept under var/secrets so the CLI never logs in again (login is rate
limited); the bot's accounts (one per shard, ``bot.shards``, the front first: bots/shards.py)
are created without a device: each shard's process logs in itself once with its fixed
device id.
"""

from __future__ import annotations

from collections.abc import Sequence
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


@dataclass(frozen=True)
class BotAccount:
    """One account of the bot as the deployment registers it (its shard's password and
    display name: ``cercle/bot_instances.py``)."""

    user_id: str
    password: str = field(repr=False)
    display_name: str

    @property
    def localpart(self) -> str:
        return self.user_id[1:].split(":", 1)[0]


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
    base_url: str, server_name: str, secrets: Secrets, *, bots: Sequence[BotAccount]
) -> ServiceAccounts:
    """The admin account, then every account of the bot (``bots``, the front first), each
    a ``bot`` account (exempt from the Documents juridiques) without rate limits."""
    if not bots:
        raise ValueError("le bot a au moins un compte (bot.shards)")
    admin_token = await _ensure_admin(base_url, server_name, secrets)
    async with AdminApi(base_url, admin_token) as api:
        await api.override_ratelimit(admin_user_id(server_name))
        # Service accounts never accept the Documents juridiques: Synapse exempts these types.
        await ensure_user_type(api, admin_user_id(server_name), "support")
        for bot in bots:
            if await api.get_user(bot.user_id) is None:
                # No device is created here: the bot logs in itself once, with its fixed device.
                await api.register(
                    secrets.registration_shared_secret,
                    bot.localpart,
                    bot.password,
                    displayname=bot.display_name,
                )
            await api.override_ratelimit(bot.user_id)
            await ensure_user_type(api, bot.user_id, "bot")
    return ServiceAccounts(admin_user_id(server_name), admin_token, bots[0].user_id)
