"""The bot's processes and accounts as the deployment runs them with ``bot.shards: K``
(issue 15, bots/shards.py): one process per account, the front first.

Shard 1 is what every deployment already has: the service ``bot`` (``var/run/bot.pid``,
``var/log/bot.log``, ``var/bot/ready``, ``@cercle-bot``). Shard k is the instance ``botk``
(``bot2.pid``, ``bot2.log``, ``var/bot-2/ready``, ``@cercle-bot-2``), told its shard by
``CERCLE_BOT_SHARD`` (``bots/main.py``). What each shard's configuration is (its account,
folder, display name) is ``BotConfig.from_profile``'s to say, and only its.
"""

from __future__ import annotations

import re

from bots.config import BotConfig
from deployment.conventions import BOT_SHARD_ENV
from deployment.profile import Profile
from deployment.secrets import Secrets
from homeserver.accounts import BotAccount

BOT_SERVICE = "bot"
_SHARD_INSTANCE = re.compile(r"bot([0-9]+)")


def instance_name(shard: int) -> str:
    """``bot`` for the front (unchanged pid and log files), ``botk`` for shard k."""
    return BOT_SERVICE if shard == 1 else f"{BOT_SERVICE}{shard}"


def is_shard_instance(name: str) -> bool:
    """``bot2``, ``bot3`` …: a process of one of the bot's other shards."""
    match = _SHARD_INSTANCE.fullmatch(name)
    return match is not None and int(match.group(1)) >= 2


def shard_env(shard: int) -> dict[str, str]:
    """What the supervisor adds to the environment of shard ``shard``'s process (the front's
    too: a ``CERCLE_BOT_SHARD`` the supervisor itself was started with is not inherited)."""
    return {BOT_SHARD_ENV: str(shard)}


def bot_configs(profile: Profile) -> list[BotConfig]:
    """Each shard's configuration, the front first."""
    return BotConfig.every_account(profile)


def bot_accounts(profile: Profile, secrets: Secrets) -> list[BotAccount]:
    """Each shard's account as the deployment registers it, the front first: its own
    password (``Secrets.bot_account``) and display name (« Cercle », « Cercle (salons 2) » …)."""
    return [
        BotAccount(config.user_id, secrets.bot_account(config.shard).password, config.display_name)
        for config in bot_configs(profile)
    ]


def is_ready(config: BotConfig, pid: int) -> bool:
    """The shard's process ``pid`` has handled its first sync: its ready file holds its pid
    (``bots/main.py``; a killed process's file names a pid no longer its own)."""
    try:
        return config.ready_file.read_text(encoding="utf-8").strip() == str(pid)
    except (FileNotFoundError, ValueError):
        return False
