"""The directory's part of the dossier's settings (profile section ``annuaire``).

Everything else the directory needs (database, server name, URLs, the account gateway, the
signing key of its forms) is the dossier's own :class:`dossier_service.config.DossierConfig`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from deployment.typed_config import ConfigModel

from .mail import SmtpSettings, smtp_from_section
from .store import legacy_database_path


class DirectorySettings(ConfigModel):
    activation_hours: int = 72  # lifetime of a one-time activation link
    request_limit: int = 5  # account requests per IP ...
    request_window_seconds: int = 600  # ... per window
    smtp: SmtpSettings | None = None  # activation links e-mailed when configured
    # the directory's own SQLite file of before issue 14, copied into the dossier's
    # database once at start (dossier_service.directory.legacy); None: nothing to copy
    legacy_database: Path | None = None


def settings_from_section(section: Mapping[str, Any] | None, var_dir: Path) -> DirectorySettings:
    section = section or {}
    return DirectorySettings(
        activation_hours=int(section.get("activation_hours", 72)),
        request_limit=int(section.get("request_limit", 5)),
        request_window_seconds=int(section.get("request_window_seconds", 600)),
        smtp=smtp_from_section(section.get("smtp")),
        legacy_database=legacy_database_path(section, var_dir),
    )
