"""The reverse proxy of the region profile: nginx (Debian's package), rendered and run in the
foreground under the supervisor, with Synapse's documented worker routing.

nginx listens where the single-process profile's Synapse and dossier listen
(``homeserver.port``, ``dossier.port``), so clients, the bot, the dossier and the mail
bridge connect to the same URLs in both profiles.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import jinja2

from deployment.processes import remove_pid_file, spawn_service, stop_child
from deployment.profile import Profile, parse_size
from homeserver.workers import Topology

TEMPLATES = Path(__file__).parent / "templates"


class ProxyError(Exception):
    """nginx is missing, its configuration is refused, or it does not answer (French)."""


def dossier_ports(profile: Profile) -> list[int]:
    """The dossier processes' own loopback ports (behind the proxy): base_port + 50 …"""
    region = profile.section("region")
    base = int(region["base_port"]) + 50
    return [base + i for i in range(int(region["dossier_processes"]))]


def render_text(profile: Profile, topology: Topology, prefix: Path) -> str:
    hs = profile.section("homeserver")
    dossier = profile.section("dossier")
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    return env.get_template("nginx.conf.j2").render(
        prefix=str(prefix),
        run_as_root=os.geteuid() == 0,
        worker_processes=min(4, os.cpu_count() or 1),
        bind_address=hs["bind_address"],
        port=int(hs["port"]),
        max_body=parse_size(hs["max_upload_size"]) + 1024 * 1024,
        main_port=topology.main_port,
        generic_ports=[w.port for w in topology.generic],
        stream_port=topology.persisters[0].port,
        media_port=topology.media.port,
        dossier_ports=dossier_ports(profile),
        dossier_bind_address=dossier["bind_address"],
        dossier_port=int(dossier["port"]),
        dossier_max_body=parse_size(dossier["documents_max_size"]) + 2 * 1024 * 1024,
    )


def render(profile: Profile, topology: Topology) -> Path:
    prefix = profile.var_dir / "nginx"
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (prefix / "tmp" / sub).mkdir(parents=True, exist_ok=True)
    path = prefix / "nginx.conf"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(render_text(profile, topology, prefix), encoding="utf-8")
    tmp.chmod(0o600)
    tmp.replace(path)
    return path


def nginx_binary(profile: Profile) -> str:
    configured = str(profile.section("region")["nginx"])
    found = shutil.which(configured) or (configured if Path(configured).exists() else None)
    if found is None:
        raise ProxyError(
            f"nginx introuvable ({configured}) : « make up PROFILE=region » l'installe "
            "(en root), ou « apt-get install nginx-light »"
        )
    return found


def answers(url: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout) as resp:
            return bool(resp.status == 200)
    except urllib.error.HTTPError:
        return True  # nginx answered; what is behind it is checked on its own
    except (urllib.error.URLError, OSError):
        return False


@dataclass
class ProxyProcess:
    binary: str
    config_path: Path
    url: str  # where it listens for Synapse (health: any answer from nginx)
    pid_dir: Path | None = None
    name: str = "proxy"
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def log_path(self) -> Path:
        return self.config_path.parent / "nginx.stdout.log"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _paths(self) -> list[str]:
        prefix = self.config_path.parent
        return ["-c", str(self.config_path), "-p", str(prefix), "-e", str(prefix / "error.log")]

    def check(self) -> None:
        done = subprocess.run(
            [self.binary, "-t", "-q", *self._paths()],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise ProxyError(f"configuration nginx refusée : {done.stderr.strip()[:500]}")

    def start(self, timeout: float = 20.0, *, wait: bool = True) -> None:
        if self.running():
            return
        self._proc = spawn_service(
            [self.binary, *self._paths()],
            log_path=self.log_path,
            run_dir=self.pid_dir,
            name=self.name,
        )
        if not wait:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise ProxyError(
                    f"nginx s'est arrêté au démarrage ; voir {self.config_path.parent / 'error.log'}"
                )
            if answers(self.url, timeout=0.5):
                return
            time.sleep(0.1)
        raise ProxyError(f"nginx ne répond pas en {timeout:.0f} s")

    def stop(self, timeout: float = 10.0) -> None:
        if self._proc is None:
            return
        stop_child(self._proc, timeout=timeout, sig=signal.SIGQUIT)  # ends open requests first
        self._proc = None
        if self.pid_dir is not None:
            remove_pid_file(self.pid_dir, self.name)
