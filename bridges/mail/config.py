"""The mail bridge's configuration: one frozen object from the profile's ``mail_bridge``
section. Off unless ``mail_bridge.enabled`` is true and the operator's servers are named.

The section is typed and checked as the profile loads (``deployment.settings``); this object
is a `ConfigModel` built by the same loader (``deployment.typed_config``): a bad or missing
value raises ``ProfileError`` naming the key, in French."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from bots.config import BotConfig, matrix_account
from bridges.mail.control_client import bridge_enabled, control_socket_path
from deployment.profile import Profile, parse_size
from deployment.typed_config import (
    ConfigModel,
    Count,
    Flag,
    HostName,
    Port,
    PositiveNumber,
    Text,
    validated,
)

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


class MailBridgeConfig(ConfigModel):
    homeserver_url: str
    server_name: str
    user_id: str  # the bridge's own account, e.g. @cercle-courrier:server
    device_id: Text
    display_name: Text
    data_dir: Path  # <var>/mail: session, crypto store, bridge.sqlite3
    imap_host: Text
    imap_port: Port
    smtp_host: Text
    smtp_port: Port
    # "tls" (implicit, port 465) or "starttls" (port 587)
    smtp_security: Literal["tls", "starttls"] = "tls"
    # the operator files a copy of every submitted mail in the Sent folder itself: the bridge
    # then never APPENDs, and that copy tells after a crash whether a mail left (outbound.py)
    sent_copy_by_server: Flag = False
    ca_file: Path | None = None  # an extra CA (private operator, tests); default: system CAs
    poll_seconds: PositiveNumber = 60.0  # without IDLE
    idle_seconds: PositiveNumber = 600.0  # an IDLE is renewed at least this often
    backfill: Count = 20  # mails already in the INBOX posted when a mailbox is first connected
    max_mail_size: int = 50 * 1024 * 1024
    backoff_max_seconds: float = 60.0
    dossier_url: str | None = None  # for !classer (None: no filing)
    sync_timeout_ms: int = 30_000
    cross_signing_key_path: Path | None = None  # default <data_dir>/cross_signing.enc
    control_socket: Path | None = None  # the dossier's Courriers page (control.py); None: off
    # other mail servers a professional may name for her mailbox (page); empty: only the
    # operator's above. An allow-list: the bridge connects nowhere a web form alone says
    allowed_servers: tuple[HostName, ...] = ()

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
            cross_signing_key_path=self.cross_signing_key_path,  # None: BotConfig's default
        )

    @classmethod
    def from_profile(cls, profile: Profile, **overrides: Any) -> MailBridgeConfig:
        section = profile.settings.mail_bridge
        values = {
            **section.model_dump(exclude={"enabled", "localpart"}),
            **matrix_account(
                profile,
                user_id=f"@{section.localpart}:{profile.server_name}",
                data_dir=profile.var_dir / "mail",
            ),
            "max_mail_size": parse_size(section.max_mail_size),
            "control_socket": control_socket_path(profile.var_dir),
            **overrides,
        }
        return validated(cls, values, "section mail_bridge du profil", "mail_bridge.")
