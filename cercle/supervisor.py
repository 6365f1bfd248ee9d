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
from cercle.bot_instances import (
    BOT_SERVICE,
    bot_accounts,
    bot_configs,
    instance_name,
    is_shard_instance,
    shard_env,
)
from cercle.errors import CliError
from deployment.dependencies import postgres_databases, region_dependencies
from deployment.postgres import DatabaseSetupError, ensure_databases
from deployment.postgres_upkeep import StatisticsUpkeep, autovacuum_warnings
from deployment.processes import (
    PRIVATE_UMASK,
    busy_port_message,
    make_private,
    port_is_free,
    remove_pid_file,
    spawn_service,
    stop_child,
)
from deployment.profile import Profile
from deployment.secrets import Secrets
from homeserver import proxy
from homeserver.accounts import ensure_service_accounts
from homeserver.process import HomeserverStartError, SynapseProcess, is_healthy
from homeserver.render import RenderedHomeserver, render

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


def child_marks(profile: Profile) -> dict[str, str]:
    """CHILD_MARKS plus each of the bot's other shards (bot2 …, and those a larger
    ``bot.shards`` left a pid file for) and, in the region profile, every worker, the proxy
    and each dossier."""
    marks = dict(CHILD_MARKS)
    recorded = {path.stem for path in (profile.var_dir / "run").glob("bot*.pid")}
    shards = {instance_name(k) for k in range(2, len(profile.bot_user_ids) + 1)}
    for name in sorted(shards | {name for name in recorded if is_shard_instance(name)}):
        marks[name] = CHILD_MARKS[BOT_SERVICE]
    if profile.is_region:
        from homeserver.workers import topology

        for spec in topology(profile.section("region")).workers:
            marks[spec.name] = spec.app
        marks["proxy"] = "nginx"
        for i in range(len(proxy.dossier_ports(profile))):
            marks[f"dossier{i + 1}"] = "-m dossier_service"
    return marks


class PortBusy(Exception):
    """A port Cercle needs is taken; the message (French) names it and who holds it."""


def check_ports(profile: Profile, *, with_dossier: bool) -> None:
    """Each port Cercle listens on is free, or PortBusy names it and who holds it."""
    hs = profile.section("homeserver")
    wanted = [(str(hs["bind_address"]), int(hs["port"]), "serveur Matrix", "homeserver.port")]
    if with_dossier:
        d = profile.section("dossier")
        wanted.append((str(d["bind_address"]), int(d["port"]), "dossier", "dossier.port"))
    if profile.is_region:
        from homeserver.workers import topology

        topo = topology(profile.section("region"))
        internal = [topo.main_port, topo.main_replication_port]
        for spec in topo.workers:
            internal += [spec.port] + ([spec.replication_port] if spec.replication_port else [])
        internal += proxy.dossier_ports(profile) if with_dossier else []
        wanted += [("127.0.0.1", p, "processus interne", "region.base_port") for p in internal]
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
    ServiceSpec(BOT_SERVICE, "bots"),  # one process per shard (bot.shards): bot, bot2 …
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
    # several processes of one service (region: dossier1, dossier2; the bot's shards: bot2
    # …): own name and settings
    instance: str = ""
    env: dict[str, str] = field(default_factory=dict)
    restarted: int = 0  # every restart since `cercle up` (shown by `cercle status`)

    @property
    def name(self) -> str:
        return self.instance or self.spec.name

    def start(self) -> None:
        self.proc = spawn_service(
            [sys.executable, "-m", self.spec.module],
            log_path=self.log_path,
            run_dir=self.run_dir,
            name=self.name,
            env={**os.environ, **self.env},
        )
        self.started_at = time.monotonic()

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc is not None:
            stop_child(self.proc, timeout=timeout)
        remove_pid_file(self.run_dir, self.name)


DEPENDENCY_CHECK_SECONDS = 15.0


