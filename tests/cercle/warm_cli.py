"""`cercle …` as a process of its own, without paying its imports each time.

Each `python -m cercle` spends ~2.5 s of CPU importing every command family (plain imports,
by design: `deployment.startup`), more than most commands take to run; the tests that drive
the CLI call it dozens of times. Here one helper process imports `cercle.cli` once, then
forks a child per call: the child is a process of its own (its own pid, environment, exit
status, stdout and stderr), runs ``python -m cercle``'s entry point with the call's
arguments, and exits. What each call sees is what a fresh interpreter sees: nothing in these
packages reads the environment at import time, and the child runs the atexit handlers as an
interpreter would. ``CERCLE_TESTS_COLD_CLI=1`` runs every call as a real
``python -m cercle`` instead (to compare).

The helper ends when the test process does (end of file on its stdin).
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# The helper: reads one JSON request a line, answers "<pid>" then "<pid> <status>".
_SERVER = r"""
import atexit, json, os, sys, traceback
import cercle.__main__  # noqa: F401  (and with it every command family)
import cercle.cli  # noqa: F401
requests = os.fdopen(os.dup(0), "r", encoding="utf-8")
answers = os.fdopen(os.dup(1), "w", encoding="utf-8")
null = os.open(os.devnull, os.O_RDWR)
os.dup2(null, 0)
os.dup2(2, 1)
for line in requests:
    call = json.loads(line)
    pid = os.fork()
    if pid == 0:
        requests.close()
        answers.close()
        out = os.open(call["out"], os.O_WRONLY | os.O_TRUNC)
        err = os.open(call["err"], os.O_WRONLY | os.O_TRUNC)
        os.dup2(out, 1)
        os.dup2(err, 2)
        os.close(out)
        os.close(err)
        sys.stdout = open(1, "w", encoding="utf-8", closefd=False)
        sys.stderr = open(2, "w", encoding="utf-8", closefd=False)
        os.environ.clear()
        os.environ.update(call["env"])
        os.chdir(call["cwd"])
        sys.argv = [cercle.__main__.__file__, *call["args"]]
        status = 0
        try:
            cercle.__main__.main()
        except SystemExit as exit_:
            code = exit_.code
            if code is None:
                status = 0
            elif isinstance(code, int):
                status = code
            else:
                print(code, file=sys.stderr)
                status = 1
        except BaseException:
            traceback.print_exc()
            status = 1
        try:
            atexit._run_exitfuncs()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(status)
    answers.write(f"{pid}\n")
    answers.flush()
    _, wait_status = os.waitpid(pid, 0)
    answers.write(f"{pid} {os.waitstatus_to_exitcode(wait_status)}\n")
    answers.flush()
"""


class WarmCli:
    """One helper process; calls are taken one at a time (a lock)."""

    def __init__(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CERCLE")}
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
        self._proc = subprocess.Popen(
            [sys.executable, "-c", _SERVER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=open(Path(tempfile.gettempdir()) / "cercle-warm-cli.log", "ab"),  # noqa: SIM115
            cwd=ROOT,
            env=env,
        )
        self._lock = threading.Lock()
        self._pending = b""

    def _read_line(self, timeout: float) -> str:
        """A line of the helper's answers within ``timeout`` s (its end: the helper died)."""
        assert self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._pending:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError
            chunk = os.read(fd, 4096)
            if not chunk:
                raise RuntimeError("le processus d'aide de la CLI s'est arrêté")
            self._pending += chunk
        line, _, self._pending = self._pending.partition(b"\n")
        return line.decode().strip()

    def alive(self) -> bool:
        return self._proc.poll() is None

    def run(
        self, env: dict[str, str], args: tuple[str, ...], timeout: float
    ) -> subprocess.CompletedProcess[str]:
        with self._lock, tempfile.TemporaryDirectory(prefix="cercle-cli-") as tmp:
            out, err = Path(tmp) / "out", Path(tmp) / "err"
            out.touch()
            err.touch()
            assert self._proc.stdin is not None
            request = {
                "args": list(args),
                "env": env,
                "cwd": os.getcwd(),
                "out": str(out),
                "err": str(err),
            }
            try:
                self._proc.stdin.write((json.dumps(request) + "\n").encode())
                self._proc.stdin.flush()
                pid = int(self._read_line(60))
                try:
                    answer = self._read_line(timeout)
                except TimeoutError:
                    os.kill(pid, signal.SIGKILL)
                    answer = ""
                    self._read_line(30)
            except BaseException:
                self._proc.kill()  # out of step with its answers: the next call starts another
                raise
            if not answer:
                raise subprocess.TimeoutExpired(
                    ["cercle", *args], timeout, out.read_text(), err.read_text()
                )
            done_pid, status = answer.split()
            assert int(done_pid) == pid, answer
            return subprocess.CompletedProcess(
                ["cercle", *args],
                int(status),
                out.read_text(encoding="utf-8"),
                err.read_text(encoding="utf-8"),
            )


_warm: WarmCli | None = None
_warm_lock = threading.Lock()


def run_cercle(
    env: dict[str, str], args: tuple[str, ...], timeout: float
) -> subprocess.CompletedProcess[str]:
    """``python -m cercle *args`` with ``env``: as a real interpreter if
    ``CERCLE_TESTS_COLD_CLI`` is set, otherwise forked from the warm helper."""
    global _warm
    if os.environ.get("CERCLE_TESTS_COLD_CLI"):
        return subprocess.run(
            [sys.executable, "-m", "cercle", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    with _warm_lock:
        if _warm is None or not _warm.alive():
            _warm = WarmCli()
        warm = _warm
    return warm.run(env, args, timeout)
