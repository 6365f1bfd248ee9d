"""The bot's frozen config, read from the profile's `bot` section."""

from __future__ import annotations

import dataclasses

import pytest

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
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.device_id = "X"  # type: ignore[misc]


def test_environment_override_and_bad_values_name_the_key(tmp_path):
    env = {"CERCLE__BOT__ESCALATION__INTERVAL_MINUTES": "2"}
    profile = load_profile(env=env, extra={"var_dir": str(tmp_path)})
    assert BotConfig.from_profile(profile).escalation.interval_seconds == 120
    bad = load_profile(env={}, extra={"bot": {"escalation": {"interval_minutes": 0}}})
    with pytest.raises(ProfileError, match=r"bot\.escalation\.interval_minutes"):
        BotConfig.from_profile(bad)
    bad = load_profile(env={}, extra={"bot": {"admin_power_level": "haut"}})
    with pytest.raises(ProfileError, match=r"bot\.admin_power_level"):
        BotConfig.from_profile(bad)
