"""Synapse entry point: the user-mapping provider of the Pro Santé Connect SSO.

Named in ``oidc_providers[].user_mapping_provider.module`` (rendered from the profile's
``homeserver.sso``). Synapse calls it during the OpenID Connect callback:

- `get_remote_user_id`: the national professional id (``SubjectNameID``), so a CPS card
  and the e-CPS app land on the same account, and a second login finds it again;
- `map_user_attributes`: the localpart (the account already linked to this professional
  in the directory, else a free ``prenom.nom``), and the display name "NOM Prénom —
  Profession, Ville" of the directory;
- after Synapse created the account (`on_user_registration`): an active RPPS entry is
  approved at once (MSC3866) and the account is linked to its directory entry; anyone
  else waits for an administrator, like other requests.

Every decision is taken by the pure functions of `claims`. Logs carry the Matrix id and
the outcome, never a claim.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from synapse.module_api import ModuleApi, UserID

from dossier_service.directory.account_requests import localpart_for

from . import directory_link
from .claims import Decision, decide, national_id_of, professional_of
from .config import PscMappingConfig, parse_config

logger = logging.getLogger(__name__)

MAX_PENDING = 1000  # registrations in flight remembered between mapping and creation
MAX_LOCALPART_TRIES = 50


class PscMappingProvider:
    def __init__(self, config: PscMappingConfig, module_api: ModuleApi) -> None:
        self._config = config
        self._api = module_api
        self._pending: OrderedDict[str, tuple[str, Decision]] = OrderedDict()
        module_api.register_account_validity_callbacks(
            on_user_registration=self.on_user_registration
        )

    @staticmethod
    def parse_config(config: Mapping[str, Any] | None) -> PscMappingConfig:
        return parse_config(config)

    def get_remote_user_id(self, userinfo: Mapping[str, Any]) -> str:
        return national_id_of(userinfo, self._config.national_id_claim)

    async def map_user_attributes(
        self, userinfo: Mapping[str, Any], token: Mapping[str, Any], failures: int
    ) -> dict[str, Any]:
        person = professional_of(userinfo, self._config.national_id_claim)
        entry = await self._api.defer_to_thread(
            directory_link.lookup, self._config.directory_database, person.national_id
        )
        decision = decide(person, entry)
        localpart, existing = await self._localpart(
            person.first_name, person.last_name, decision, failures
        )
        if not existing:  # a new account: approved and linked when Synapse creates it
            self._remember(localpart, person.national_id, decision)
        return {
            "localpart": localpart,
            "display_name": decision.display_name,
            "emails": [],
            "picture": None,
            "confirm_localpart": False,
        }

    async def get_extra_attributes(
        self, userinfo: Mapping[str, Any], token: Mapping[str, Any]
    ) -> dict[str, Any]:
        return {}

    async def _localpart(
        self, first_name: str, last_name: str, decision: Decision, failures: int
    ) -> tuple[str, bool]:
        """(localpart, is an existing account): the account already linked to this professional (Synapse's
        ``allow_existing_users`` then logs into it), else the first free ``prenom.nom[N]``:
        an existing account of someone else is never returned, so it cannot be taken over."""
        server = self._api.server_name
        if decision.existing_mxid:
            existing = UserID.from_string(decision.existing_mxid)
            if existing.domain == server:
                return str(existing.localpart), True
        base = localpart_for(first_name, last_name)
        for n in range(failures + 1, failures + 1 + MAX_LOCALPART_TRIES):
            candidate = base if n == 1 else f"{base}{n}"
            if await self._api.check_user_exists(f"@{candidate}:{server}") is None:
                return candidate, False
        raise ValueError("Aucun identifiant Matrix libre pour ce nom : contactez l'administrateur.")

    def _remember(self, localpart: str, national_id: str, decision: Decision) -> None:
        self._pending[localpart] = (national_id, decision)
        self._pending.move_to_end(localpart)
        while len(self._pending) > MAX_PENDING:
            self._pending.popitem(last=False)

    async def on_user_registration(self, user_id: str) -> None:
        """Synapse created ``user_id``; if this provider mapped it, approve and link it."""
        pending = self._pending.pop(UserID.from_string(user_id).localpart, None)
        if pending is None:
            return  # another provider's, or a password account: not ours to decide
        national_id, decision = pending
        if decision.approve:
            await approve(self._api, user_id)
        if decision.link:
            await self._api.defer_to_thread(
                directory_link.record_link,
                self._config.directory_database,
                user_id,
                national_id,
                source=self._config.provider_name,
            )
        logger.info(
            "pro_sante_connect: account %s created (approved=%s, linked=%s)",
            user_id,
            decision.approve,
            decision.link,
        )


async def approve(api: ModuleApi, user_id: str) -> None:
    """Mark ``user_id`` approved (MSC3866). The module API has no call for it (Synapse
    1.163): this uses the store the module API holds, the same call as the Admin API's
    ``PUT /_synapse/admin/v2/users/<id> {"approved": true}``. The SSO test against the real
    Synapse fails if the seam moves."""
    await api._store.update_user_approval_status(UserID.from_string(user_id), True)
