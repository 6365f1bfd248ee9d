"""Synapse module enforcing the policy of patient rooms (see `rules`)."""

from .config import PatientRoomsConfig, parse_config
from .module import PatientRoomsModule

__all__ = ["PatientRoomsConfig", "PatientRoomsModule", "parse_config"]
