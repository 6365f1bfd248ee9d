"""The mail bridge's configuration: one frozen object from the profile's ``mail_bridge``
section. Off unless ``mail_bridge.enabled`` is true and the operator's servers are named."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bots.config import BotConfig
from bridges.mail.control_client import bridge_enabled, control_socket_path
from deployment.profile import Profile, ProfileError, parse_size

__all__ = ["MailBridgeConfig", "MailHosts", "bridge_enabled"]


@dataclass(frozen=True)
class MailHosts:
    """The servers of one mailbox: the operator's by default (``mail_bridge.imap_host`` …),
    or those the professional named among ``mail_bridge.allowed_servers``."""

    imap_host: str
    imap_port: int
    smtp_host: str
    smtp_port: int
    smtp_security: str = "tls"


@dataclass(frozen=True)
class MailBridgeConfig:
    homeserver_url: str
    server_name: str
    user_id: str  # the bridge's own account, e.g. @cercle-courrier:server
    device_id: str
    display_name: str
    data_dir: Path  # <var>/mail: session, crypto store, bridge.sqlite3
    imap_host: str
    imap_port: int
    smtp_host: str
    smtp_port: int
    smtp_security: str = "tls"  # "tls" (implicit, port 465) or "starttls" (port 587)
    # the operator files a copy of every submitted mail in the Sent folder itself: the bridge
    # then never APPENDs, and that copy tells after a crash whether a mail left (outbound.py)
    sent_copy_by_server: bool = False
    ca_file: Path | None = None  # an extra CA (private operator, tests); default: system CAs
    poll_seconds: float = 60.0  # without IDLE
    idle_seconds: float = 600.0  # an IDLE is renewed at least this often
    backfill: int = 20  # mails already in the INBOX posted when a mailbox is first connected
    max_mail_size: int = 50 * 1024 * 1024
    backoff_max_seconds: float = 60.0
    dossier_url: str | None = None  # for !classer (None: no filing)
    sync_timeout_ms: int = 30_000
    cross_signing_key_path: Path | None = None  # default <data_dir>/cross_signing.enc
    control_socket: Path | None = None  # the dossier's Courriers page (control.py); None: off
    # other mail servers a professional may name for her mailbox (page); empty: only the
    # operator's above. An allow-list: the bridge connects nowhere a web form alone says
    allowed_servers: tuple[str, ...] = ()

    def default_hosts(self) -> MailHosts:
        return MailHosts(
            self.imap_host, self.imap_port, self.smtp_host, self.smtp_port, self.smtp_security
        )

    def hosts_allowed(self, hosts: MailHosts) -> bool:
        allowed = {self.imap_host.lower(), self.smtp_host.lower()}
        allowed |= {h.lower() for h in self.allowed_servers}
        return hosts.imap_host.lower() in allowed and hosts.smtp_host.lower() in allowed

    @property
    def database_path(self) -> Path:
        return self.data_dir / "bridge.sqlite3"

    def session_config(self) -> BotConfig:
        """What the shared Matrix session code needs (bots/matrix/session.py)."""
        return BotConfig(
            homeserver_url=self.homeserver_url,
            server_name=self.server_name,
            user_id=self.user_id,
            device_id=self.device_id,
            display_name=self.display_name,
            data_dir=self.data_dir,
            backoff_max_seconds=self.backoff_max_seconds,
            sync_timeout_ms=self.sync_timeout_ms,
            cross_signing_key_path=self.cross_signing_key_path
            or self.data_dir / "cross_signing.enc",
        )

    @classmethod
    def from_profile(cls, profile: Profile, **overrides: Any) -> MailBridgeConfig:
        section = profile.section("mail_bridge")
        config = cls(
            homeserver_url=profile.homeserver_url,
            server_name=profile.server_name,
            user_id=f"@{_text(section, 'localpart')}:{profile.server_name}",
            device_id=_text(section, "device_id"),
            display_name=_text(section, "display_name"),
            data_dir=profile.var_dir / "mail",
            imap_host=_text(section, "imap_host"),
            imap_port=_port(section, "imap_port"),
            smtp_host=_text(section, "smtp_host"),
            smtp_port=_port(section, "smtp_port"),
            smtp_security=_choice(section, "smtp_security", ("tls", "starttls")),
            sent_copy_by_server=_flag(section, "sent_copy_by_server"),
            ca_file=Path(section["ca_file"]) if section.get("ca_file") else None,
            poll_seconds=_positive(section, "poll_seconds"),
            idle_seconds=_positive(section, "idle_seconds"),
            backfill=int(_positive(section, "backfill", zero_ok=True)),
            max_mail_size=parse_size(section.get("max_mail_size", "50M")),
            dossier_url=profile.dossier_url,
            control_socket=control_socket_path(profile.var_dir),
            allowed_servers=_hosts(section, "allowed_servers"),
        )
        return dataclasses.replace(config, **overrides) if overrides else config


def _text(section: Mapping[str, Any], key: str) -> str:
    value = section.get(key)
    if not isinstance(value, str) or not value:
        raise ProfileError(f"mail_bridge.{key} : une chaîne non vide est attendue")
    return value


def _port(section: Mapping[str, Any], key: str) -> int:
    value = section.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise ProfileError(f"mail_bridge.{key} : un numéro de port est attendu")
    return value


def _positive(section: Mapping[str, Any], key: str, *, zero_ok: bool = False) -> float:
    value = section.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ProfileError(f"mail_bridge.{key} : un nombre est attendu")
    if value < 0 or (value == 0 and not zero_ok):
        raise ProfileError(f"mail_bridge.{key} : valeur hors limites ({value})")
    return float(value)


def _hosts(section: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = section.get(key) or []
    if not isinstance(value, list) or not all(
        isinstance(h, str) and h and " " not in h for h in value
    ):
        raise ProfileError(f"mail_bridge.{key} : une liste de noms de serveurs est attendue")
    return tuple(value)


def _flag(section: Mapping[str, Any], key: str) -> bool:
    value = section.get(key, False)
    if not isinstance(value, bool):
        raise ProfileError(f"mail_bridge.{key} : true ou false attendu")
    return value


def _choice(section: Mapping[str, Any], key: str, allowed: tuple[str, ...]) -> str:
    value = section.get(key)
    if value not in allowed:
        raise ProfileError(f"mail_bridge.{key} : attendu {' ou '.join(allowed)}")
    return str(value)
