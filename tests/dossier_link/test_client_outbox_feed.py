"""The dossier client, the outbox and the feed consumer against the real dossier service."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from support import eventually

from bots.dossier_client import DossierClient
from bots.dossier_link.feed import FeedConsumer
from bots.dossier_link.store import SyncStore
from bots.outbox import (
    DONE,
    PENDING,
    Outbox,
    OutboxItem,
    OutboxWorker,
    Refused,
    Unavailable,
    idempotency_key,
    open_outbox_database,
)
from tests.dossier_link.dossier_support import (
    COORD,
    NURSE,
    coordination_task,
    file_with_tasks,
    new_file,
)


async def test_client_writes_once_per_key_and_reads_back(dossier: DossierClient) -> None:
    pid = await new_file(dossier)
    again = await dossier.create_patient(
        room_id="!room:cercle.test", label="Mme A.", coordinator=COORD, key="k-create"
    )
    assert again["id"] == pid
    assert (await dossier.patient_by_room("!room:cercle.test") or {})["id"] == pid
    for _ in range(2):
        await dossier.add_notebook_entry(
            pid, kind="transmission", text="Pansement refait", actor=NURSE, key="k-note"
        )
    entries = [e for e in await dossier.notebook(pid) if e["text"] == "Pansement refait"]
    assert (
        len(entries) == 1 and entries[0]["author"] == NURSE and entries[0]["kind"] == "transmission"
    )
    assert entries[0]["source"] == "matrix"
    for _ in range(2):
        await dossier.upload_document(
            pid,
            category="ordonnance",
            filename="ordo.pdf",
            data=b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n",
            actor=NURSE,
            key="k-doc",
        )
    docs = await dossier.documents(pid)
    assert [(d["category"], d["filename"]) for d in docs] == [("ordonnance", "ordo.pdf")]
    task = await coordination_task(
        dossier, pid, "Renouveler", assignee=NURSE, actor=COORD, key="k-task"
    )
    assert [t["id"] for t in await dossier.open_tasks(pid)] == [task["id"]]
    await dossier.set_task_state(task["id"], "fait", actor=NURSE, key="k-done")
    assert await dossier.open_tasks(pid) == []
    members = await dossier.circle(pid)
    assert [(m["matrix_user_id"], m["role"]) for m in members] == [
        (COORD, "coordinateur"),
        (NURSE, "intervenant"),
    ]
    assert "ordonnance" in await dossier.document_categories()
    # the file can take the pseudonymous id the bot gave the room; taken once
    chosen = await dossier.create_patient(
        room_id="!other:cercle.test",
        label="B",
        coordinator=COORD,
        patient_id="P-7K3M9Q2XHD",
        key="k-chosen",
    )
    assert chosen["id"] == "P-7K3M9Q2XHD"
    with pytest.raises(Refused) as taken:
        await dossier.create_patient(
            room_id=None,
            label="C",
            coordinator=COORD,
            patient_id="P-7K3M9Q2XHD",
            key="k-chosen-2",
        )
    assert taken.value.status == 409
    events = await dossier.events(0)
    types = [e["type"] for e in events]
    assert types[0] == "patient.created" and "document.added" in types and "task.assigned" in types
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    with pytest.raises(Refused) as refused:
        await dossier.upload_document(
            pid,
            category="inconnue",
            filename="x.pdf",
            data=b"%PDF-1.4",
            actor=NURSE,
            key="k-bad",
        )
    assert refused.value.status == 400 and refused.value.errcode == "M_INVALID_PARAM"
    assert await dossier.get_patient("P-NOPE") is None


async def test_unreachable_dossier_is_unavailable(dossier_server: Any) -> None:
    client = DossierClient(
        dossier_server.url, dossier_server.config.service_token, timeout_seconds=2
    )
    await dossier_server.stop()
    try:
        with pytest.raises(Unavailable):
            await client.events(0)
    finally:
        await client.close()


async def test_outbox_survives_a_dossier_outage_and_writes_once(
    dossier_server: Any, tmp_path: Path
) -> None:
    client = DossierClient(
        dossier_server.url, dossier_server.config.service_token, timeout_seconds=2
    )
    pid = await new_file(client)
    box = Outbox(open_outbox_database(tmp_path / "o.sqlite3"), tmp_path / "blobs")
    delivered: list[str] = []

    async def deliver(item: OutboxItem) -> Mapping[str, Any]:
        entry = await client.add_notebook_entry(
            pid, kind="note", text=item.payload["text"], actor=NURSE, key=item.key
        )
        delivered.append(item.key)
        return {"id": entry["id"]}

    worker = OutboxWorker(box, deliver, idle_seconds=0.2)
    runner = asyncio.create_task(worker.run())
    try:
        await dossier_server.stop()
        items = [
            await worker.submit(
                idempotency_key(f"$ev{n}", "note"),
                "notebook.add",
                {"text": f"note {n}"},
                wait_seconds=0.3,
            )
            for n in range(3)
        ]
        assert [i.status for i in items] == [PENDING] * 3
        # the same room event delivered twice while down: still one item
        await worker.submit(
            idempotency_key("$ev1", "note"), "notebook.add", {"text": "note 1"}, wait_seconds=0.1
        )
        assert box.pending_count() == 3
        await dossier_server.start()
        worker.wake()

        async def pending() -> int:
            return box.pending_count()

        await eventually(pending, lambda n: n == 0, timeout=10, what="file d'envoi vidée")
        assert all((box.get(i.key) or i).status == DONE for i in items)
        texts = [e["text"] for e in await client.notebook(pid) if e["text"].startswith("note ")]
        assert sorted(texts) == ["note 0", "note 1", "note 2"]
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        await client.close()


async def test_feed_resumes_after_a_crash_without_loss_or_double(
    dossier: DossierClient, tmp_path: Path
) -> None:
    _, events = await file_with_tasks(dossier, [f"tâche {n}" for n in range(6)])
    expected = [e["seq"] for e in events]
    assert len(expected) == 8  # the file, the nurse added to its circle, six tasks
    conn = open_outbox_database(tmp_path / "sync.sqlite3")
    completed: list[int] = []
    crash_at = expected[3]

    async def crashing(event: Mapping[str, Any]) -> None:
        if event["seq"] == crash_at:
            raise asyncio.CancelledError  # the process dies in the middle of this event
        completed.append(int(event["seq"]))

    first = FeedConsumer(dossier, SyncStore(conn), crashing)
    with pytest.raises(asyncio.CancelledError):
        await first.run_once()
    assert completed == expected[:3]
    # restart: a new store on the same file, the handler now works
    conn.close()
    store = SyncStore(open_outbox_database(tmp_path / "sync.sqlite3"))
    assert store.cursor() == expected[2]

    async def working(event: Mapping[str, Any]) -> None:
        completed.append(int(event["seq"]))

    assert await FeedConsumer(dossier, store, working).run_once() == len(expected) - 3
    assert completed == expected  # each exactly once, in order
    assert await FeedConsumer(dossier, store, working).run_once() == 0


async def test_role_labels_are_the_dossiers_read_once_it_answers(dossier_server: Any) -> None:
    """The bot keeps no copy of the care circle's roles: it reads the dossier's catalogue. The
    dossier away at start: the bot waits for it (never a made-up label), then reads them."""
    from bots.dossier_link.roles import RoleLabels
    from dossier_service.models.circle import ROLE_LABELS

    client = DossierClient(
        dossier_server.url, dossier_server.config.service_token, timeout_seconds=2
    )
    roles = RoleLabels(client, retry_max_seconds=0.2)
    try:
        await dossier_server.stop()
        with pytest.raises(Unavailable):
            await roles.get()
        refused, asked_again = 0, asyncio.Event()
        ask_dossier = client.role_labels

        async def counted() -> Any:
            nonlocal refused
            try:
                return await ask_dossier()
            except Unavailable:
                refused += 1
                if refused == 2:
                    asked_again.set()
                raise

        client.role_labels = counted  # type: ignore[method-assign]
        loading = asyncio.create_task(roles.load_at_start())
        await asyncio.wait_for(asked_again.wait(), 20)  # turned away twice: it retries
        assert not loading.done() and not roles.loaded  # still waiting for the dossier
        await dossier_server.start()
        await asyncio.wait_for(loading, 20)
        assert dict(await roles.get()) == ROLE_LABELS
        assert (await roles.get())["medecin_traitant"] == "médecin traitant"
    finally:
        await client.close()


async def test_role_labels_refused_token_stops_loudly(dossier_server: Any) -> None:
    from bots.dossier_link.roles import RoleLabels

    client = DossierClient(dossier_server.url, "not-the-service-token", timeout_seconds=2)
    try:
        with pytest.raises(Refused):
            await asyncio.wait_for(RoleLabels(client).load_at_start(), 10)
    finally:
        await client.close()
