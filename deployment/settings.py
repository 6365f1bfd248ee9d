"""The deployment profile as typed settings (pydantic-settings): one model per component's
section, every key declared, an unknown key an error naming the key and where it was written.

Sources, later wins (as before): ``config/default.yaml``, ``config/local.yaml``, the file named
by ``CERCLE_CONFIG`` (or passed), ``CERCLE__SECTION__KEY=value`` environment variables (values
read as YAML scalars), then the ``extra`` mapping of tests. Each source is checked on its own
against the models, so that the error names the file (or variable) holding the bad key; the
merged result is then validated once (types, nested sections).

Values whose rules belong to a component that checks them itself with its own French
messages (the bot's section: ``bots/config.py``; the mail bridge's: ``bridges/mail/config.py``)
are declared here by key and read as given.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, get_origin

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Size = int | str  # bytes, or "50M" / "256K" (deployment.profile.parse_size)


class PublicListener(Section):
    enabled: bool = False
    bind_address: str = "0.0.0.0"
    port: int = 8448


class SynapseDatabase(Section):
    engine: Literal["sqlite", "postgres"] = "sqlite"
    host: str = "127.0.0.1"
    port: int = 5432
    user: str = "postgres"
    password: str = ""
    name: str = "synapse"
    cp_min: int = 2  # connections per Synapse process (pool bounds; region: 1–5)
    cp_max: int = 10


class SsoProvider(Section):
    enabled: bool = False
    name: str | None = None
    issuer: str | None = None
    client_id: str | None = None
    scopes: list[str] = ["openid"]
    acr_values: str | None = None
    user_profile_method: str = "auto"
    national_id_claim: str = "SubjectNameID"
    icon_mxc: str | None = None
    brand: str | None = None
    client_auth_method: str | None = None


class Sso(Section):
    password_login: bool = True
    # provider ids are checked by homeserver/sso.py (its message lists the known ones)
    providers: dict[str, SsoProvider] = {}


class Legal(Section):
    enabled: bool = True
    version: str = "1.0"


class Homeserver(Section):
    bind_address: str = "127.0.0.1"
    port: int = 8008
    public_baseurl: str | None = None
    public_listener: PublicListener = PublicListener()
    database: SynapseDatabase = SynapseDatabase()
    max_upload_size: Size = "50M"
    federation_whitelist: list[str] = []
    presence: bool = True
    log_level: str = "WARNING"
    modules: list[dict[str, Any]] = []
    sso: Sso = Sso()
    legal: Legal = Legal()
    rate_limits: dict[str, int | float] = {}


class Escalation(Section):
    interval_minutes: Any = 10
    max_reminders: Any = 6


class Bot(Section):
    localpart: str = "cercle-bot"
    display_name: str = "Cercle"
    device_id: str = "CERCLEBOT"
    command_prefix: Any = "!"
    escalation: Escalation = Escalation()
    flag_power_level: Any = 0
    admin_power_level: Any = 50
    motif_max_length: Any = 500
    label_max_length: Any = 80
    history_fallback_seconds: Any = 180
    history_watch_days: Any = 3


class Dossier(Section):
    bind_address: str = "127.0.0.1"
    port: int = 8090
    public_url: str | None = None
    database_url: str | None = None
    documents_max_size: Size = "25M"
    json_max_size: Size | None = None
    documents_dir: str | None = None
    forms_dir: str | None = None
    element_origin: str | None = "http://localhost:8080"
    homeserver_url: str | None = None
    public_homeserver_url: str | None = None
    admins: list[str] = []
    document_categories: list[str] | None = None
    lifeline_themes: list[str] | None = None
    event_types: list[str] | None = None
    task_types: dict[str, list[str] | None] | None = None
    file_statuses: list[str] | None = None


class Smtp(Section):
    host: str
    port: int = 25
    sender: str | None = None
    starttls: bool = False
    username: str | None = None
    password: str | None = None


class Annuaire(Section):
    # since issue 14 the directory is in the dossier's database; this names the directory's
    # own file of before, copied in once at start
    database: str | None = None
    activation_hours: int = 72
    request_limit: int = 5
    request_window_seconds: int = 600
    smtp: Smtp | None = None


class MailBridge(Section):
    enabled: Any = False
    localpart: Any = "cercle-courrier"
    display_name: Any = "Courriers"
    device_id: Any = "CERCLECOURRIER"
    imap_host: Any = None
    imap_port: Any = 993
    smtp_host: Any = None
    smtp_port: Any = 465
    smtp_security: Any = "tls"
    ca_file: Any = None
    poll_seconds: Any = 60
    idle_seconds: Any = 600
    backfill: Any = 20
    max_mail_size: Any = "50M"
    sent_copy_by_server: Any = False
    allowed_servers: Any = []


class BackupSchedule(Section):
    enabled: bool = False
    time: str = "02:30"


class Backup(Section):
    directory: str = "backups"
    keep_daily: int = 7
    keep_weekly: int = 4
    schedule: BackupSchedule = BackupSchedule()


class Redis(Section):
    host: str = "127.0.0.1"
    port: int = 6379
    dbid: int = 0


class Region(Section):
    """Synapse workers + PostgreSQL + Redis behind nginx (config/region.yaml)."""

    enabled: bool = False
    base_port: int = 8200
    sync_workers: int = 2
    event_persisters: int = 2
    dossier_processes: int = 2
    redis: Redis = Redis()
    nginx: str = "/usr/sbin/nginx"


class Retention(Section):
    years_after_closure: int = 20


class CercleSettings(BaseSettings):
    """The whole profile, validated. Built by :func:`deployment.profile.load_profile` from the
    merged sources (``init`` only: the sources are read and checked one by one there)."""

    model_config = SettingsConfigDict(extra="forbid", frozen=True)

    server_name: str = "cercle.localhost"
    var_dir: str = "var"
    homeserver: Homeserver = Homeserver()
    bot: Bot = Bot()
    dossier: Dossier = Dossier()
    annuaire: Annuaire = Annuaire()
    mail_bridge: MailBridge = MailBridge()
    backup: Backup = Backup()
    region: Region = Region()
    retention: Retention = Retention()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def unknown_key(data: Mapping[str, Any], model: type[BaseModel] = CercleSettings) -> str | None:
    """The dotted path of the first key of ``data`` that ``model`` does not declare."""
    for key, value in data.items():
        field = model.model_fields.get(key)
        if field is None:
            return key
        inner = _section_model(field.annotation)
        if inner is not None and isinstance(value, Mapping):
            found = unknown_key(value, inner)
            if found is not None:
                return f"{key}.{found}"
        elif key == "providers" and isinstance(value, Mapping):  # id -> provider
            for idp, provider in value.items():
                if isinstance(provider, Mapping):
                    found = unknown_key(provider, SsoProvider)
                    if found is not None:
                        return f"{key}.{idp}.{found}"
    return None


def _section_model(annotation: Any) -> type[BaseModel] | None:
    """The model of a section (``Section`` or ``Section | None``), None for other types."""
    if get_origin(annotation) in (dict, list):
        return None
    for candidate in (annotation, *getattr(annotation, "__args__", ())):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def first_error(exc: ValidationError) -> str:
    """The dotted key of the first invalid value."""
    return ".".join(str(p) for p in exc.errors()[0]["loc"])
