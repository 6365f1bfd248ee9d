"""The bot's configuration: one frozen, typed object built from the profile's ``bot`` section.

Everything the bot needs to know about its deployment is here; nothing else reads the
profile. The section is typed and checked as the profile loads (``deployment.settings``);
this object is a `ConfigModel` too, built by the same loader (``deployment.typed_config``):
a bad value raises ``ProfileError`` naming the key, in French, for the operator.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bots.shards import Shards
from deployment.profile import Profile
from deployment.typed_config import (
    ConfigModel,
    Count,
    PositiveCount,
    PositiveNumber,
    ProfileError,
    Text,
    validated,
)


class EscalationConfig(ConfigModel):
    interval_minutes: PositiveNumber = 10.0
    max_reminders: Count = 6

    @property
    def interval_seconds(self) -> float:
        return self.interval_minutes * 60.0


class BotConfig(ConfigModel):
    homeserver_url: str
    server_name: str
    user_id: str
    device_id: Text
    display_name: Text
    data_dir: Path  # <var>/bot: session, crypto store, ledger, cross-signing keys
    command_prefix: Text = "!"
    escalation: EscalationConfig = EscalationConfig()
    flag_power_level: Count = 0  # to raise / clear flags
    admin_power_level: Count = 50  # room-level changes: invitations
    motif_max_length: PositiveCount = 500
    label_max_length: PositiveCount = 80
    sync_timeout_ms: int = 30_000
    sync_timeline_limit: int = 100  # per room and sync; a longer absence is fetched back
    backoff_max_seconds: float = 60.0
    cross_signing_key_path: Path | None = None  # default <data_dir>/cross_signing.enc
    dossier_url: str | None = None  # the dossier service the bot syncs with (None: none)
    # a newcomer none of whose devices can take the history's keys this long after joining
    # gets the transcript PDF; their new or newly cross-signed devices get the keys this long
    history_fallback_seconds: PositiveNumber = 180.0
    history_watch_days: PositiveNumber = 3.0
    # someone added to a circle before her first login: how often her account is looked for
    account_check_seconds: PositiveNumber = 60.0
    # issue 15: this process's shard (1: the front) and every account of the bot, the front
    # first (empty: one account, ``user_id``); bots/shards.py
    shard: PositiveCount = 1
    accounts: tuple[str, ...] = ()

    @property
    def shards(self) -> Shards:
        return Shards(self.accounts or (self.user_id,), self.shard)

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
    def from_profile(cls, profile: Profile, *, shard: int = 1, **overrides: Any) -> BotConfig:
        """Shard 1 (the front) is the account and folder every deployment has (``var/bot``);
        shard k logs in as ``cercle-bot-k`` and keeps its own ``var/bot-k``."""
        bot = profile.settings.bot
        accounts = profile.bot_user_ids
        if not 1 <= shard <= len(accounts):
            raise ProfileError(
                f"bot.shards : le bot n'a que {len(accounts)} compte(s), pas de n° {shard}"
            )
        values = {
            **bot.model_dump(exclude={"localpart", "shards"}),
            **matrix_account(
                profile,
                user_id=accounts[shard - 1],
                data_dir=profile.var_dir / ("bot" if shard == 1 else f"bot-{shard}"),
            ),
            "shard": shard,
            "accounts": accounts,
            **({} if shard == 1 else {"display_name": f"{bot.display_name} (salons {shard})"}),
            **overrides,
        }
        return validated(cls, values, "section bot du profil", "bot.")

    @classmethod
    def every_account(cls, profile: Profile) -> list[BotConfig]:
        """The configuration of each of the bot's accounts (``bot.shards``), the front first."""
        return [cls.from_profile(profile, shard=k) for k in range(1, len(profile.bot_user_ids) + 1)]


def matrix_account(profile: Profile, *, user_id: str, data_dir: Path) -> dict[str, Any]:
    """What the configuration of a Matrix component (the bot, the mail bridge) takes from the
    profile: where the homeserver and the dossier are, its account, its folder."""
    return {
        "homeserver_url": profile.homeserver_url,
        "server_name": profile.server_name,
        "user_id": user_id,
        "data_dir": data_dir,
        "dossier_url": profile.dossier_url,
    }
