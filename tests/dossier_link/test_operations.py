"""Pure: the bot's writes to the dossier as typed operations, read back from the outbox's JSON."""

from __future__ import annotations

import json

import pytest

from bots.dossier_link.operations import (
    OPERATIONS,
    AddNotebookEntry,
    AddToCircle,
    BackInRoom,
    CreatePatient,
    CreateTask,
    LeftRoom,
    RecordActivity,
    parse_operation,
    words_of,
)


def test_every_operation_reads_back_what_it_wrote() -> None:
    ops = [
        CreatePatient(room_id="!r:x", label="Mme A.", actor="@c:x", pseudonym="p-1"),
        AddNotebookEntry(
            text="Pansement refait", kind="transmission", actor="@n:x", room_id="!r:x"
        ),
        CreateTask(
            label="Renouveler",
            assignees=["@n:x"],
            due_date="2026-12-24",
            command="$ev",
            actor="@c:x",
            room_id="!r:x",
            patient_id="p-1",
        ),
        AddToCircle(member={"matrix_user_id": "@n:x", "role": "intervenant"}, room_id="!r:x"),
        LeftRoom(user_id="@n:x", room_id="!r:x"),
        LeftRoom(user_id="@n:x", room_id="!r:x", removed_by="@c:x"),
        LeftRoom(user_id="@n:x", room_id="!r:x", was_invited=True),
        BackInRoom(user_id="@n:x", room_id="!r:x"),
        RecordActivity(
            kind="messages",
            room_id="!r:x",
            ref="!r:x|2026-12-02",
            day="2026-12-02",
            count=4,
            at_ms=1,
        ),
        RecordActivity(kind="prise_en_compte", room_id="!r:x", ref="a", of_ref="f", at_ms=2),
    ]
    for op in ops:
        stored = json.loads(json.dumps(op.payload()))  # as the outbox keeps it
        assert parse_operation(op.name, stored) == op
    assert len(OPERATIONS) == 11 and all(words_of(name) != "la demande" for name in OPERATIONS)


def test_an_outbox_written_by_an_older_bot_is_still_read() -> None:
    """Payloads of the string-dispatched bridge: absent keys take their defaults, unknown keys
    are ignored, and a missing required field is an error (the worker retries and logs it)."""
    old = {"room_id": "!r:x", "label": "Mme A.", "actor": "@c:x", "pseudonym": "p-1"}
    assert parse_operation("patient.create", old) == CreatePatient(
        room_id="!r:x", label="Mme A.", actor="@c:x", pseudonym="p-1"
    )
    note = parse_operation("notebook.add", {"kind": "note", "text": "t", "later": 1})
    assert note == AddNotebookEntry(text="t") and note.patient_id is None
    left = parse_operation("circle.left", {"room_id": "!r:x", "user_id": "@n:x"})
    assert left == LeftRoom(user_id="@n:x", room_id="!r:x") and left.removed_by is None
    with pytest.raises(TypeError):
        parse_operation("circle.left", {"room_id": "!r:x"})  # no user_id
    assert (
        parse_operation("patient.delete", {}) is None and words_of("patient.delete") == "la demande"
    )
