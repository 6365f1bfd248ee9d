"""`cercle up` / `status --json` / `down` on a real Synapse, and a second `up` reusing state."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support import free_port

pytestmark = pytest.mark.integration


def cercle(
    env: dict[str, str], *args: str, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cercle", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def deployment_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CERCLE")}
    env.update(
        {
            "CERCLE__VAR_DIR": str(tmp_path / "var"),
            "CERCLE__HOMESERVER__PORT": str(free_port()),
            "CERCLE__DOSSIER__PORT": str(free_port()),
        }
    )
    return env


def test_up_status_down_and_second_up_reuses_state(
    deployment_env: dict[str, str], tmp_path: Path
) -> None:
    var = tmp_path / "var"
    try:
        up = cercle(deployment_env, "up", "--detach")
        assert up.returncode == 0, up.stderr
        assert "Cercle est prêt" in up.stdout
        assert "cercle admin user create" in up.stdout

        status = json.loads(cercle(deployment_env, "status", "--json").stdout)
        for key in ("homeserver_url", "server_name", "bot_user_id", "dossier_url", "services"):
            assert key in status
        assert status["services"]["homeserver"]["state"] == "running"
        assert status["bot_user_id"] == f"@cercle-bot:{status['server_name']}"
        if status["services"]["dossier"]["state"] != "absent":  # "prêt" includes the dossier
            assert status["services"]["dossier"]["state"] == "running"
            assert status["dossier_url"]

        again = cercle(deployment_env, "up", "--detach")
        assert again.returncode == 1
        assert again.stderr.startswith("erreur : Cercle tourne déjà")
        assert "Traceback" not in again.stderr

        secrets_before = {p.name: p.read_text() for p in (var / "secrets").iterdir()}
        db_inode = (var / "synapse" / "homeserver.db").stat().st_ino
        assert cercle(deployment_env, "down").returncode == 0

        stopped = json.loads(cercle(deployment_env, "status", "--json").stdout)
        assert stopped["services"]["homeserver"]["state"] == "stopped"
        assert stopped["dossier_url"] is None

        # Second start: same secrets, same database, the admin token still valid.
        up2 = cercle(deployment_env, "up", "--detach")
        assert up2.returncode == 0, up2.stderr
        secrets_after = {p.name: p.read_text() for p in (var / "secrets").iterdir()}
        # Every secret kept as it was (a service may add its own the first time it needs one).
        assert {name: secrets_after.get(name) for name in secrets_before} == secrets_before
        assert (var / "synapse" / "homeserver.db").stat().st_ino == db_inode
        assert json.loads(cercle(deployment_env, "status", "--json").stdout)["running"] is True
    finally:
        cercle(deployment_env, "down")
