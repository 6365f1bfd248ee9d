"""The export spool on a real SQLite file: edits, redactions, receipts, « derniers N »,
replies inside and outside the export, attachments, and reading the entries back."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bots.export.drafts import Draft, TimelineReader
from bots.export.media import FetchedMedia
from bots.export.paging import EXPORT_MARK
from bots.export.spool import HistorySpool
from bots.export.transcript import EntryKind, Quote

ALICE, BOB, CAROL, BOT = "@alice:c.test", "@bob:c.test", "@carol:c.test", "@bot:c.test"
NAMES = {ALICE: "Alice Martin", BOB: "bob", CAROL: "Carole"}


def message(event_id: str, sender: str, body: str, ts: int, **content: Any) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "sender": sender,
        "origin_server_ts": ts,
        "type": "m.room.message",
        "content": {"msgtype": "m.text", "body": body, **content},
    }


def edit(event_id: str, sender: str, target: str, body: str, ts: int) -> dict[str, Any]:
    return message(
        event_id,
        sender,
        f"* {body}",
        ts,
        **{
            "m.new_content": {"msgtype": "m.text", "body": body},
            "m.relates_to": {"rel_type": "m.replace", "event_id": target},
        },
    )


def reply(event_id: str, sender: str, target: str, body: str, ts: int) -> dict[str, Any]:
    return message(
        event_id, sender, body, ts, **{"m.relates_to": {"m.in_reply_to": {"event_id": target}}}
    )


def flags(event_id: str, ts: int, raised: bool) -> dict[str, Any]:
    content = {"flags": {"urgent": {"by": ALICE, "at": 1}}} if raised else {"flags": {}}
    return {
        "event_id": event_id,
        "sender": BOT,
        "origin_server_ts": ts,
        "type": "fr.cercle.flags",
        "state_key": "",
        "content": content,
    }


def member(event_id: str, user_id: str, ts: int) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "sender": user_id,
        "origin_server_ts": ts,
        "type": "m.room.member",
        "state_key": user_id,
        "content": {"membership": "join"},
    }


def spool_of(tmp_path: Path, sources: list[dict[str, Any]], since: int = 0) -> HistorySpool:
    """What fetch_history does with the events: read in order, shown from `since`."""
    spool = HistorySpool(tmp_path)
    reader = TimelineReader(dict(NAMES))
    for source in sources:
        item = reader.read(source)
        spool.add(source["event_id"], item, shown=isinstance(item, Draft) and item.ts >= since)
    return spool


def by_id(spool: HistorySpool) -> dict[str, Any]:
    return {entry.event_id: entry for entry in spool.entries(NAMES)}


def test_edits_by_the_sender_replace_the_text_others_are_ignored(tmp_path) -> None:
    spool = spool_of(
        tmp_path,
        [
            message("$1", ALICE, "tension 13/8", 1),
            edit("$2", ALICE, "$1", "tension 12/8", 2),
            edit("$3", ALICE, "$absent", "rien", 3),  # target not exported: ignored
            edit("$4", ALICE, "$1", "tension 12/7", 4),  # the latest edit wins
            edit("$5", BOB, "$1", "piraté", 5),  # not the sender: ignored
        ],
    )
    entries = list(spool.entries(NAMES))
    assert [(e.event_id, e.body, e.edited) for e in entries] == [("$1", "tension 12/7", True)]


def test_redacted_and_undecryptable_messages_stay_in_the_transcript(tmp_path) -> None:
    redacted = message("$2", BOB, "", 2)
    redacted["content"] = {}
    redacted["unsigned"] = {"redacted_because": {"sender": BOB}}
    undecryptable = {
        "event_id": "$3",
        "sender": CAROL,
        "origin_server_ts": 3,
        "type": "m.room.encrypted",
        "content": {"algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "…"},
        "_undecryptable": True,
    }
    spool = spool_of(
        tmp_path,
        [
            message("$1", ALICE, "avant", 1),
            redacted,
            undecryptable,
            reply("$4", ALICE, "$2", "tu as effacé ?", 4),
            reply("$5", ALICE, "$3", "illisible", 5),
        ],
    )
    entries = by_id(spool)
    assert entries["$2"].kind is EntryKind.REDACTED and entries["$2"].sender_name == "bob"
    assert entries["$3"].kind is EntryKind.UNDECRYPTABLE
    assert entries["$4"].quote == Quote("bob", "message supprimé")
    assert entries["$5"].quote == Quote("Carole", "message non déchiffrable")


def test_receipts_go_under_the_last_shown_message_read(tmp_path) -> None:
    spool = spool_of(
        tmp_path,
        [
            member("$0", CAROL, 0),  # before any message: nowhere to put a receipt
            message("$1", ALICE, "un", 1),
            message("$2", BOB, "deux", 2),
            flags("$3", 3, raised=True),  # a flag line is not « read »
            member("$4", CAROL, 4),  # not shown: the receipt goes to the last shown message
            message("$5", ALICE, "cinq", 5),
        ],
    )
    spool.place_receipts(
        BOT,
        {
            CAROL: "$4",  # -> $2 (over the flag line)
            ALICE: "$3",  # -> $2
            BOB: "$2",  # his own message: not « vu »
            BOT: "$5",  # the bot itself: never listed
            "@dan:c.test": "$0",  # before the first message: dropped
            "@eve:c.test": "$inconnu",  # not in the history read: dropped
        },
        NAMES,
    )
    entries = by_id(spool)
    assert entries["$2"].seen_by == ("Alice Martin", "Carole")  # alphabetical, display names
    assert entries["$1"].seen_by == entries["$5"].seen_by == ()
    assert entries["$3"].kind is EntryKind.EVENT
    assert entries["$3"].body == "Signalement « urgence » posé par Alice Martin"


def test_last_n_keeps_the_n_last_messages_not_counting_flag_lines(tmp_path) -> None:
    sources = [
        message("$1", ALICE, "un", 1),
        message("$2", BOB, "deux", 2),
        flags("$3", 3, raised=True),
        message("$4", ALICE, "quatre", 4),
        flags("$5", 5, raised=False),
        message("$6", BOB, "six", 6),
    ]
    spool = spool_of(tmp_path, sources)
    spool.keep_last(2)
    spool.place_receipts(BOT, {CAROL: "$2", ALICE: "$6"}, NAMES)  # $2 is no longer exported
    entries = list(spool.entries(NAMES))
    assert [e.event_id for e in entries] == ["$4", "$5", "$6"]
    assert [e.seen_by for e in entries] == [(), (), ("Alice Martin",)]
    assert spool.bounds() == (moment(4), moment(6))
    exactly = spool_of(tmp_path, [flags("$0", 0, raised=True), *sources[:2]])
    exactly.keep_last(2)  # no more than N messages: nothing dropped, flag line included
    assert [e.event_id for e in exactly.entries(NAMES)] == ["$0", "$1", "$2"]


def test_replies_quote_the_exported_message_or_the_one_fetched_outside(tmp_path) -> None:
    spool = spool_of(
        tmp_path,
        [
            message("$avant", CAROL, "avant la période", 1),  # read but not shown
            message("$1", ALICE, "> <@bob> ancienne\n\nPansement refait", 10),
            edit("$2", ALICE, "$1", "Pansement refait,\n plaie propre", 11),
            reply("$3", BOB, "$1", "> <@alice> Pansement\n\nBien noté", 12),
            reply("$4", BOB, "$avant", "à propos d'avant", 13),
            reply("$5", CAROL, "$avant", "moi aussi", 14),
            reply("$6", CAROL, "$supprimé", "et ça ?", 15),
        ],
        since=10,
    )
    assert list(spool.outside_replies()) == ["$avant", "$supprimé"]  # each once
    spool.set_quote("$avant", (CAROL, "avant la période"))
    spool.set_quote("$supprimé", None)  # could not be read: no quote
    assert list(spool.outside_replies()) == []
    entries = by_id(spool)
    assert "$avant" not in entries
    assert entries["$3"].quote == Quote("Alice Martin", "Pansement refait, plaie propre")
    assert entries["$4"].quote == entries["$5"].quote == Quote("Carole", "avant la période")
    assert entries["$6"].quote is None
    assert entries["$1"].quote is None


def test_attachments_are_listed_then_recorded(tmp_path) -> None:
    def media(event_id: str, ts: int, **content: Any) -> dict[str, Any]:
        return message(event_id, ALICE, f"{event_id}.jpg", ts, msgtype="m.image", **content)

    info = {"mimetype": "image/jpeg", "size": 10_000_000}
    spool = spool_of(
        tmp_path,
        [
            media("$ok", 1, url="mxc://c.test/ok", info=info),
            media("$ko", 2, url="mxc://c.test/ko"),
            media("$sans", 3, file={"url": "mxc://c.test/x"}),  # no key: not fetchable
            media("$pas-demandé", 4, url="mxc://c.test/z"),
            message("$texte", ALICE, "pas un fichier", 5),
        ],
    )
    listed = list(spool.attachments())
    assert [source.mxc for _, source in listed] == [
        "mxc://c.test/ok",
        "mxc://c.test/ko",
        "mxc://c.test/z",
    ]
    photo = tmp_path / "media-1.bin"
    spool.set_attachment(listed[0][0], FetchedMedia(photo, 10_000_000, "ab" * 32))
    spool.set_attachment(listed[1][0], None, "fichier indisponible sur le serveur")
    entries = by_id(spool)
    ok = entries["$ok"].attachment
    assert (ok.path, ok.size, ok.sha256, ok.is_image, ok.mimetype) == (
        photo,
        10_000_000,
        "ab" * 32,
        True,
        "image/jpeg",
    )
    assert entries["$ko"].attachment.unavailable == "fichier indisponible sur le serveur"
    assert entries["$sans"].attachment.unavailable == "fichier sans adresse valide"
    not_fetched = entries["$pas-demandé"].attachment
    assert not_fetched.path is None and not_fetched.unavailable is None
    assert entries["$texte"].attachment is None


def test_an_earlier_export_is_listed_never_joined(tmp_path) -> None:
    # each export carried all the earlier ones (10, 20, 40 MB…) until one was over the
    # homeserver's upload limit
    pdf = {"mimetype": "application/pdf", "size": 40_000_000}
    spool = spool_of(
        tmp_path,
        [
            message("$pdf", ALICE, "compte-rendu.pdf", 1, msgtype="m.file", url="mxc://c.test/cr"),
            message(
                "$export",
                BOT,
                "Suivi.pdf",
                2,
                msgtype="m.file",
                url="mxc://c.test/export",
                info=pdf,
                **{EXPORT_MARK: True},
            ),
        ],
    )
    assert [source.mxc for _, source in spool.attachments()] == ["mxc://c.test/cr"]
    earlier = by_id(spool)["$export"].attachment
    assert earlier.unavailable == "export précédent de cette conversation : non joint"
    assert earlier.path is None


def test_last_n_read_backwards_is_replayed_oldest_first(tmp_path) -> None:
    spool = HistorySpool(tmp_path)
    newest_first = [
        edit("$3", ALICE, "$1", "corrigé", 3),
        message("$2", BOB, "deux", 2),
        message("$1", ALICE, "un", 1),
    ]
    for source in newest_first:
        spool.stage(source)
    reader = TimelineReader(dict(NAMES))
    for source in spool.staged():  # the edit comes after its target, as in the room
        spool.add(source["event_id"], reader.read(source), shown=True)
    assert list(spool.staged()) == []  # replayed once, then forgotten
    assert [(e.event_id, e.body) for e in spool.entries(NAMES)] == [
        ("$1", "corrigé"),
        ("$2", "deux"),
    ]


def test_entries_are_read_again_at_each_iteration_from_any_thread(tmp_path) -> None:
    spool = spool_of(tmp_path, [message(f"${i}", ALICE, f"m{i}", i) for i in range(1, 600)])
    entries = spool.entries(NAMES)
    spool.close()  # the writer is gone: the view opens its own connections
    assert len(entries) == 599
    in_thread: list[str] = []
    worker = threading.Thread(target=lambda: in_thread.extend(e.body for e in entries))
    worker.start()
    worker.join()
    assert in_thread == [f"m{i}" for i in range(1, 600)]
    assert [e.body for e in entries] == in_thread  # re-iterable
    assert oct(spool.path.stat().st_mode & 0o777) == "0o600"  # decrypted messages on disk
    assert spool.path.parent == tmp_path
    spool.path.unlink()  # the export's directory removed: the count is still known
    assert len(entries) == 599


@pytest.mark.parametrize("raised_first", [True, False])
def test_flag_lines_name_who_raised_and_say_when_cleared(tmp_path, raised_first) -> None:
    sources = [flags("$1", 1, raised=True), flags("$2", 2, raised=False)]
    if not raised_first:
        sources = sources[::-1]
    lines = [e.body for e in spool_of(tmp_path, sources).entries(NAMES)]
    if raised_first:
        assert lines == [
            "Signalement « urgence » posé par Alice Martin",
            "Signalement « urgence » levé",
        ]
    else:  # the first state seen is empty: nothing to say, then raised
        assert lines == ["Signalement « urgence » posé par Alice Martin"]


def moment(ts: int) -> datetime:
    return datetime.fromtimestamp(ts / 1000, UTC)
