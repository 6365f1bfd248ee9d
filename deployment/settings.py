"""The deployment profile as typed settings (pydantic-settings): one model per component's
section, every key declared, an unknown key an error naming the key and where it was written.

Sources, later wins (as before): ``config/default.yaml``, ``config/local.yaml``, the file named
by ``CERCLE_CONFIG`` (or passed), ``CERCLE__SECTION__KEY=value`` environment variables (values
read as YAML scalars), then the ``extra`` mapping of tests. Each source is checked on its own
against the models, so that the error names the file (or variable) holding the bad key; the
merged result is then validated once (types, nested sections).

Every section has the configuration of a `deployment.typed_config.ConfigModel` (frozen, every
key declared) and is read by the loader shared with the components' own configurations
(``bots/config.py``, ``bridges/mail/config.py``, ``dossier_service/config.py``), which are
built from the sections typed here. (A section derives from pydantic's ``BaseModel`` itself so
that ruff knows its list defaults are pydantic's, copied per instance.)
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, Strict
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from deployment.typed_config import (
    ConfigModel,
    Count,
    Flag,
    HostName,
    Port,
    PositiveCount,
    PositiveNumber,
    Text,
)


class Section(BaseModel):
    """A section of the profile: frozen, every key declared (as every `ConfigModel`)."""

    model_config = ConfigModel.model_config


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
    interval_minutes: PositiveNumber = 10.0
    max_reminders: Count = 6


class Bot(Section):
    localpart: Text = "cercle-bot"
    display_name: Text = "Cercle"
    # patient rooms spread over this many accounts, one process each (bots/shards.py)
    shards: Annotated[int, Strict(), Field(gt=0, le=32)] = 1
    device_id: Text = "CERCLEBOT"
    command_prefix: Text = "!"
    escalation: Escalation = Escalation()
    flag_power_level: Count = 0
    admin_power_level: Count = 50
    motif_max_length: PositiveCount = 500
    label_max_length: PositiveCount = 80
    history_fallback_seconds: PositiveNumber = 180.0
    history_watch_days: PositiveNumber = 3.0
    account_check_seconds: PositiveNumber = 60.0


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
    admins: list[Text] = []  # Matrix ids
    document_categories: list[Text] | None = None
    lifeline_themes: list[Text] | None = None
    event_types: list[Text] | None = None
    task_types: dict[str, list[Text] | None] | None = None  # type -> its kinds
    file_statuses: list[Text] | None = None


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
    enabled: Flag = False
    localpart: Text = "cercle-courrier"
    display_name: Text = "Courriers"
    device_id: Text = "CERCLECOURRIER"
    imap_host: Text | None = None  # required once enabled (bridges/mail/config.py)
    imap_port: Port = 993
    smtp_host: Text | None = None
    smtp_port: Port = 465
    smtp_security: Literal["tls", "starttls"] = "tls"
    ca_file: Text | None = None
    poll_seconds: PositiveNumber = 60.0
    idle_seconds: PositiveNumber = 600.0
    backfill: Count = 20
    max_mail_size: Size = "50M"
    sent_copy_by_server: Flag = False
    allowed_servers: list[HostName] = []


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
