"""Pro Santé Connect: the user-mapping provider of Synapse's OpenID Connect SSO."""

from .claims import ClaimsRefused, Decision, DirectoryEntry, Professional, decide
from .config import PscMappingConfig, parse_config
from .mapping import PscMappingProvider

__all__ = [
    "ClaimsRefused",
    "Decision",
    "DirectoryEntry",
    "Professional",
    "PscMappingConfig",
    "PscMappingProvider",
    "decide",
    "parse_config",
]
