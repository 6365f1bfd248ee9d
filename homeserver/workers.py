"""The Synapse processes of the ``region`` profile, as Synapse documents workers (pure).

From ``region`` in the profile: the main process, generic workers for ``/sync`` and client
reads, event persisters that also write Synapse's other streams, a media repository and a
background-tasks worker. Every process listens on loopback at ``region.base_port`` + an
offset; the reverse proxy (``homeserver/proxy.py``) routes to them, Redis carries the
replication between them, PostgreSQL holds their one database.

Offsets: +0 main process (client, openid, consent; the admin API for Cercle's own tools),
+1 main replication, +10.. generic workers, +20.. persisters (client), +30.. persisters
(replication), +40 media repository, +41 background tasks (health only).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MAIN = "main"
MEDIA = "media1"
BACKGROUND = "background1"

# Streams with a single writer (Synapse refuses more): on the first persister.
SINGLE_WRITER_STREAMS = ("typing", "to_device", "account_data", "presence", "push_rules")


@dataclass(frozen=True)
class WorkerSpec:
    name: str
    app: str  # python module run with ``-m``
    port: int  # its HTTP listener (client, media or health only), loopback
    resources: tuple[str, ...]
    replication_port: int | None = None
    role: str = ""  # French, for `cercle status`

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass(frozen=True)
class Topology:
    main_port: int
    main_replication_port: int
    generic: tuple[WorkerSpec, ...]
    persisters: tuple[WorkerSpec, ...]
    media: WorkerSpec
    background: WorkerSpec

    @property
    def workers(self) -> tuple[WorkerSpec, ...]:
        return (*self.generic, *self.persisters, self.media, self.background)

    @property
    def main_url(self) -> str:
        return f"http://127.0.0.1:{self.main_port}"

    def shared_config(self) -> dict[str, Any]:
        """What homeserver.yaml adds for workers (rendered as YAML by the template)."""
        first = self.persisters[0].name
        names = [p.name for p in self.persisters]
        instance_map: dict[str, Any] = {
            MAIN: {"host": "127.0.0.1", "port": self.main_replication_port}
        }
        for p in self.persisters:
            instance_map[p.name] = {"host": "127.0.0.1", "port": p.replication_port}
        writers: dict[str, Any] = {"events": names, "receipts": names, "device_lists": [first]}
        writers.update({stream: first for stream in SINGLE_WRITER_STREAMS})
        return {
            "instance_map": instance_map,
            "stream_writers": writers,
            "run_background_tasks_on": self.background.name,
            "update_user_directory_from_worker": self.background.name,
            "pusher_instances": [self.background.name],
            "enable_media_repo": False,
            "media_instance_running_background_jobs": self.media.name,
        }


def topology(region: Mapping[str, Any]) -> Topology:
    base = int(region["base_port"])
    sync_workers = int(region["sync_workers"])
    persisters = int(region["event_persisters"])
    if sync_workers < 1 or persisters < 1 or sync_workers > 9 or persisters > 9:
        raise ValueError("region.sync_workers et region.event_persisters : entre 1 et 9")
    generic = tuple(
        WorkerSpec(
            f"generic{i + 1}",
            "synapse.app.generic_worker",
            base + 10 + i,
            ("client",),
            role="sync et lectures",
        )
        for i in range(sync_workers)
    )
    writers = tuple(
        WorkerSpec(
            f"persister{i + 1}",
            "synapse.app.generic_worker",
            base + 20 + i,
            ("client",),
            replication_port=base + 30 + i,
            role="écriture des événements" + (" et des flux" if i == 0 else ""),
        )
        for i in range(persisters)
    )
    return Topology(
        main_port=base,
        main_replication_port=base + 1,
        generic=generic,
        persisters=writers,
        media=WorkerSpec(
            MEDIA, "synapse.app.media_repository", base + 40, ("media",), role="médias"
        ),
        background=WorkerSpec(
            BACKGROUND,
            "synapse.app.generic_worker",
            base + 41,
            ("health",),
            role="tâches de fond",
        ),
    )


def worker_config(spec: WorkerSpec, log_config_path: str) -> dict[str, Any]:
    """One worker's own file (beside the shared homeserver.yaml)."""
    listeners: list[dict[str, Any]] = [
        {
            "type": "http",
            "port": spec.port,
            "bind_addresses": ["127.0.0.1"],
            "x_forwarded": True,
            "resources": [{"names": list(spec.resources), "compress": False}],
        }
    ]
    if spec.replication_port is not None:
        listeners.append(
            {
                "type": "http",
                "port": spec.replication_port,
                "bind_addresses": ["127.0.0.1"],
                "resources": [{"names": ["replication"]}],
            }
        )
    return {
        "worker_app": spec.app,
        "worker_name": spec.name,
        "worker_listeners": listeners,
        "worker_log_config": log_config_path,
    }
