"""Checks shared by the configurations of Cercle's Synapse modules (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Set
from typing import Any

from synapse.module_api.errors import ConfigError


def known_keys_only(raw: Any, keys: Set[str]) -> Mapping[str, Any]:
    """``raw`` as a mapping with only ``keys``, or Synapse's ``ConfigError`` naming the
    first unknown key (Synapse then refuses to start with that message)."""
    if not isinstance(raw, Mapping):
        raise ConfigError("la configuration du module doit être un dictionnaire")
    unknown = sorted(str(k) for k in raw if k not in keys)
    if unknown:
        raise ConfigError(
            f"clé inconnue (attendues : {', '.join(sorted(keys))})", path=[unknown[0]]
        )
    return raw
