"""The bot's accounts when its rooms are sharded (bots/shards.py, issue 15): pure rules."""

from __future__ import annotations

import collections
from pathlib import Path

import pytest

from bots.config import BotConfig
from bots.shards import Shards, shard_for
from deployment.profile import load_profile
from deployment.secrets import Secrets
from deployment.typed_config import ProfileError

ACCOUNTS = ("@cercle-bot:s", "@cercle-bot-2:s", "@cercle-bot-3:s")


def test_a_room_intent_always_goes_to_the_same_shard_and_the_shards_share_them() -> None:
    intents = [f"patient-nouveau|$event{i}" for i in range(3000)]
    first = [shard_for(i, 3) for i in intents]
    assert first == [shard_for(i, 3) for i in intents]  # a replay after a kill: same shard
    counts = collections.Counter(first)
    assert set(counts) == {1, 2, 3}
    assert all(800 < n < 1200 for n in counts.values()), counts
    assert {shard_for(i, 1) for i in intents} == {1}


def test_who_is_who() -> None:
    two = Shards(ACCOUNTS, me=2)
    assert two.front == ACCOUNTS[0] and not two.is_front and two.own == ACCOUNTS[1]
    assert two.siblings == (ACCOUNTS[0], ACCOUNTS[2])
    assert all(two.is_bot(a) for a in ACCOUNTS) and not two.is_bot("@infirmiere:s")
    intent = "patient-nouveau|$x"
    assert two.account_for(intent) == ACCOUNTS[shard_for(intent, 3) - 1]
    assert two.owns(intent) == (shard_for(intent, 3) == 2)
    assert Shards.single("@b:s").siblings == ()
    with pytest.raises(ValueError):
        Shards(ACCOUNTS, me=4)


def test_profile_names_every_account_and_each_shard_its_own_folder(tmp_path: Path) -> None:
    profile = load_profile(env={"CERCLE__BOT__SHARDS": "3", "CERCLE__VAR_DIR": str(tmp_path)})
    server = profile.server_name
    assert profile.bot_user_ids == tuple(
        f"@{n}:{server}" for n in ("cercle-bot", "cercle-bot-2", "cercle-bot-3")
    )
    front = BotConfig.from_profile(profile)
    third = BotConfig.from_profile(profile, shard=3)
    assert front.user_id == profile.bot_user_id and front.data_dir == tmp_path / "bot"
    assert front.shards.is_front and front.display_name == "Cercle"
    assert third.user_id == f"@cercle-bot-3:{server}" and third.data_dir == tmp_path / "bot-3"
    assert third.display_name == "Cercle (salons 3)" and third.shards.me == 3
    with pytest.raises(ProfileError, match=r"bot\.shards"):
        BotConfig.from_profile(profile, shard=4)
    # one account by default: today's deployment unchanged
    assert load_profile(env={"CERCLE__VAR_DIR": str(tmp_path)}).bot_user_ids == (
        profile.bot_user_id,
    )


@pytest.mark.parametrize("value", ["0", "33", "deux"])
def test_absurd_shard_counts_are_refused_naming_the_key(value: str) -> None:
    with pytest.raises(ProfileError, match="shards"):
        load_profile(env={"CERCLE__BOT__SHARDS": value})


def test_each_shard_has_its_own_secrets_kept_across_loads(tmp_path: Path) -> None:
    secrets = Secrets.load_or_create(tmp_path)
    front = secrets.bot_account(1)
    assert front.password == secrets.bot_password
    assert front.cross_signing_key == secrets.bot_cross_signing_key
    two = secrets.bot_account(2)
    assert len({front.password, two.password, secrets.bot_account(3).password}) == 3
    again = Secrets.load_or_create(tmp_path).bot_account(2)
    assert again == two and again.pickle_key == two.pickle_key
    assert (tmp_path / "secrets" / "bot2_password").stat().st_mode & 0o777 == 0o600
    assert two.password not in repr(two)  # never in a log
