"""The dossier service's frozen, typed configuration, built from the deployment profile."""

from __future__ import annotations

import secrets as _random
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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


class ConfigError(Exception):
    """A bad configuration value; the message names the key (French)."""


@dataclass(frozen=True)
class DossierConfig:
    """Everything the dossier service needs; no I/O happens on construction."""

    database_url: str
    documents_dir: Path
    homeserver_url: str  # server side: where the service checks OpenID tokens (may be internal)
    server_name: str
    session_key: str
    service_token: str
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
    task_types: Mapping[str, tuple[str, ...]] = field(
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
    account_gateway_secret: str = field(default="", repr=False)
    account_check_seconds: float = 300.0
    # the directory of professionals (profile section ``annuaire``), same database
    directory: DirectorySettings = field(default_factory=DirectorySettings)
    legal_url: str = ""  # the Documents juridiques (Synapse's consent page), footer link

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def browser_homeserver_url(self) -> str:
        """The homeserver URL given to browsers (login page, CSP ``connect-src``)."""
        return (self.public_homeserver_url or self.homeserver_url).rstrip("/")


def _tuple_of_str(
    section: Mapping[str, Any], key: str, default: tuple[str, ...]
) -> tuple[str, ...]:
    value = section.get(key)
    if value is None:
        return default
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ConfigError(f"dossier.{key} doit être une liste de textes non vides")
    return tuple(value)


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

    section = profile.section("dossier")
    var_dir: Path = profile.var_dir
    raw_task_types = section.get("task_types")
    task_types: Mapping[str, tuple[str, ...]] = dict(DEFAULT_TASK_TYPES)
    if raw_task_types is not None:
        if not isinstance(raw_task_types, Mapping):
            raise ConfigError("dossier.task_types doit associer un type à ses sous-types")
        task_types = {str(k): tuple(str(s) for s in (v or [])) for k, v in raw_task_types.items()}
    admins = section.get("admins") or []
    if not isinstance(admins, list):
        raise ConfigError("dossier.admins doit être une liste d'identifiants Matrix")
    public_url = str(
        section.get("public_url") or f"http://{section['bind_address']}:{section['port']}"
    )
    forms_dir = section.get("forms_dir")
    return DossierConfig(
        database_url=database_url_of(profile),
        documents_dir=Path(section.get("documents_dir") or var_dir / "dossier" / "documents"),
        homeserver_url=str(section.get("homeserver_url") or profile.homeserver_url).rstrip("/"),
        public_homeserver_url=str(
            section.get("public_homeserver_url") or profile.public_baseurl
        ).rstrip("/"),
        server_name=profile.server_name,
        session_key=secrets.dossier_session_key,
        service_token=secrets.dossier_service_token,
        bind_address=str(section["bind_address"]),
        port=int(section["port"]),
        public_url=public_url.rstrip("/"),
        element_origin=str(section.get("element_origin") or ""),
        documents_max_size=parse_size(section.get("documents_max_size") or "25M"),
        json_max_size=parse_size(section.get("json_max_size") or "256K"),
        admins=frozenset(str(a) for a in admins),
        secure_cookies=public_url.startswith("https://"),
        document_categories=_tuple_of_str(
            section, "document_categories", DEFAULT_DOCUMENT_CATEGORIES
        ),
        lifeline_themes=_tuple_of_str(section, "lifeline_themes", DEFAULT_LIFELINE_THEMES),
        event_types=_tuple_of_str(section, "event_types", DEFAULT_EVENT_TYPES),
        task_types=task_types,
        file_statuses=_tuple_of_str(section, "file_statuses", DEFAULT_FILE_STATUSES),
        forms_dir=Path(forms_dir) if forms_dir else profile.root / "config" / "forms",
        account_gateway_socket=account_gateway.socket_path(var_dir),
        account_gateway_secret=read_or_create(
            Path(secrets.directory),
            account_gateway.SECRET_FILE,
            lambda: _random.token_urlsafe(32),
        ),
        directory=settings_from_section(profile.data.get("annuaire"), var_dir),
        legal_url=f"{profile.public_baseurl}_matrix/consent",
    )
