"""`python -m bots` as `cercle up` starts it: profile + secrets, data under <var>/bot, clean
stop on SIGTERM, and a restart that neither logs in again nor creates a device."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from deployment.processes import stop_child
from deployment.profile import PROJECT_ROOT
from tests.bots.conftest import dm_with_bot

pytestmark = pytest.mark.integration


def bot_devices(synapse) -> list[str]:
    path = urllib.request.quote(synapse.bot_user_id, safe="")
    req = urllib.request.Request(f"{synapse.base_url}/_synapse/admin/v2/users/{path}/devices")
    req.add_header("Authorization", f"Bearer {synapse.admin_token}")
    with urllib.request.urlopen(req, timeout=10) as resp:
        return sorted(d["device_id"] for d in json.loads(resp.read())["devices"])


def start_bot(synapse, tmp_path: Path, data_var: Path) -> subprocess.Popen[bytes]:
    override = tmp_path / "bot-profile.yaml"
    override.write_text(
        yaml.safe_dump(
            {
                "var_dir": str(data_var),
                "homeserver": {"port": synapse.profile.section("homeserver")["port"]},
                "bot": {"device_id": "CERCLEBOTPROC"},
            }
        )
    )
    # the secrets of the session's deployment, as `cercle up` would find them
    secrets_dir = data_var / "secrets"
    if not secrets_dir.exists():
        secrets_dir.symlink_to(synapse.var_dir / "secrets")
    env = dict(os.environ, CERCLE_CONFIG=str(override), PYTHONPATH=str(PROJECT_ROOT))
    return subprocess.Popen(
        [sys.executable, "-m", "bots"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "bot.log", "ab"),
    )


def wait_log(tmp_path: Path, text: str, count: int = 1, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (tmp_path / "bot.log").read_text(errors="replace").count(text) >= count:
            return
        time.sleep(0.2)
    raise AssertionError(f"« {text} » absent du journal du bot")


async def test_process_answers_stops_on_sigterm_and_restarts_on_the_same_device(
    synapse, pro_factory, tmp_path
):
    data_var = tmp_path / "var"
    data_var.mkdir()
    # the cross-signing identity of the session's bot account
    (data_var / "bot").mkdir()
    shared_keys = synapse.var_dir / "bot" / "cross_signing.enc"
    if shared_keys.exists():
        (data_var / "bot" / "cross_signing.enc").write_bytes(shared_keys.read_bytes())
    proc = start_bot(synapse, tmp_path, data_var)
    try:
        wait_log(tmp_path, "bot démarré")
        if not shared_keys.exists():  # first bot of the session: its identity is the shared one
            shared_keys.parent.mkdir(parents=True, exist_ok=True)
            shared_keys.write_bytes((data_var / "bot" / "cross_signing.enc").read_bytes())
            shared_keys.chmod(0o600)
        session = json.loads((data_var / "bot" / "session.json").read_text())
        assert session["device_id"] == "CERCLEBOTPROC"
        assert (data_var / "bot" / "session.json").stat().st_mode & 0o777 == 0o600
        alice = await pro_factory()
        dm = await dm_with_bot(alice, synapse.bot_user_id)
        await alice.say(dm, "!aide vu")
        await alice.wait_notice(dm, "!vu")

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        wait_log(tmp_path, "bot arrêté")
        devices = bot_devices(synapse)

        proc = start_bot(synapse, tmp_path, data_var)
        wait_log(tmp_path, "bot démarré", count=2)
        await alice.say(dm, "!aide fait")
        await alice.wait_notice(dm, "!fait")
        assert bot_devices(synapse) == devices  # no new device
        assert (tmp_path / "bot.log").read_text().count("bot connecté") == 1  # one login ever
        assert json.loads((data_var / "bot" / "session.json").read_text()) == session
        crypto_stores = [
            p.name
            for p in (data_var / "bot" / "store").glob("*.db")
            if not p.name.endswith(".shared_history.db")  # the history module's own ledger
        ]
        assert crypto_stores == [f"{synapse.bot_user_id}_CERCLEBOTPROC.db"]
    finally:
        stop_child(proc, timeout=20)
