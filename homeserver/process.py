"""Start, watch and stop one Synapse process: the only one of the embedded default, or in the
region profile the main process or one worker (its own file beside homeserver.yaml)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from deployment.processes import remove_pid_file, spawn_service, stop_child
from homeserver.render import RenderedHomeserver


class HomeserverStartError(Exception):
    """Synapse did not become healthy; the message is French, the log path is attached."""

    def __init__(self, message: str, log_path: Path) -> None:
        super().__init__(message)
        self.log_path = log_path


def is_healthy(base_url: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/health", timeout=timeout) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@dataclass
class SynapseProcess:
    rendered: RenderedHomeserver
    python: str = sys.executable
    # where its pid file goes as soon as it is spawned (``cercle down`` after a crash)
    pid_dir: Path | None = None
    # a worker: its name, python module and own config file (None: the main process)
    name: str = "synapse"
    app: str = "synapse.app.homeserver"
    worker_config: Path | None = None
    health_url: str | None = None  # default: the rendered base URL
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def stdout_log(self) -> Path:
        return self.rendered.data_dir / f"{self.name}.stdout.log"

    @property
    def url(self) -> str:
        return self.health_url or self.rendered.base_url

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 60.0, *, wait: bool = True) -> None:
        if self.running():
            return
        env = dict(os.environ)
        env.setdefault("SYNAPSE_ASYNC_IO_REACTOR", "0")
        argv = [self.python, "-m", self.app, "-c", str(self.rendered.config_path)]
        if self.worker_config is not None:
            argv += ["-c", str(self.worker_config)]
        self._proc = spawn_service(  # never outlives its supervisor
            argv,
            log_path=self.stdout_log,
            run_dir=self.pid_dir,
            name=self.name,
            cwd=self.rendered.data_dir,
            env=env,
        )
        if wait:
            self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Until its /health answers; HomeserverStartError when it stops or stays silent."""
        assert self._proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise HomeserverStartError(
                    f"Synapse ({self.name}) s'est arrêté au démarrage (code {self._proc.returncode}) ; "
                    f"voir {self.stdout_log}",
                    self.stdout_log,
                )
            if is_healthy(self.url, timeout=0.5):
                return
            time.sleep(0.1)
        self.stop()
        raise HomeserverStartError(
            f"Synapse ({self.name}) n'a pas répondu en {timeout:.0f} s ; voir {self.stdout_log}",
            self.stdout_log,
        )

    def stop(self, timeout: float = 20.0) -> None:
        if self._proc is None:
            return
        stop_child(self._proc, timeout=timeout)
        self._proc = None
        if self.pid_dir is not None:
            remove_pid_file(self.pid_dir, self.name)

    def kill(self) -> None:
        """Stop abruptly (tests of resilience)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(timeout=5)
        self._proc = None