class Supervisor:
    def __init__(self, profile: Profile, secrets: Secrets) -> None:
        self.profile = profile
        self.secrets = secrets
        self.log_dir = profile.var_dir / "log"
        self.run_dir = profile.var_dir / "run"
        rendered = render(profile, secrets)
        self.synapse = SynapseProcess(rendered, pid_dir=self.run_dir)
        # region: the workers and the proxy, restarted like the main process when they die
        self.workers = self._workers(rendered)
        self.proxy: proxy.ProxyProcess | None = None
        if rendered.topology is not None:
            self.proxy = proxy.ProxyProcess(
                proxy.nginx_binary(profile),
                proxy.render(profile, rendered.topology),
                profile.homeserver_url,
                pid_dir=self.run_dir,
            )
        self.restarts: dict[str, int] = {}
        self._next_start: dict[str, float] = {}
        # a process that died and waits for its restart: when (wall clock), for `cercle status`
        self._restart_at: dict[str, float] = {}
        # region: Redis and PostgreSQL, watched (not Cercle's to restart: told in the log)
        self._dependencies = region_dependencies(profile) if profile.is_region else []
        self._databases = postgres_databases(profile) if profile.is_region else []
        self._unreachable: set[str] = set()
        self._next_dependency_check = 0.0
        # region: the planner's statistics, gathered by Cercle when autovacuum is off
        self.statistics = StatisticsUpkeep(self._databases) if profile.is_region else None
        self.services = [
            process
            for spec in SERVICES
            if spec.present() and spec.enabled(profile)
            for process in self._processes_of(spec)
        ]
        self.backups = BackupScheduler(profile, self.log_dir / "backup.log")
        self._stopping = False

    def _workers(self, rendered: RenderedHomeserver) -> list[SynapseProcess]:
        if rendered.topology is None:
            return []
        return [
            SynapseProcess(
                rendered,
                pid_dir=self.run_dir,
                name=spec.name,
                app=spec.app,
                worker_config=rendered.worker_configs[spec.name],
                health_url=spec.base_url,
            )
            for spec in rendered.topology.workers
        ]

    def _processes_of(self, spec: ServiceSpec) -> list[ServiceProcess]:
        if spec.name == BOT_SERVICE:  # the front keeps the name, pid and log files of "bot"
            return [
                ServiceProcess(
                    spec,
                    self.log_dir / f"{instance_name(config.shard)}.log",
                    self.run_dir,
                    instance="" if config.shard == 1 else instance_name(config.shard),
                    env=shard_env(config.shard),
                )
                for config in bot_configs(self.profile)
            ]
        if spec.name != "dossier" or not self.profile.is_region:
            return [ServiceProcess(spec, self.log_dir / f"{spec.name}.log", self.run_dir)]
        return [
            ServiceProcess(
                spec,
                self.log_dir / f"dossier{i + 1}.log",
                self.run_dir,
                instance=f"dossier{i + 1}",
                env={
                    "CERCLE__DOSSIER__BIND_ADDRESS": "127.0.0.1",
                    "CERCLE__DOSSIER__PORT": str(port),
                },
            )
            for i, port in enumerate(proxy.dossier_ports(self.profile))
        ]

    def homeserver_processes(self) -> list[Any]:
        return [self.synapse, *self.workers, *([self.proxy] if self.proxy else [])]

    def _ensure_databases(self) -> None:
        try:
            ensure_databases(self._databases)
        except DatabaseSetupError as exc:
            raise CliError(str(exc)) from exc

    def _check_dependencies(self) -> None:
        """Redis and PostgreSQL answer, or nothing starts (they are not Cercle's to start)."""
        for dep in self._dependencies:
            if not dep.answers():
                raise CliError(dep.unreachable())

    def _write_run_file(self, ready: bool) -> None:
        path = run_file(self.profile)
        path.parent.mkdir(parents=True, exist_ok=True)
        data: dict[str, Any] = {
            "pid": os.getpid(),
            "ready": ready,
            "homeserver_pid": self.synapse.pid,
            "services": {
                s.name: (s.proc.pid if s.running() and s.proc else None) for s in self.services
            },
            "restarts": {
                **self.restarts,
                **{s.name: s.restarted for s in self.services if s.restarted},
            },
            "restart_at": dict(self._restart_at),
        }
        if self.proxy is not None:
            data["homeserver_processes"] = {
                p.name: {"pid": p.pid if p.running() else None, "url": p.url}
                for p in self.homeserver_processes()
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
        if self.profile.is_region:
            announce("Redis et PostgreSQL…")
            self._check_dependencies()
            self._ensure_databases()
            for warning in autovacuum_warnings(self._databases):
                announce(f"Attention : {warning}")  # in cercle.log when detached
        announce("Démarrage de Synapse…")
        self._write_run_file(ready=False)
        self.synapse.start(timeout=120)
        if self.workers:
            announce(f"Démarrage des {len(self.workers)} workers Synapse et du proxy…")
            for worker in self.workers:
                worker.start(wait=False)
            for worker in self.workers:
                worker.wait_ready(timeout=120)
        if self.proxy is not None:
            self.proxy.check()
            self.proxy.start()
        accounts = asyncio.run(
            ensure_service_accounts(
                self.profile.admin_url,
                self.profile.server_name,
                self.secrets,
                bots=bot_accounts(self.profile, self.secrets),
            )
        )
        if any(s.spec.name == "courrier" for s in self.services):
            mail = self.profile.section("mail_bridge")
            asyncio.run(
                ensure_bridge_account(
                    self.profile.admin_url,
                    accounts.admin_token,
                    self.secrets,
                    user_id=f"@{mail['localpart']}:{self.profile.server_name}",
                    display_name=str(mail["display_name"]),
                )
            )
        for service in self.services:
            announce(f"Démarrage du service {service.name}…")
            service.start()
            if service.spec.name == "dossier" and service.instance:
                self._wait_for_dossier(announce, service)  # one migrates before the next starts
        self._wait_for_dossier(announce)
        self._write_run_file(ready=True)

    def _wait_for_dossier(
        self, announce: Any, dossier: ServiceProcess | None = None, timeout: float = 60.0
    ) -> None:
        """Ready means the dossier answers too (its migrations run first), or has stopped."""
        url = self.profile.dossier_url
        if dossier is not None and dossier.instance:
            url = f"http://127.0.0.1:{dossier.env['CERCLE__DOSSIER__PORT']}"
        dossier = dossier or next((s for s in self.services if s.spec.name == "dossier"), None)
        if dossier is None:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and dossier.running():
            if is_healthy(url):
                return
            time.sleep(0.2)
        announce(f"Attention : le dossier ne répond pas encore ; voir {dossier.log_path}")

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
                    service.restarted += 1
                    delay = min(60.0, 2.0 ** min(service.restarts, 6))
                    service.next_start = now + delay
                    service.proc = None
                    log.warning("service %s arrêté ; redémarrage dans %.0f s", service.name, delay)
                    self._restart_at[service.name] = time.time() + delay
                    self._write_run_file(ready=True)  # status says "restarting", not "stopped"
                    continue
                service.start()
                self._restart_at.pop(service.name, None)
                self._write_run_file(ready=True)
            if not self.synapse.running():
                log.warning("Synapse arrêté ; redémarrage")
                self.restarts["synapse"] = self.restarts.get("synapse", 0) + 1
                with contextlib.suppress(Exception):
                    self.synapse.start()
                self._write_run_file(ready=True)
            for process in self.homeserver_processes()[1:]:
                if process.running():
                    continue
                next_start = self._next_start.get(process.name, 0.0)
                if now >= next_start:
                    # at once the first time; a process dying again and again waits longer
                    count = self.restarts.get(process.name, 0) + 1
                    self.restarts[process.name] = count
                    self._next_start[process.name] = now + min(60.0, 2.0 ** min(count - 1, 6))
                    log.warning("processus %s arrêté ; redémarrage", process.name)
                    with contextlib.suppress(HomeserverStartError, proxy.ProxyError, OSError):
                        process.start(wait=False)
                    self._restart_at.pop(process.name, None)
                    self._write_run_file(ready=True)
                elif process.name not in self._restart_at:  # died again: waits its back-off
                    self._restart_at[process.name] = time.time() + (next_start - now)
                    self._write_run_file(ready=True)
            self.watch_dependencies(now)
            if self.statistics is not None:
                self.statistics.tick(now)
            self.backups.tick()
            time.sleep(0.5)

    def watch_dependencies(self, now: float) -> None:
        """Every 15 s: a dependency that stops answering is logged as an error once, and
        its return once (`cercle status` shows it meanwhile)."""
        if now < self._next_dependency_check:
            return
        self._next_dependency_check = now + DEPENDENCY_CHECK_SECONDS
        for dep in self._dependencies:
            key = f"{dep.name} {dep.address}"
            up = dep.answers()
            if not up and key not in self._unreachable:
                self._unreachable.add(key)
                log.error("%s", dep.unreachable())
            elif up and key in self._unreachable:
                self._unreachable.discard(key)
                log.warning("%s répond de nouveau sur %s", dep.name, dep.address)

    def stop(self) -> None:
        self.backups.stop()
        for service in reversed(self.services):
            service.stop()
        if self.proxy is not None:
            self.proxy.stop()
        for worker in reversed(self.workers):
            worker.stop()
        self.synapse.stop()
        with contextlib.suppress(FileNotFoundError):
            run_file(self.profile).unlink()
