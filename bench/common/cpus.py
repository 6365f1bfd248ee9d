"""A deployment measured on some of the machine's CPUs only: the figure per added core.

The processes a deployment starts inherit the CPUs of the command that starts them
(``cercle up`` is started on them); PostgreSQL and Redis run before any bench, so their
processes are moved for the measure (a new PostgreSQL backend inherits its postmaster's
CPUs) and given every CPU back after. The bench's own clients run on the last CPU.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

SERVICES = ("postgres", "redis-server")  # started by the machine, not by Cercle


def every_cpu() -> set[int]:
    return set(range(os.cpu_count() or 1))


def counts(text: str) -> list[int]:
    """``"1,2"`` → [1, 2]: each a number of CPUs this machine has; refused in French."""
    try:
        wanted = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise SystemExit(f"--cpus : des nombres séparés par des virgules, pas « {text} »") from None
    available = len(every_cpu())
    if not wanted or any(n < 1 or n > available for n in wanted):
        raise SystemExit(f"--cpus : entre 1 et {available} (ce que cette machine a)")
    return wanted


def service_pids() -> list[int]:
    pids = []
    for comm in Path("/proc").glob("[0-9]*/comm"):
        with contextlib.suppress(OSError):
            if comm.read_text().strip() in SERVICES:
                pids.append(int(comm.parent.name))
    return pids


def _move(pids: list[int], cpus: set[int]) -> None:
    for pid in pids:
        try:
            os.sched_setaffinity(pid, cpus)
        except ProcessLookupError:
            continue  # ended meanwhile
        except PermissionError:
            raise SystemExit(
                "--cpus : impossible de déplacer PostgreSQL et Redis (il faut être root)"
            ) from None


@contextlib.contextmanager
def services_on(cpus: set[int]) -> Iterator[None]:
    """PostgreSQL's and Redis's processes on ``cpus`` meanwhile, on every CPU after."""
    _move(service_pids(), cpus)
    try:
        yield
    finally:
        _move(service_pids(), every_cpu())


def starter_on(cpus: set[int] | None) -> Callable[[], None] | None:
    """A ``preexec_fn`` for the command that starts a deployment: it and what it starts run on
    ``cpus`` (None: wherever the machine puts them)."""
    if cpus is None:
        return None
    return lambda: os.sched_setaffinity(0, cpus)
