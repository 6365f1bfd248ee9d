"""The bot's frozen config, read from the profile's `bot` section."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bots.config import BotConfig
from deployment.profile import ProfileError, load_profile


def test_defaults_from_the_profile(tmp_path):
    profile = load_profile(env={}, extra={"var_dir": str(tmp_path)})
    config = BotConfig.from_profile(profile)
    assert config.user_id == "@cercle-bot:cercle.localhost"
    assert config.device_id == "CERCLEBOT"
    assert config.data_dir == tmp_path / "bot"
    assert config.ledger_path.parent == config.session_file.parent == tmp_path / "bot"
    assert config.cross_signing_key_file == tmp_path / "bot" / "cross_signing.enc"
    assert config.escalation.interval_seconds == 600 and config.escalation.max_reminders == 6
    assert (config.flag_power_level, config.admin_power_level) == (0, 50)
    with pytest.raises(ValidationError):
        config.device_id = "X"  # type: ignore[misc]


def test_environment_override_and_bad_values_name_the_key(tmp_path):
    env = {"CERCLE__BOT__ESCALATION__INTERVAL_MINUTES": "2"}
    profile = load_profile(env=env, extra={"var_dir": str(tmp_path)})
    assert BotConfig.from_profile(profile).escalation.interval_seconds == 120
    # refused as the profile loads, naming the key and where it was written
    with pytest.raises(ProfileError, match=r"bot\.escalation\.interval_minutes \(réglages"):
        load_profile(env={}, extra={"bot": {"escalation": {"interval_minutes": 0}}})
    with pytest.raises(ProfileError, match=r"bot\.admin_power_level \(variable .*entier"):
        load_profile(env={"CERCLE__BOT__ADMIN_POWER_LEVEL": "haut"})
    with pytest.raises(ProfileError, match=r"bot\.flag_power_level .*entier"):
        load_profile(env={}, extra={"bot": {"flag_power_level": True}})  # not a number


def test_the_component_s_own_values_are_checked_by_the_same_loader(tmp_path):
    profile = load_profile(env={}, extra={"var_dir": str(tmp_path)})
    with pytest.raises(ProfileError, match=r"invalide : bot\.motif_max_length .*hors limites"):
        BotConfig.from_profile(profile, motif_max_length=0)
    with pytest.raises(ProfileError, match=r"inconnue : bot\.motif_max"):
        BotConfig.from_profile(profile, motif_max=3)
    changed = BotConfig.from_profile(profile).replaced(history_watch_days=1)
    assert changed.history_watch_days == 1.0 and changed.device_id == "CERCLEBOT"
