"""The bot's processes and accounts with ``bot.shards`` (issue 15), as `cercle` runs them:
names, environment, log and pid files, accounts, and the children `cercle down` looks for.
Nothing is started (`cercle up` itself: tests/cercle/test_run.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cercle.bot_instances import bot_accounts, instance_name, is_shard_instance
from cercle.supervisor import Supervisor, child_marks
from deployment.conventions import BOT_SHARD_ENV
from deployment.profile import Profile, load_profile
from deployment.secrets import Secrets


def profile_with(tmp_path: Path, shards: int) -> Profile:
    return load_profile(env={}, extra={"var_dir": str(tmp_path / "var"), "bot": {"shards": shards}})


def test_the_front_keeps_the_name_bot_and_each_other_shard_is_numbered() -> None:
    assert [instance_name(k) for k in (1, 2, 12)] == ["bot", "bot2", "bot12"]
    assert [is_shard_instance(n) for n in ("bot2", "bot12", "bot", "bot1", "botte", "bot-2")] == [
        True,
        True,
        False,
        False,
        False,
        False,
    ]


def test_each_account_has_its_shards_password_and_display_name(tmp_path: Path) -> None:
    profile = profile_with(tmp_path, 3)
    secrets = Secrets.load_or_create(profile.var_dir)
    accounts = bot_accounts(profile, secrets)
    server = profile.server_name
    assert [a.user_id for a in accounts] == [
        f"@cercle-bot:{server}",
        f"@cercle-bot-2:{server}",
        f"@cercle-bot-3:{server}",
    ]
    assert [a.localpart for a in accounts] == ["cercle-bot", "cercle-bot-2", "cercle-bot-3"]
    assert [a.display_name for a in accounts] == [
        "Cercle",
        "Cercle (salons 2)",
        "Cercle (salons 3)",
    ]
    # the front's account is the one every deployment already has
    assert accounts[0].password == secrets.bot_password
    assert [a.password for a in accounts[1:]] == [secrets.bot_account(k).password for k in (2, 3)]
    assert len({a.password for a in accounts}) == 3
    # one account by default: today's deployment
    alone = bot_accounts(profile_with(tmp_path, 1), secrets)
    assert [(a.user_id, a.display_name) for a in alone] == [(f"@cercle-bot:{server}", "Cercle")]


def test_the_supervisor_runs_one_process_per_shard_the_front_as_before(tmp_path: Path) -> None:
    profile = profile_with(tmp_path, 3)
    supervisor = Supervisor(profile, Secrets.load_or_create(profile.var_dir))
    bots = [s for s in supervisor.services if s.spec.name == "bot"]
    log = profile.var_dir / "log"
    assert [(s.name, s.log_path, s.env) for s in bots] == [
        ("bot", log / "bot.log", {BOT_SHARD_ENV: "1"}),
        ("bot2", log / "bot2.log", {BOT_SHARD_ENV: "2"}),
        ("bot3", log / "bot3.log", {BOT_SHARD_ENV: "3"}),
    ]
    assert all(s.spec.module == "bots" for s in bots)
    # in the order `cercle up` starts them, the other services as they were
    assert [s.name for s in supervisor.services] == ["comptes", "dossier", "bot", "bot2", "bot3"]
    single = Supervisor(profile_with(tmp_path, 1), Secrets.load_or_create(profile.var_dir))
    assert [s.name for s in single.services if s.spec.name == "bot"] == ["bot"]


@pytest.mark.parametrize("shards", [1, 2])
def test_down_finds_every_shards_process_and_those_a_larger_count_left(
    tmp_path: Path, shards: int
) -> None:
    profile = profile_with(tmp_path, shards)
    assert ("bot2" in child_marks(profile)) is (shards == 2)
    run = profile.var_dir / "run"
    run.mkdir(parents=True)
    for name in ("bot4", "botte", "bot"):  # bot.shards was 4 when these were written
        (run / f"{name}.pid").write_text("1")
    marks = child_marks(profile)
    assert marks["bot4"] == marks["bot"] == "-m bots"
    assert "botte" not in marks and "bot3" not in marks
