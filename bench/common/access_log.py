"""Synapse's request log, for benches only: one line per request with its requester, its time
and the CPU Synapse spent on it (``ru=``), read back between two offsets of the log file."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from homeserver.render import RenderedHomeserver

_ACCESS = re.compile(
    r"\{(@[^}]+)\} Processed request: ([0-9.]+)sec/[0-9.]+sec "
    r'ru=\(([0-9.]+)sec, ([0-9.]+)sec\).*?"(\w+) (\S+) HTTP'
)


def request_log_on(rendered: RenderedHomeserver, *, received: bool = False) -> Path:
    """The rendered homeserver logs each request (``received``: its arrival too, DEBUG);
    returns the log file."""
    log_yaml = yaml.safe_load(rendered.log_config_path.read_text())
    level = "DEBUG" if received else "INFO"
    log_yaml.setdefault("loggers", {})["synapse.access.http"] = {"level": level}
    rendered.log_config_path.write_text(yaml.safe_dump(log_yaml))
    return rendered.data_dir / "homeserver.log"


@dataclass(frozen=True)
class Request:
    user: str
    seconds: float  # from arrival to response (a long-poll /sync: its wait included)
    cpu_seconds: float  # Synapse's CPU for it, user + system
    method: str
    path: str  # query string included


def requests(log: Path, start: int, end: int | None = None) -> Iterator[Request]:
    """The requests the log records between byte offsets ``start`` and ``end``."""
    with open(log, "rb") as fh:
        fh.seek(start)
        data = fh.read() if end is None else fh.read(max(0, end - start))
    for raw in data.splitlines():
        m = _ACCESS.search(raw.decode("utf-8", "replace"))
        if m:
            yield Request(
                m.group(1),
                float(m.group(2)),
                float(m.group(3)) + float(m.group(4)),
                m.group(5),
                m.group(6),
            )


@dataclass
class SyncLoad:
    """One account's /syncs over a window."""

    count: int = 0
    cpu_seconds: float = 0.0
    # its /keys/query requests: with lazy members, Synapse names every member event of a
    # /sync as a device-list change (bots/matrix/device_changes.py)
    key_queries: int = 0

    def line(self, elapsed: float) -> str:
        if not self.count:
            return "aucune /sync"
        return (
            f"{self.count / elapsed:.1f} /sync par s, {self.cpu_seconds / self.count * 1000:.1f} ms "
            f"de CPU Synapse chacune, {self.cpu_seconds / elapsed:.2f} cœur ; "
            f"{self.key_queries / elapsed:.2f} /keys/query par s"
        )


def sync_load(log: Path, start: int, end: int, users: list[str]) -> dict[str, SyncLoad]:
    out = {user: SyncLoad() for user in users}
    for request in requests(log, start, end):
        load = out.get(request.user)
        path = request.path.split("?", 1)[0]
        if load is not None and path.endswith("/sync"):
            load.count += 1
            load.cpu_seconds += request.cpu_seconds
        elif load is not None and path.endswith("/keys/query"):
            load.key_queries += 1
    return out
