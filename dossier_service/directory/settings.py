"""The directory's part of the dossier's settings (profile section ``annuaire``).

Everything else the directory needs (database, server name, URLs, the account gateway, the
signing key of its forms) is the dossier's own :class:`dossier_service.config.DossierConfig`.
"""

from __future__ import annotations

from pathlib import Path

from deployment.settings import Annuaire
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


def settings_from_section(section: Annuaire, var_dir: Path) -> DirectorySettings:
    """From the profile's typed ``annuaire`` section (checked as the profile loads)."""
    return DirectorySettings(
        activation_hours=section.activation_hours,
        request_limit=section.request_limit,
        request_window_seconds=section.request_window_seconds,
        smtp=smtp_from_section(section.smtp.model_dump() if section.smtp else None),
        legacy_database=legacy_database_path({"database": section.database}, var_dir),
    )
