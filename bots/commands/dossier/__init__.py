"""Dossier commands: the patient's file from the conversation, one module per family.

``!patient lier <id>`` (``link``), ``!cercle`` (``circle``), ``!note`` / ``!transmission``
(``notebook``), ``!doc <catégorie>`` (``documents``), ``!tache`` / ``!taches`` (``tasks``).
What they share (the room's file, the sender's access, the write through the durable outbox)
is in ``access``.
"""

from __future__ import annotations

from nio import AsyncClient

from bots.commands.dossier import circle, documents, link, notebook, tasks
from bots.commands.dossier.access import FileAccess
from bots.commands.registry import CommandRegistry
from bots.dossier_client import DossierClient
from bots.dossier_link.arrivals import Arrivals
from bots.dossier_link.links import FileLinks
from bots.dossier_link.roles import RoleLabels
from bots.outbox import OutboxWorker


def register(
    registry: CommandRegistry,
    *,
    client: AsyncClient,
    links: FileLinks,
    worker: OutboxWorker,
    arrivals: Arrivals,
    dossier: DossierClient,
    homeserver_url: str,
    roles: RoleLabels,
    wait_seconds: float = 3.0,
    max_document_bytes: int = 25 * 1024 * 1024,
) -> None:
    access = FileAccess(client, links, worker, dossier, wait_seconds)
    link.register(registry, access)
    circle.register(registry, access, arrivals, roles)
    notebook.register(registry, access)
    documents.register(
        registry, access, homeserver_url=homeserver_url, max_document_bytes=max_document_bytes
    )
    tasks.register(registry, access)
