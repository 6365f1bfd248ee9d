"""The processes of a deployment: children that die with their supervisor, pid files written
at spawn, private data files, and who holds a busy port.

- :func:`die_with_parent` is the ``preexec_fn`` of every service spawned from the main
  thread (:func:`child_setup`): the kernel sends it SIGTERM when the supervisor dies, even
  by SIGKILL (``PR_SET_PDEATHSIG``, Linux).
- :func:`write_pid_file` records each child as soon as it is spawned, so that ``cercle down``
  finds it even when the supervisor died before writing its run file.
- :func:`spawn_service` starts a service that way (its own session, output to its log,
  its pid file written); :func:`stop_child` asks a child to end, then kills it after a grace.
- :func:`make_private` and :data:`PRIVATE_UMASK`: everything under ``var/`` belongs to the
  service user alone (0700 directories, 0600 files).
- :func:`port_holder` names the process listening on a TCP port (``/proc``), for a clear
  error instead of a service that fails to bind.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import stat
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

PRIVATE_UMASK = 0o077
_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the parent dies; exit at once if it already
    has (the parent may die between fork and this call)."""
    parent = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG)")
    if os.getppid() != parent:
        os._exit(1)


def child_setup() -> Callable[[], None] | None:
    """The ``preexec_fn`` for a child spawned now. The kernel ties PR_SET_PDEATHSIG to the
    parent *thread*: a child spawned from a worker thread (``asyncio.to_thread``) would be
    killed when that thread ends. So only children of the main thread get it (the
    supervisor spawns from its main thread); the others rely on their pid files."""
    return die_with_parent if threading.current_thread() is threading.main_thread() else None


def pid_file(run_dir: Path, name: str) -> Path:
    return run_dir / f"{name}.pid"


def write_pid_file(run_dir: Path, name: str, pid: int) -> None:
    run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = pid_file(run_dir, name)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(str(pid), encoding="utf-8")
    tmp.replace(path)


def remove_pid_file(run_dir: Path, name: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        pid_file(run_dir, name).unlink()


def spawn_service(
    argv: list[str],
    *,
    log_path: Path,
    run_dir: Path | None,
    name: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start a service in its own session, stdout and stderr appended to ``log_path``, no
    stdin, tied to this process (:func:`child_setup`); its pid file is written in ``run_dir``
    at once (none when ``run_dir`` is None)."""
    with open(log_path, "ab") as out:  # the child holds its own copy
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=child_setup(),
        )
    if run_dir is not None:
        write_pid_file(run_dir, name, proc.pid)
    return proc


def stop_child(proc: subprocess.Popen[bytes], *, timeout: float, sig: int = signal.SIGTERM) -> None:
    """Ask a running child to end (``sig``); kill it when it has not within ``timeout`` s."""
    if proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def command_line(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode("utf-8", "replace").strip()


def recorded_children(run_dir: Path, marks: dict[str, str]) -> dict[str, int]:
    """The children still alive among the pid files, each checked against the command it was
    started with (``marks``: name → a word of its command line): a pid reused by an
    unrelated process is never signalled."""
    alive: dict[str, int] = {}
    for name, mark in marks.items():
        try:
            pid = int(pid_file(run_dir, name).read_text(encoding="utf-8").strip())
        except (OSError, ValueError):
            continue
        if pid > 0 and mark in command_line(pid):
            alive[name] = pid
        else:
            remove_pid_file(run_dir, name)
    return alive


def make_private(root: Path) -> None:
    """0700 on every directory and 0600 on every file under ``root`` (symlinks left alone)."""
    if not root.exists():
        return
    root.chmod(0o700)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames:
            path = Path(dirpath, name)
            if not path.is_symlink():
                path.chmod(0o700)
        for name in filenames:
            path = Path(dirpath, name)
            mode = path.lstat().st_mode
            if stat.S_ISREG(mode) and mode & 0o077:
                path.chmod(stat.S_IMODE(mode) & 0o700)


def exposed_paths(root: Path) -> list[Path]:
    """Everything under ``root`` that another local account could read or enter."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            path = Path(dirpath, name)
            if not path.is_symlink() and path.lstat().st_mode & 0o077:
                found.append(path)
    return found


@dataclass(frozen=True)
class PortHolder:
    pid: int | None
    command: str


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def port_holder(port: int) -> PortHolder:
    """Who listens on ``port`` (pid and command line when /proc lets us see it)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                local, state, inode = fields[1], fields[3], fields[9]
                if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                    inodes.add(inode)
    if inodes:
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                for fd in (proc / "fd").iterdir():
                    target = os.readlink(fd)
                    if target.startswith("socket:[") and target[8:-1] in inodes:
                        pid = int(proc.name)
                        return PortHolder(pid, command_line(pid))
    return PortHolder(None, "")


def busy_port_message(port: int, role: str, setting: str) -> str:
    """French: which port, for what, who holds it, what to do."""
    holder = port_holder(port)
    who = (
        f"le processus {holder.pid} ({holder.command[:120]})"
        if holder.pid
        else "un autre processus (invisible pour ce compte)"
    )
    return (
        f"le port {port} ({role}) est déjà occupé par {who}. "
        f"Arrêtez-le (« cercle down » s'il s'agit d'un Cercle précédent) ou choisissez un "
        f"autre port ({setting})."
    )
