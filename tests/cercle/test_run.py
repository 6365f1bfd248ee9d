"""`cercle up` / `status --json` / `down` on a real Synapse, and a second `up` reusing state."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from support import free_port

from cercle.supervisor import child_marks, read_run_file
from deployment.processes import command_line, exposed_paths, recorded_children
from deployment.profile import load_profile
from homeserver.accounts import ADMIN_TOKEN_FILE
from homeserver.admin_api import AdminApi
from tests.cercle.warm_cli import run_cercle

pytestmark = pytest.mark.integration


def cercle(
    env: dict[str, str], *args: str, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """``python -m cercle *args``, a process of its own (forked from a warm interpreter:
    `tests.cercle.warm_cli`)."""
    return run_cercle(env, args, timeout)


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

        # issue 12, finding 6: var/ is private to the service user (0700 / 0600)
        assert exposed_paths(var) == []
        assert stat.S_IMODE(var.stat().st_mode) == 0o700

        # issue 12, finding 8: the account gateway runs, on its private socket
        gateway_socket = var / "run" / "account-gateway.sock"
        _wait_for(gateway_socket.exists, 30, "socket de la passerelle des comptes")
        assert stat.S_IMODE(gateway_socket.stat().st_mode) == 0o600

        # issue 15: the bot is "running" once its first sync is handled (its ready file)
        def bot_state() -> str:
            report = json.loads(cercle(deployment_env, "status", "--json").stdout)
            return str(report["services"]["bot"]["state"])

        assert bot_state() in ("starting", "running")
        _wait_for(lambda: bot_state() == "running", 60, "bot prêt (première sync traitée)")
        assert (var / "bot" / "ready").read_text().strip().isdigit()

        status = json.loads(cercle(deployment_env, "status", "--json").stdout)
        assert status["services"]["comptes"]["state"] == "running"
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


def test_two_bot_shards_are_two_accounts_and_two_processes_watched_like_the_others(
    deployment_env: dict[str, str], tmp_path: Path
) -> None:
    """Issue 15, ``bot.shards: 2``: `cercle up` registers both accounts, starts both
    processes and is ready once each has handled its first sync; a killed shard is restarted
    and shown; `cercle down` stops them all."""
    env = {**deployment_env, "CERCLE__BOT__SHARDS": "2"}
    var = tmp_path / "var"
    profile = load_profile(env=env)
    front, second = profile.bot_user_ids

    def services() -> dict[str, dict[str, object]]:
        report = json.loads(cercle(env, "status", "--json").stdout)
        return dict(report["services"])

    pids: list[int] = []
    try:
        up = cercle(env, "up", "--detach")
        assert up.returncode == 0, up.stderr

        # each process of the bot is "running" once it has handled its first sync (its own
        # ready file); « prêt » may come before, as with one account
        def bots_ready() -> bool:
            shown = services()
            return shown["bot"]["state"] == shown["bot2"]["state"] == "running"

        _wait_for(bots_ready, 90, "les deux comptes du bot prêts (première sync traitée)")
        shown = services()
        assert {name for name in shown if name.startswith("bot")} == {"bot", "bot2"}
        for name, account, folder in (("bot", front, "bot"), ("bot2", second, "bot-2")):
            entry = shown[name]
            assert entry["state"] == "running" and entry["restarts"] == 0, entry
            assert entry["user_id"] == account
            pid = int(str(entry["pid"]))
            assert (var / folder / "ready").read_text().strip() == str(pid)
            assert (var / "run" / f"{name}.pid").read_text().strip() == str(pid)
            assert "-m bots" in command_line(pid)
            pids.append(pid)
        # each its own log, naming its account
        assert f"bot démarré : {front} " in (var / "log" / "bot.log").read_text()
        assert f"bot démarré : {second} " in (var / "log" / "bot2.log").read_text()
        assert (var / "secrets" / "bot2_password").exists()
        assert not (var / "bot-3").exists()

        # both accounts exist on Synapse: bot accounts, each with its display name
        token = (var / "secrets" / ADMIN_TOKEN_FILE).read_text().strip()

        async def accounts() -> list[dict[str, object] | None]:
            async with AdminApi(profile.admin_url, token) as api:
                return [await api.get_user(user_id) for user_id in (front, second)]

        users = asyncio.run(accounts())
        assert [u and (u["user_type"], u["displayname"]) for u in users] == [
            ("bot", "Cercle"),
            ("bot", "Cercle (salons 2)"),
        ]
        # a shard's account is a service account for the operator's commands too
        refused = cercle(env, "admin", "user", "deactivate", second)
        assert refused.returncode == 1 and "compte de service" in refused.stderr, refused.stderr

        # SIGKILL on the second shard: the supervisor starts it again, `status` says so
        os.kill(pids[1], signal.SIGKILL)
        _wait_for(lambda: not _alive(pids[1]), 10, "bot2 tué")
        # during its back-off (2 s) the run file says when: `status` shows "restarting"
        _wait_for(
            lambda: "bot2" in (read_run_file(profile) or {}).get("restart_at", {}),
            5,
            "redémarrage de bot2 annoncé",
        )

        def restarted() -> bool:
            entry = services()["bot2"]
            return entry["state"] == "running" and entry["pid"] != pids[1]

        _wait_for(restarted, 90, "bot2 redémarré et prêt")
        shown = services()
        assert "bot2" not in (read_run_file(profile) or {})["restart_at"]
        assert shown["bot2"]["restarts"] == 1
        assert shown["bot"]["pid"] == pids[0] and shown["bot"]["restarts"] == 0
        pids.append(int(str(shown["bot2"]["pid"])))
        human = cercle(env, "status")
        assert any(
            line.split()[:1] == ["bot2"] and "redémarré 1 fois" in line
            for line in human.stdout.splitlines()
        ), human.stdout

        down = cercle(env, "down")
        assert down.returncode == 0, down.stderr
        _wait_for(lambda: not any(_alive(pid) for pid in pids), 30, "processus du bot arrêtés")
        assert "bot2" in child_marks(profile)
        assert recorded_children(var / "run", child_marks(profile)) == {}
        assert {name: entry["state"] for name, entry in services().items()
                if name.startswith("bot")} == {"bot": "stopped", "bot2": "stopped"}  # fmt: skip
    finally:
        cercle(env, "down")


def _wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"toujours pas après {timeout:.0f} s : {what}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie child of this test counts as gone
    state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    return state != "Z"


def test_a_killed_supervisor_leaves_no_orphan_and_the_next_up_works(
    deployment_env: dict[str, str], tmp_path: Path
) -> None:
    """Issue 12, finding 9: SIGKILL on `cercle up` while it starts; Synapse dies with it,
    `cercle down` has nothing left to stop and the next `up` starts."""
    run_dir = tmp_path / "var" / "run"
    up = subprocess.Popen(
        [sys.executable, "-m", "cercle", "up"],
        env=deployment_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for(lambda: (run_dir / "synapse.pid").exists(), 60, "pid file de Synapse")
        synapse_pid = int((run_dir / "synapse.pid").read_text())
        assert "synapse.app.homeserver" in command_line(synapse_pid)
        up.kill()
        up.wait(10)
        _wait_for(lambda: not _alive(synapse_pid), 30, "Synapse survit à son superviseur")
        down = cercle(deployment_env, "down")
        assert down.returncode == 0 and "n'était pas démarré" in down.stdout, down.stdout
        again = cercle(deployment_env, "up", "--detach")
        assert again.returncode == 0, again.stderr
    finally:
        if up.poll() is None:
            up.kill()
        cercle(deployment_env, "down")


def _reap(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(90)


def test_orphans_recorded_in_pid_files_are_stopped_by_down(
    deployment_env: dict[str, str], tmp_path: Path
) -> None:
    """Where the kernel does not stop them (no PR_SET_PDEATHSIG), `cercle down` finds the
    children from their pid files; a pid file naming an unrelated process is ignored."""
    run_dir = tmp_path / "var" / "run"
    run_dir.mkdir(parents=True)
    orphan = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", "-m", "dossier_service"],
        start_new_session=True,
    )
    unrelated = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    # An orphan's parent (init) reaps it when it dies: here the test is its parent, so a
    # thread waits on it, or `down` would take its zombie for alive and wait 30 s.
    threading.Thread(target=_reap, args=(orphan,), daemon=True).start()
    try:
        (run_dir / "dossier.pid").write_text(str(orphan.pid))
        (run_dir / "bot.pid").write_text(str(unrelated.pid))
        refused = cercle(deployment_env, "up", "--detach")
        assert refused.returncode == 1 and "cercle down" in refused.stderr, refused.stderr
        down = cercle(deployment_env, "down")
        assert down.returncode == 0 and f"dossier ({orphan.pid})" in down.stdout, down.stdout
        assert orphan.wait(10) is not None
        assert unrelated.poll() is None  # never signalled
    finally:
        for proc in (orphan, unrelated):
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)


def test_a_busy_port_is_a_french_error_naming_it_and_its_holder(
    deployment_env: dict[str, str],
) -> None:
    port = int(deployment_env["CERCLE__HOMESERVER__PORT"])
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", port))
        holder.listen()
        result = cercle(deployment_env, "up", "--detach", timeout=60)
    assert result.returncode == 1
    assert f"le port {port} (serveur Matrix) est déjà occupé par le processus {os.getpid()}" in (
        result.stderr
    ), result.stderr
    assert "Traceback" not in result.stderr
