"""Issue 19: the retention job's transcript reads a snapshot of the bot's crypto store, never
the store the running bot writes (two writers on one olm store could corrupt the bot's
sessions). Real Synapse, the real bot, a professional on nio."""

from __future__ import annotations

import asyncio
import sqlite3
import time
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader

from backup.transcripts import BotTranscripts, snapshot_store
from tests.bots.conftest import BotRunner, make_bot_config, pro_factory  # noqa: F401

pytestmark = pytest.mark.integration


def pdf_text(path: Path) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(path).pages)


async def test_transcript_while_the_bot_runs_leaves_its_store_alone(
    synapse: Any,
    tmp_path: Path,
    pro_factory: Any,  # noqa: F811
) -> None:
    config = make_bot_config(synapse, tmp_path / "bot")
    runner = BotRunner(synapse, config)
    app = await runner.start()
    transcripts = BotTranscripts(synapse.profile, synapse.secrets, config)
    try:
        alice = await pro_factory()
        bot_id = str(app.client.user_id)
        room = await alice.create_room(invite=[bot_id], name="Suivi clos")
        await alice.wait_member(room, bot_id)
        await alice.say(room, "pansement du soir, marqueur-retention")

        # while the bot runs: the job's copy decrypts what the bot had received when copied,
        # and nothing of the job's connects to the bot's own databases except read-only
        opened: list[tuple[str, bool]] = []
        connect = sqlite3.connect

        def recording(database: Any, *args: Any, **kwargs: Any) -> Any:
            opened.append((str(database), bool(kwargs.get("uri"))))
            return connect(database, *args, **kwargs)

        deadline = time.monotonic() + 40
        while True:
            pdf = tmp_path / "pendant.pdf"
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(sqlite3, "connect", recording)
                await transcripts(room, "Suivi clos", pdf)
            if "marqueur-retention" in pdf_text(pdf):
                break
            assert time.monotonic() < deadline, pdf_text(pdf)
            await asyncio.sleep(1)
        live = str(config.store_dir.resolve())
        on_live = [(db, uri) for db, uri in opened if live in urllib.parse.unquote(db)]
        assert on_live and all(uri and db.endswith("?mode=ro") for db, uri in on_live), opened
    finally:
        await runner.stop()

    # and the bot, started again on its store, still decrypts what is said to it
    app = await runner.start()
    try:
        start = alice.mark(room)
        await alice.say(room, "!aide")
        await alice.wait_notice(room, "!urgent", start=start)
    finally:
        await runner.stop()


def test_snapshot_of_a_store_being_written_is_consistent(tmp_path: Path) -> None:
    """SQLite's backup API: the copy of a WAL database being written opens, whole."""
    live = tmp_path / "live"
    live.mkdir()
    db = sqlite3.connect(live / "bot_DEVICE.db")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE sessions (id INTEGER PRIMARY KEY, pickle BLOB)")
    db.executemany("INSERT INTO sessions (pickle) VALUES (?)", [(b"x" * 512,)] * 200)
    db.commit()
    (live / "notes.txt").write_text("pas une base")
    db.execute("INSERT INTO sessions (pickle) VALUES (?)", (b"en cours",))  # not committed
    snapshot_store(live, tmp_path / "copy")
    db.rollback()
    db.close()
    copy = sqlite3.connect(tmp_path / "copy" / "bot_DEVICE.db")
    assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert copy.execute("SELECT count(*) FROM sessions").fetchone() == (200,)
    copy.close()
    assert (tmp_path / "copy" / "notes.txt").read_text() == "pas une base"
    assert not list((tmp_path / "copy").glob("*-wal"))
    assert oct((tmp_path / "copy").stat().st_mode)[-3:] == "700"
