"""Which shard a bot process is (issue 15): ``CERCLE_BOT_SHARD`` (absent: the front), a whole
number from 1 to ``bot.shards``; anything else stops the process with a French line and
status 1, before it logs in or writes anything."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bots.main import shard_from_env
from deployment.conventions import BOT_SHARD_ENV
from deployment.profile import PROJECT_ROOT, ProfileError


def test_absent_is_the_front_and_each_shard_up_to_the_count_is_taken() -> None:
    assert shard_from_env({}, 1) == 1
    assert shard_from_env({}, 3) == 1
    assert [shard_from_env({BOT_SHARD_ENV: str(k)}, 3) for k in (1, 2, 3)] == [1, 2, 3]
    assert shard_from_env({BOT_SHARD_ENV: " 2\n"}, 2) == 2


@pytest.mark.parametrize("value", ["0", "3", "-1", "", "deux", "2.0", "1e1", "²", "٢", "+2"])
def test_anything_but_a_shard_of_the_profile_is_refused_in_french(value: str) -> None:
    with pytest.raises(ProfileError) as refused:
        shard_from_env({BOT_SHARD_ENV: value}, 2)
    message = str(refused.value)
    assert message.startswith(f"{BOT_SHARD_ENV} = « {value} » : numéro de compte du bot invalide")
    assert "un entier de 1 à 2 est attendu (bot.shards du profil : 2)" in message


@pytest.mark.parametrize("value", ["3", "deux"])
def test_the_process_stops_with_status_1_and_writes_nothing(tmp_path: Path, value: str) -> None:
    var = tmp_path / "var"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CERCLE")}
    env.update(
        {
            "CERCLE__VAR_DIR": str(var),
            "CERCLE__BOT__SHARDS": "2",
            BOT_SHARD_ENV: value,
            "PYTHONPATH": str(PROJECT_ROOT),
        }
    )
    done = subprocess.run(
        [sys.executable, "-m", "bots"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip() == (
        f"cercle-bot : {BOT_SHARD_ENV} = « {value} » : numéro de compte du bot invalide, "
        "un entier de 1 à 2 est attendu (bot.shards du profil : 2)"
    )
    assert not var.exists()  # neither secrets nor a folder of the bot
