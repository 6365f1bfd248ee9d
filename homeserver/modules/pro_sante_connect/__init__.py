"""Pro Santé Connect: the user-mapping provider of Synapse's OpenID Connect SSO."""

from .claims import ClaimsRefused, Decision, DirectoryEntry, Professional, decide
from .config import PscMappingConfig, parse_config
from .mapping import PscMappingProvider
from .password_policy import PasswordLoginPolicy

__all__ = [
    "ClaimsRefused",
    "Decision",
    "DirectoryEntry",
    "PasswordLoginPolicy",
    "Professional",
    "PscMappingConfig",
    "PscMappingProvider",
    "decide",
    "parse_config",
]
