"""What every CLI command needs: the profile, the secrets, the operator's admin token."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cercle.errors import CliError
from deployment.profile import PROJECT_ROOT, Profile, ProfileError, load_profile
from deployment.secrets import Secrets
from homeserver.accounts import ADMIN_TOKEN_FILE
from homeserver.admin_api import AdminApi


def command_line(*words: str) -> str:
    """How the operator types a command for the profile in use: « .venv/bin/cercle --profile
    region down » on the region (a bare « cercle down » would stop the default one)."""
    shown = [".venv/bin/cercle"]
    named = os.environ.get("CERCLE_CONFIG")  # set by --profile / --config (cercle/cli.py)
    if named:
        path = Path(named)
        if path.parent == PROJECT_ROOT / "config" and path.suffix == ".yaml":
            shown += ["--profile", path.stem]
        else:
            shown += ["--config", str(path)]
    return " ".join([*shown, *words])


@dataclass(frozen=True)
class CliContext:
    profile: Profile
    secrets: Secrets

    @property
    def admin_token(self) -> str:
        path = self.secrets.path_of(ADMIN_TOKEN_FILE)
        if not path.exists():
            raise CliError(
                "Cercle n'a jamais été démarré avec ces données : lancez d'abord « make up »"
            )
        return path.read_text(encoding="utf-8").strip()

    @property
    def directory_database(self) -> str:
        """The dossier's database, which holds the directory, ready: schema migrated and a
        directory of before issue 14 (its own ``annuaire.db``) copied in, as the dossier
        does at start."""
        from dossier_service.config import database_url_of
        from dossier_service.directory.legacy import LegacyError, import_legacy_database
        from dossier_service.directory.store import legacy_database_path
        from dossier_service.migrate import upgrade_blocking

        url = database_url_of(self.profile)
        upgrade_blocking(url)
        legacy = legacy_database_path(self.profile.data.get("annuaire") or {}, self.profile.var_dir)
        try:
            import_legacy_database(url, legacy)
        except LegacyError as exc:
            raise CliError(f"annuaire : {exc}") from exc
        return url

    def admin_api(self) -> AdminApi:
        return AdminApi(self.profile.admin_url, self.admin_token)


def load_context(config: Path | None = None) -> CliContext:
    try:
        profile = load_profile(override_file=config)
    except ProfileError as exc:
        raise CliError(str(exc)) from exc
    return CliContext(profile, Secrets.load_or_create(profile.var_dir))
