"""Synapse module: who may still log in with a password once Pro Santé Connect is there.

Loaded through ``modules:`` when ``homeserver.sso.password_login`` is false. Synapse keeps
password login on (the bot and the operator's account need it); this module refuses it,
at login (spam checker ``check_login_for_spam``, a documented hook), to the account of an
active RPPS professional of the directory: every one of them has a CPS card or the e-CPS
app. Admins, service accounts (user_type bot/support) and everyone else (social sector,
ADELI, people absent from the extract) keep their password. Logins through SSO are never
concerned.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, Literal

from synapse.module_api import NOT_SPAM, ModuleApi
from synapse.module_api.errors import Codes, ConfigError

from ..config_checks import known_keys_only
from . import directory_link

MESSAGE = (
    "Connectez-vous avec Pro Santé Connect (carte CPS ou application e-CPS) : la connexion "
    "par mot de passe n'est plus ouverte aux professionnels inscrits au RPPS sur ce serveur."
)


class PasswordLoginPolicy:
    def __init__(self, config: str, api: ModuleApi) -> None:
        self._directory = config
        self._api = api
        api.register_spam_checker_callbacks(check_login_for_spam=self.check_login_for_spam)

    @staticmethod
    def parse_config(config: Mapping[str, Any] | None) -> str:
        raw = known_keys_only(config, {"directory_database"})
        database = raw.get("directory_database")
        if not isinstance(database, str) or not database:
            raise ConfigError(
                "base du dossier (qui contient l'annuaire) manquante", path=["directory_database"]
            )
        return database

    async def check_login_for_spam(
        self,
        user_id: str,
        device_id: str | None,
        initial_display_name: str | None,
        request_info: Collection[tuple[str | None, str]],
        auth_provider_id: str | None = None,
    ) -> Literal["NOT_SPAM"] | Codes | tuple[Codes, dict[str, Any]]:
        if auth_provider_id is not None:  # single sign-on
            return NOT_SPAM
        info = await self._api.get_userinfo_by_id(user_id)
        if info is None or info.is_admin or info.user_type in ("bot", "support"):
            return NOT_SPAM
        if not await self._api.defer_to_thread(
            directory_link.linked_to_active_rpps, self._directory, user_id
        ):
            return NOT_SPAM
        return Codes.FORBIDDEN, {"fr.cercle.raison": MESSAGE}
