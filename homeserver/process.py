"""Start, watch and stop one Synapse process: the only one of the embedded default, or in the
region profile the main process or one worker (its own file beside homeserver.yaml)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from deployment.processes import child_setup, remove_pid_file, write_pid_file
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
        out = open(self.stdout_log, "ab")  # noqa: SIM115 - handed to the child
        env = dict(os.environ)
        env.setdefault("SYNAPSE_ASYNC_IO_REACTOR", "0")
        argv = [self.python, "-m", self.app, "-c", str(self.rendered.config_path)]
        if self.worker_config is not None:
            argv += ["-c", str(self.worker_config)]
        self._proc = subprocess.Popen(
            argv,
            cwd=self.rendered.data_dir,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
            preexec_fn=child_setup(),  # never outlives its supervisor
        )
        out.close()
        if self.pid_dir is not None:
            write_pid_file(self.pid_dir, self.name, self._proc.pid)
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
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        self._proc = None
        if self.pid_dir is not None:
            remove_pid_file(self.pid_dir, self.name)

    def kill(self) -> None:
        """Stop abruptly (tests of resilience)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(timeout=5)
        self._proc = None
