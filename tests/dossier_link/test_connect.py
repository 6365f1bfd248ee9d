"""The bot's dossier sync is there, deliberately absent, or start-up stops: never quietly
off. Before, any failure to set it up (an unreadable service token…) was logged and the bot
ran cut off from the dossier."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

import pytest

from bots.config import BotConfig
from bots.dossier_link import service
from deployment.profile import load_profile


def _services(tmp_path: Path, dossier_url: str | None) -> SimpleNamespace:
    profile = load_profile(env={}, extra={"var_dir": str(tmp_path / "var")})
    config = BotConfig.from_profile(profile, dossier_url=dossier_url)
    return SimpleNamespace(config=config)


def test_without_a_dossier_url_the_bot_runs_without_the_dossier_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="bots.dossier_link.service"):
        assert service.connect(_services(tmp_path, None)) is None
    assert "bot.dossier_url absent" in caplog.text


def test_a_dossier_it_cannot_reach_stops_start_up(tmp_path: Path) -> None:
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "secrets").write_text("not a directory")  # the token is unreadable
    with pytest.raises(OSError):
        service.connect(_services(tmp_path, "http://127.0.0.1:9"))
