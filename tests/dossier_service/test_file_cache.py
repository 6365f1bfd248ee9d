"""The file's JSON is cached per revision: every committed change shows at the next read,
a failed change does not move the revision, files don't share revisions."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import text

from dossier_service import appkeys
from dossier_service.db import build_database
from dossier_service.file_revisions import mark_changed
from tests.dossier_service.conftest import COORD, MEMBER, Api


async def test_each_change_shows_at_the_next_read(api: Api) -> None:
    pid = await api.patient_with_circle()
    other = await api.new_patient()
    path = f"/api/v1/patients/{pid}"
    first = await api.ok("GET", path, as_user=MEMBER)
    assert await api.ok("GET", path, as_user=MEMBER) == first  # served again, unchanged
    await api.ok("GET", f"/api/v1/patients/{other}", as_user=COORD)

    await api.created(f"{path}/notebook", {"kind": "note", "text": "Vu ce jour"}, as_user=MEMBER)
    after_note = await api.ok("GET", path, as_user=MEMBER)
    assert after_note["notebook"][0]["text"] == "Vu ce jour"

    await api.created(f"{path}/memos", {"text": "Clés chez la voisine"}, as_user=COORD)
    after_memo = await api.ok("GET", path, as_user=MEMBER)
    assert [m["text"] for m in after_memo["memos"]] == ["Clés chez la voisine"]

    await api.created(
        "/api/v1/tasks", {"type": "Soins", "label": "Pansement", "patient_id": pid}, as_user=COORD
    )
    after_task = await api.ok("GET", path, as_user=MEMBER)
    assert [t["label"] for t in after_task["tasks"]] == ["Pansement"]

    untouched = await api.ok("GET", f"/api/v1/patients/{other}", as_user=COORD)
    assert untouched["memos"] == [] and untouched["tasks"] == []


async def test_refused_change_keeps_the_revision(api: Api) -> None:
    pid = await api.patient_with_circle()
    revisions = api.app[appkeys.DATABASE].revisions
    before = revisions.of(pid) if revisions is not None else None
    status, _ = await api.call(
        "POST", f"/api/v1/patients/{pid}/memos", as_user=MEMBER, json={"text": 12}
    )
    assert status == 400
    if revisions is not None:  # SQLite: the process counts its own commits
        assert revisions.of(pid) == before


async def test_revision_moves_on_commit_only(tmp_path: Path) -> None:
    db = build_database(f"sqlite+aiosqlite:///{tmp_path / 'd.db'}")
    assert db.revisions is not None
    try:
        async with db.transaction() as session:
            await session.execute(text("CREATE TABLE t (k INTEGER)"))
        with pytest.raises(RuntimeError, match="after the change"):  # passed on, rolled back
            async with db.transaction() as session:
                await session.execute(text("INSERT INTO t VALUES (1)"))
                mark_changed(session, "P-1")
                raise RuntimeError("after the change")
        assert db.revisions.of("P-1") == 0  # rolled back: same revision
        async with db.transaction() as session:
            await session.execute(text("INSERT INTO t VALUES (2)"))
            mark_changed(session, "P-1")
            mark_changed(session, "P-2")
        assert (db.revisions.of("P-1"), db.revisions.of("P-2"), db.revisions.of("P-3")) == (1, 1, 0)
        other = build_database(f"sqlite+aiosqlite:///{tmp_path / 'e.db'}")
        try:
            async with other.transaction() as session:
                mark_changed(session, "P-1")
            assert other.revisions is not None and other.revisions.of("P-1") == 1
            assert db.revisions.of("P-1") == 1  # each database follows its own sessions
        finally:
            await other.dispose()
    finally:
        await db.dispose()


async def test_dashboard_follows_every_change(api: Api) -> None:
    """The task dashboard is cached between changes: a new task (with or without a file), a
    state change, an access removed — each shows at the next read."""
    pid = await api.patient_with_circle()
    board = await api.ok("GET", "/api/v1/tasks", as_user=MEMBER)
    assert board["items"] == []
    created = await api.created(
        "/api/v1/tasks", {"type": "Soins", "label": "Pansement", "patient_id": pid}, as_user=COORD
    )
    board = await api.ok("GET", "/api/v1/tasks", as_user=MEMBER)
    assert [t["label"] for t in board["items"]] == ["Pansement"]
    assert await api.ok("GET", "/api/v1/tasks", as_user=MEMBER) == board  # cached, same

    await api.ok(
        "PATCH", f"/api/v1/tasks/{created['id']}", as_user=COORD, json={"state": "en cours"}
    )
    board = await api.ok("GET", "/api/v1/tasks", as_user=MEMBER)
    assert [t["state"] for t in board["items"]] == ["en cours"]

    await api.created(
        "/api/v1/tasks",
        {
            "type": "Soins",
            "label": "Hors dossier",
            "assignees": [{"kind": "personne", "ref": MEMBER}],
        },
        as_user=MEMBER,
    )
    board = await api.ok("GET", "/api/v1/tasks", as_user=MEMBER)
    assert sorted(t["label"] for t in board["items"]) == ["Hors dossier", "Pansement"]

    circle = await api.ok("GET", f"/api/v1/patients/{pid}/circle", as_user=COORD)
    member = next(m for m in circle["items"] if m["matrix_user_id"] == MEMBER)
    await api.ok("POST", f"/api/v1/patients/{pid}/circle/{member['id']}/end", as_user=COORD)
    board = await api.ok("GET", "/api/v1/tasks", as_user=MEMBER)
    assert [t["label"] for t in board["items"]] == ["Hors dossier"]  # no access any more


async def settled(key: Callable[[], object]) -> None:
    """Until the cache key is set and still (PostgreSQL: the app's listener connects as it
    starts, and the notice of the test's own write is heard after its commit and moves the key
    once more; under a loaded CI that came between the two reads)."""
    import asyncio

    still = 0
    for _ in range(250):
        before = key()
        await asyncio.sleep(0.02)
        still = still + 1 if before is not None and key() == before else 0
        if still >= 5:
            return
    raise AssertionError("la clé du cache ne se stabilise pas")


async def test_a_dashboard_read_again_is_served_from_memory(api: Api) -> None:
    """On both engines (PostgreSQL: once this process hears the others' changes) the same
    dashboard read twice with no change between asks the database for its tasks once."""

    from sqlalchemy import event

    pid = await api.patient_with_circle()
    await api.created(
        "/api/v1/tasks", {"type": "Soins", "label": "Pansement", "patient_id": pid}, as_user=COORD
    )
    db = api.app[appkeys.DATABASE]
    await settled(db.change_epoch)
    statements: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", seen)
    try:
        first = await api.ok("GET", "/api/v1/tasks", as_user=MEMBER)
        asked = len([s for s in statements if "task_assignees" in s or "FROM tasks" in s])
        again = await api.ok("GET", "/api/v1/tasks", as_user=MEMBER)
        asked_again = len([s for s in statements if "task_assignees" in s or "FROM tasks" in s])
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", seen)
    assert again == first and [t["label"] for t in first["items"]] == ["Pansement"]
    assert asked >= 1 and asked_again == asked


async def test_a_file_read_again_is_served_from_memory(api: Api) -> None:
    """On both engines (PostgreSQL: once this process hears the others' changes) a file read
    twice with no change between reads its sections once and never counts its entries."""

    from sqlalchemy import event

    pid = await api.patient_with_circle()
    path = f"/api/v1/patients/{pid}"
    await api.created(f"{path}/notebook", {"kind": "note", "text": "Vu ce jour"}, as_user=MEMBER)
    db = api.app[appkeys.DATABASE]
    await settled(lambda: db.file_revision(pid))
    statements: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    def notebook_reads() -> int:
        return len([s for s in statements if "FROM notebook_entries" in s])

    event.listen(db.engine.sync_engine, "before_cursor_execute", seen)
    try:
        first = await api.ok("GET", path, as_user=MEMBER)
        asked = notebook_reads()
        again = await api.ok("GET", path, as_user=MEMBER)
        asked_again = notebook_reads()
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", seen)
    assert again == first and first["notebook"][0]["text"] == "Vu ce jour"
    assert asked >= 1 and asked_again == asked
