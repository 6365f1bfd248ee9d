"""Run the whole deployment in the foreground: Synapse, then every Cercle service.

A run file (var/run/cercle.json) says what runs where, for `cercle status` and
`cercle down`. A service that crashes is restarted with back-off; Ctrl-C or SIGTERM stops
everything in reverse order. Every child dies with the supervisor, even a SIGKILLed one
(``PR_SET_PDEATHSIG``), and has a pid file from the moment it is spawned
(var/run/<name>.pid) for `cercle down`. Everything under var/ is private (umask 077).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backup.schedule import BackupScheduler
from bridges.mail.account import ensure_bridge_account
from cercle.errors import CliError
from deployment.processes import (
    PRIVATE_UMASK,
    busy_port_message,
    child_setup,
    make_private,
    port_is_free,
    remove_pid_file,
    write_pid_file,
)
from deployment.profile import Profile
from deployment.secrets import Secrets
from homeserver.accounts import ensure_service_accounts
from homeserver.process import SynapseProcess, is_healthy
from homeserver.render import render

log = logging.getLogger(__name__)


def run_file(profile: Profile) -> Path:
    return profile.var_dir / "run" / "cercle.json"


def read_run_file(profile: Profile) -> dict[str, Any] | None:
    path = run_file(profile)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and pid_alive(int(data.get("pid", 0))) else None


# what each child's command line contains (a pid file pointing elsewhere is ignored)
CHILD_MARKS = {
    "synapse": "synapse.app.homeserver",
    "comptes": "-m homeserver.account_gateway",
    "dossier": "-m dossier_service",
    "bot": "-m bots",
}


class PortBusy(Exception):
    """A port Cercle needs is taken; the message (French) names it and who holds it."""


def check_ports(profile: Profile, *, with_dossier: bool) -> None:
    """Each port Cercle listens on is free, or PortBusy names it and who holds it."""
    hs = profile.section("homeserver")
    wanted = [(str(hs["bind_address"]), int(hs["port"]), "serveur Matrix", "homeserver.port")]
    if with_dossier:
        d = profile.section("dossier")
        wanted.append((str(d["bind_address"]), int(d["port"]), "dossier", "dossier.port"))
    for host, port, role, setting in wanted:
        if not port_is_free(host, port):
            raise PortBusy(busy_port_message(port, role, setting))


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class ServiceSpec:
    """A Cercle service run as ``python -m <module>``; every one is part of Cercle."""

    name: str
    module: str
    switch: str | None = None  # a profile section whose ``enabled: true`` turns it on

    def present(self) -> bool:
        """True; a service whose code is missing stops `cercle` loudly (never skipped)."""
        if importlib.util.find_spec(f"{self.module}.__main__") is None:
            raise CliError(
                f"le service « {self.name} » ne se charge pas (module {self.module}) : "
                "l'installation est incomplète, réinstallez Cercle (pip install -e .)"
            )
        return True

    def enabled(self, profile: Profile) -> bool:
        if self.switch is None:
            return True
        section = profile.data.get(self.switch)
        return isinstance(section, dict) and section.get("enabled") is True


SERVICES = (
    # the only process holding the Synapse admin token, on a Unix socket (issue 12)
    ServiceSpec("comptes", "homeserver.account_gateway"),
    ServiceSpec("dossier", "dossier_service"),
    ServiceSpec("bot", "bots"),
    ServiceSpec("courrier", "bridges.mail", switch="mail_bridge"),
)


@dataclass
class ServiceProcess:
    spec: ServiceSpec
    log_path: Path
    run_dir: Path
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    next_start: float = 0.0
    started_at: float = field(default=0.0)

    def start(self) -> None:
        out = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        self.proc = subprocess.Popen(
            [sys.executable, "-m", self.spec.module],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=child_setup(),
        )
        out.close()
        write_pid_file(self.run_dir, self.spec.name, self.proc.pid)
        self.started_at = time.monotonic()

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            remove_pid_file(self.run_dir, self.spec.name)
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        remove_pid_file(self.run_dir, self.spec.name)


class Supervisor:
    def __init__(self, profile: Profile, secrets: Secrets) -> None:
        self.profile = profile
        self.secrets = secrets
        self.log_dir = profile.var_dir / "log"
        self.run_dir = profile.var_dir / "run"
        self.synapse = SynapseProcess(render(profile, secrets), pid_dir=self.run_dir)
        self.services = [
            ServiceProcess(spec, self.log_dir / f"{spec.name}.log", self.run_dir)
            for spec in SERVICES
            if spec.present() and spec.enabled(profile)
        ]
        self.backups = BackupScheduler(profile, self.log_dir / "backup.log")
        self._stopping = False

    def _write_run_file(self, ready: bool) -> None:
        path = run_file(self.profile)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "pid": os.getpid(),
            "ready": ready,
            "homeserver_pid": self.synapse.pid,
            "services": {
                s.spec.name: (s.proc.pid if s.running() and s.proc else None) for s in self.services
            },
        }
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        tmp.replace(path)

    def check_ports(self) -> None:
        check_ports(self.profile, with_dossier=any(s.spec.name == "dossier" for s in self.services))

    def start(self, announce: Any) -> None:
        os.umask(PRIVATE_UMASK)  # inherited by every service
        make_private(self.profile.var_dir)  # files written before the umask (older runs)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.check_ports()
        announce("Démarrage de Synapse…")
        self._write_run_file(ready=False)
        self.synapse.start()
        bot = self.profile.section("bot")
        accounts = asyncio.run(
            ensure_service_accounts(
                self.profile.homeserver_url,
                self.profile.server_name,
                self.secrets,
                bot_localpart=str(bot["localpart"]),
                bot_display_name=str(bot["display_name"]),
            )
        )
        if any(s.spec.name == "courrier" for s in self.services):
            mail = self.profile.section("mail_bridge")
            asyncio.run(
                ensure_bridge_account(
                    self.profile.homeserver_url,
                    accounts.admin_token,
                    self.secrets,
                    user_id=f"@{mail['localpart']}:{self.profile.server_name}",
                    display_name=str(mail["display_name"]),
                )
            )
        for service in self.services:
            announce(f"Démarrage du service {service.spec.name}…")
            service.start()
        self._wait_for_dossier(announce)
        self._write_run_file(ready=True)

    def _wait_for_dossier(self, announce: Any, timeout: float = 60.0) -> None:
        """Ready means the dossier answers too (its migrations run first), or has stopped."""
        dossier = next((s for s in self.services if s.spec.name == "dossier"), None)
        if dossier is None:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and dossier.running():
            if is_healthy(self.profile.dossier_url):
                return
            time.sleep(0.2)
        announce(
            f"Attention : le dossier ne répond pas encore ; voir {self.log_dir / 'dossier.log'}"
        )

    def request_stop(self, *_: Any) -> None:
        self._stopping = True

    def watch(self) -> None:
        """Until asked to stop: restart crashed services with back-off (1 s … 60 s)."""
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        while not self._stopping:
            now = time.monotonic()
            for service in self.services:
                if service.running() or now < service.next_start:
                    continue
                if service.proc is not None:
                    if now - service.started_at > 60:
                        service.restarts = 0
                    service.restarts += 1
                    delay = min(60.0, 2.0 ** min(service.restarts, 6))
                    service.next_start = now + delay
                    service.proc = None
                    log.warning(
                        "service %s arrêté ; redémarrage dans %.0f s", service.spec.name, delay
                    )
                    continue
                service.start()
                self._write_run_file(ready=True)
            if not self.synapse.running():
                log.warning("Synapse arrêté ; redémarrage")
                with contextlib.suppress(Exception):
                    self.synapse.start()
                self._write_run_file(ready=True)
            self.backups.tick()
            time.sleep(0.5)

    def stop(self) -> None:
        self.backups.stop()
        for service in reversed(self.services):
            service.stop()
        self.synapse.stop()
        with contextlib.suppress(FileNotFoundError):
            run_file(self.profile).unlink()
