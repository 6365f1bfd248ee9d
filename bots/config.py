"""The bot's configuration: one frozen, typed object built from the profile's ``bot`` section.

Everything the bot needs to know about its deployment is here; nothing else reads the
profile. Bad values raise ``ProfileError`` naming the key, in French, for the operator.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deployment.profile import Profile, ProfileError


@dataclass(frozen=True)
class EscalationConfig:
    interval_minutes: float = 10.0
    max_reminders: int = 6

    @property
    def interval_seconds(self) -> float:
        return self.interval_minutes * 60.0


@dataclass(frozen=True)
class BotConfig:
    homeserver_url: str
    server_name: str
    user_id: str
    device_id: str
    display_name: str
    data_dir: Path  # <var>/bot: session, crypto store, ledger, cross-signing keys
    command_prefix: str = "!"
    escalation: EscalationConfig = EscalationConfig()
    flag_power_level: int = 0  # to raise / clear flags
    admin_power_level: int = 50  # room-level changes: invitations
    motif_max_length: int = 500
    label_max_length: int = 80
    sync_timeout_ms: int = 30_000
    sync_timeline_limit: int = 100  # per room and sync; a longer absence is fetched back
    backoff_max_seconds: float = 60.0
    cross_signing_key_path: Path | None = None  # default <data_dir>/cross_signing.enc
    dossier_url: str | None = None  # the dossier service the bot syncs with (None: none)
    # a newcomer none of whose devices can take the history's keys this long after joining
    # gets the transcript PDF; their new or newly cross-signed devices get the keys this long
    history_fallback_seconds: float = 180.0
    history_watch_days: float = 3.0

    @property
    def session_file(self) -> Path:
        return self.data_dir / "session.json"

    @property
    def store_dir(self) -> Path:
        return self.data_dir / "store"

    @property
    def ledger_path(self) -> Path:
        return self.data_dir / "bot.sqlite3"

    @property
    def ready_file(self) -> Path:
        """Holds the bot's pid once its first sync is handled (readiness); removed at stop."""
        return self.data_dir / "ready"

    @property
    def cross_signing_key_file(self) -> Path:
        return self.cross_signing_key_path or self.data_dir / "cross_signing.enc"

    @classmethod
    def from_profile(cls, profile: Profile, **overrides: Any) -> BotConfig:
        bot = profile.section("bot")
        escalation = _mapping(bot, "escalation")
        config = cls(
            homeserver_url=profile.homeserver_url,
            server_name=profile.server_name,
            user_id=profile.bot_user_id,
            device_id=_text(bot, "device_id"),
            display_name=_text(bot, "display_name"),
            data_dir=profile.var_dir / "bot",
            command_prefix=_text(bot, "command_prefix"),
            escalation=EscalationConfig(
                interval_minutes=_number(escalation, "escalation.interval_minutes", positive=True),
                max_reminders=int(_number(escalation, "escalation.max_reminders")),
            ),
            flag_power_level=int(_number(bot, "flag_power_level")),
            admin_power_level=int(_number(bot, "admin_power_level")),
            motif_max_length=int(_number(bot, "motif_max_length", positive=True)),
            label_max_length=int(_number(bot, "label_max_length", positive=True)),
            dossier_url=profile.dossier_url,
        )
        history = {
            key: _number(bot, key, positive=True)
            for key in ("history_fallback_seconds", "history_watch_days")
            if key in bot
        }
        overrides = {**history, **overrides}
        return dataclasses.replace(config, **overrides) if overrides else config


def _mapping(section: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = section.get(key)
    if not isinstance(value, Mapping):
        raise ProfileError(f"bot.{key} : un objet est attendu")
    return value


def _text(section: Mapping[str, Any], key: str) -> str:
    value = section.get(key)
    if not isinstance(value, str) or not value:
        raise ProfileError(f"bot.{key} : une chaîne non vide est attendue")
    return value


def _number(section: Mapping[str, Any], key: str, *, positive: bool = False) -> float:
    name = key.rsplit(".", 1)[-1]
    value = section.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ProfileError(f"bot.{key} : un nombre est attendu")
    if value < 0 or (positive and value == 0):
        raise ProfileError(f"bot.{key} : valeur hors limites ({value})")
    return float(value)
