"""Typed, frozen configuration of the Pro Santé Connect user-mapping provider.

Synapse hands the provider the ``user_mapping_provider.config`` mapping of its entry in
``oidc_providers`` (rendered by `homeserver/render.py` from ``homeserver.sso`` of the
profile); `parse_config` turns it into a `PscMappingConfig` or raises Synapse's
`ConfigError` naming the bad key, so Synapse refuses to start with that message.

Sample::

    user_mapping_provider:
      module: homeserver.modules.pro_sante_connect.PscMappingProvider
      config:
        directory_database: sqlite+aiosqlite:////srv/cercle/var/dossier/dossier.db  # the dossier's
        national_id_claim: SubjectNameID     # PSC's national professional id
        provider_name: Pro Santé Connect     # how the audit rows name the provider
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from synapse.module_api.errors import ConfigError

from ..config_checks import known_keys_only

_KEYS = frozenset({"directory_database", "national_id_claim", "provider_name"})


@dataclass(frozen=True)
class PscMappingConfig:
    directory_database: str
    national_id_claim: str = "SubjectNameID"
    provider_name: str = "Pro Santé Connect"


def parse_config(raw: Mapping[str, Any] | None) -> PscMappingConfig:
    raw = known_keys_only(raw, _KEYS)
    values: dict[str, str] = {}
    for key in sorted(_KEYS):
        if key not in raw:
            continue
        value = raw[key]
        if not isinstance(value, str) or not value.strip():
            raise ConfigError("doit être une chaîne non vide", path=[key])
        values[key] = value.strip()
    if "directory_database" not in values:
        raise ConfigError(
            "base du dossier (qui contient l'annuaire) manquante", path=["directory_database"]
        )
    return PscMappingConfig(**values)
