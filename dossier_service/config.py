"""The dossier service's frozen, typed configuration, built from the deployment profile.

The profile's ``dossier`` section is typed and checked as the profile loads
(``deployment.settings``); `DossierConfig` is a `ConfigModel` built by the same loader
(``deployment.typed_config``): a bad value raises ``ProfileError`` naming the key, in French.
Its secrets (the session key, the service token, the account gateway's secret) are read from
their files (``deployment.secrets``), never from the profile.
"""

from __future__ import annotations

import secrets as _random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field

from deployment.typed_config import ConfigModel, validated
from dossier_service.directory.settings import DirectorySettings, settings_from_section

DEFAULT_DOCUMENT_CATEGORIES: tuple[str, ...] = (
    "compte rendu",
    "ordonnance",
    "bilan",
    "courrier",
    "photo",
    "administratif",
    "autre",
)
DEFAULT_LIFELINE_THEMES: tuple[str, ...] = (
    "Sortie d'hospitalisation",
    "Intervention / Réunion",
    "Suivi / Réunion",
    "Évaluation",
    "Hospitalisation",
)
DEFAULT_EVENT_TYPES: tuple[str, ...] = (
    "RDV",
    "RDV astreinte",
    "RDV bureau",
    "Visite à domicile",
    "Réunion de concertation",
)
DEFAULT_TASK_TYPES: Mapping[str, tuple[str, ...]] = {
    "Coordination": ("Appel", "Réunion", "Orientation"),
    "Soins": ("Pansement", "Prise de sang", "Traitement"),
    "Social": ("Aide à domicile", "Dossier APA", "Portage de repas"),
    "Administratif": ("Courrier", "Rendez-vous", "Transport"),
}
DEFAULT_FILE_STATUSES: tuple[str, ...] = ("actif", "en veille", "clos")


class DossierConfig(ConfigModel):
    """Everything the dossier service needs; no I/O happens on construction."""

    database_url: str
    documents_dir: Path
    homeserver_url: str  # server side: where the service checks OpenID tokens (may be internal)
    server_name: str
    session_key: str = Field(repr=False)
    service_token: str = Field(repr=False)
    bind_address: str = "127.0.0.1"
    port: int = 8090
    public_url: str = "http://127.0.0.1:8090"
    element_origin: str = "http://localhost:8080"
    documents_max_size: int = 25 * 1024 * 1024
    json_max_size: int = 256 * 1024
    admins: frozenset[str] = frozenset()
    session_lifetime_seconds: int = 12 * 3600
    secure_cookies: bool = False
    document_categories: tuple[str, ...] = DEFAULT_DOCUMENT_CATEGORIES
    lifeline_themes: tuple[str, ...] = DEFAULT_LIFELINE_THEMES
    event_types: tuple[str, ...] = DEFAULT_EVENT_TYPES
    task_types: Mapping[str, tuple[str, ...]] = Field(
        default_factory=lambda: dict(DEFAULT_TASK_TYPES)
    )
    file_statuses: tuple[str, ...] = DEFAULT_FILE_STATUSES
    forms_dir: Path | None = None
    sql_echo: bool = False
    # browser side: the homeserver as people's browsers reach it (the login page's password
    # login); empty: the same as ``homeserver_url``
    public_homeserver_url: str = ""
    # issue 12: the account gateway tells whether a person's Matrix account is still active
    # (asked at most every ``account_check_seconds`` per person); None: not checked
    account_gateway_socket: Path | None = None
    account_gateway_secret: str = Field(default="", repr=False)
    account_check_seconds: float = 300.0
    # the directory of professionals (profile section ``annuaire``), same database
    directory: DirectorySettings = DirectorySettings()
    legal_url: str = ""  # the Documents juridiques (Synapse's consent page), footer link

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def browser_homeserver_url(self) -> str:
        """The homeserver URL given to browsers (login page, CSP ``connect-src``)."""
        return (self.public_homeserver_url or self.homeserver_url).rstrip("/")


def default_database_url(var_dir: Path) -> str:
    return f"sqlite+aiosqlite:///{var_dir / 'dossier' / 'dossier.db'}"


def normalise_database_url(url: str) -> str:
    """Accept plain ``postgresql://`` / ``sqlite://`` URLs and pick the async drivers."""
    if url.startswith(("postgres://", "postgresql://")):
        return "postgresql+asyncpg://" + url.split("://", 1)[1]
    if url.startswith("sqlite://") and not url.startswith("sqlite+"):
        return "sqlite+aiosqlite://" + url.split("://", 1)[1]
    return url


def database_url_of(profile: Any) -> str:
    """The dossier's database (with the directory's tables), async driver."""
    section = profile.section("dossier")
    return normalise_database_url(
        str(section.get("database_url") or default_database_url(profile.var_dir))
    )


def config_from_profile(profile: Any, secrets: Any) -> DossierConfig:
    """Build the config from ``deployment.profile.Profile`` and ``deployment.secrets.Secrets``."""
    from deployment.profile import parse_size
    from deployment.secrets import read_or_create
    from homeserver import account_gateway

    section = profile.settings.dossier
    var_dir: Path = profile.var_dir
    public_url = section.public_url or f"http://{section.bind_address}:{section.port}"
    lists: dict[str, object] = {
        key: tuple(value)
        for key in ("document_categories", "lifeline_themes", "event_types", "file_statuses")
        if (value := getattr(section, key)) is not None
    }
    if section.task_types is not None:
        lists["task_types"] = {k: tuple(v or ()) for k, v in section.task_types.items()}
    values = {
        "database_url": database_url_of(profile),
        "documents_dir": section.documents_dir or var_dir / "dossier" / "documents",
        "homeserver_url": (section.homeserver_url or profile.homeserver_url).rstrip("/"),
        "public_homeserver_url": (section.public_homeserver_url or profile.public_baseurl).rstrip(
            "/"
        ),
        "server_name": profile.server_name,
        "session_key": secrets.dossier_session_key,
        "service_token": secrets.dossier_service_token,
        "bind_address": section.bind_address,
        "port": section.port,
        "public_url": public_url.rstrip("/"),
        "element_origin": section.element_origin or "",
        "documents_max_size": parse_size(section.documents_max_size or "25M"),
        "json_max_size": parse_size(section.json_max_size or "256K"),
        "admins": frozenset(section.admins),
        "secure_cookies": public_url.startswith("https://"),
        **lists,
        "forms_dir": section.forms_dir or profile.root / "config" / "forms",
        "account_gateway_socket": account_gateway.socket_path(var_dir),
        "account_gateway_secret": read_or_create(
            Path(secrets.directory),
            account_gateway.SECRET_FILE,
            lambda: _random.token_urlsafe(32),
        ),
        "directory": settings_from_section(profile.settings.annuaire, var_dir),
        "legal_url": f"{profile.public_baseurl}_matrix/consent",
    }
    return validated(DossierConfig, values, "section dossier du profil", "dossier.")
