"""Unexpected failures: one form of reference, and logs that keep the path but not the text."""

from __future__ import annotations

import logging
import re
import sqlite3
import subprocess
import sys
import textwrap

from deployment.incidents import FORMAT, TEXT_LEFT_OUT, WithoutExceptionText, new_reference

SECRET = "DUPONT Jeanne née le 12/03/1941"


def formatted(error_raiser) -> str:
    """The log line the formatter writes for ``log.exception`` inside ``except``."""
    try:
        error_raiser()
    except BaseException:
        record = logging.LogRecord("t", logging.ERROR, __file__, 1, "échec réf=%s", ("AB12",), None)
        record.exc_info = sys.exc_info()
        return WithoutExceptionText(FORMAT).format(record)
    raise AssertionError("nothing raised")


def test_reference_form_is_the_same_everywhere() -> None:
    refs = {new_reference() for _ in range(50)}
    assert len(refs) == 50 and all(re.fullmatch(r"[0-9A-F]{8}", r) for r in refs)


def test_a_database_error_keeps_its_type_and_frames_not_the_row() -> None:
    def insert_twice() -> None:
        db = sqlite3.connect(":memory:")
        db.execute("CREATE TABLE p (name TEXT UNIQUE)")
        db.execute("INSERT INTO p VALUES (?)", (SECRET,))
        db.execute(f"INSERT INTO p VALUES ('{SECRET}')")  # the text lands in the message

    line = formatted(insert_twice)
    assert "échec réf=AB12" in line
    assert "Traceback (most recent call last):" in line and "insert_twice" in line
    assert f"sqlite3.IntegrityError {TEXT_LEFT_OUT}" in line
    assert "DUPONT" not in line
    assert "UNIQUE constraint" not in line


def test_the_chain_of_causes_is_kept_without_any_text() -> None:
    def lookup() -> None:
        try:
            {}[SECRET]
        except KeyError as missing:
            raise ValueError(f"fiche introuvable : {SECRET}") from missing

    line = formatted(lookup)
    assert SECRET not in line and "DUPONT" not in line
    assert line.index(f"KeyError {TEXT_LEFT_OUT}") < line.index(f"ValueError {TEXT_LEFT_OUT}")
    assert "a directement causé" in line


def test_groups_name_their_members() -> None:
    def both() -> None:
        raise ExceptionGroup(SECRET, [OSError(SECRET), RuntimeError(SECRET)])

    line = formatted(both)
    assert "DUPONT" not in line
    assert "dans le groupe : OSError" in line and "dans le groupe : RuntimeError" in line


def test_every_cercle_process_logs_through_it(tmp_path) -> None:
    """The set-up the bot, the mail bridge, the dossier and the gateway call: a process that
    logs an exception with a patient's name in its text writes the frames, never the name."""
    script = textwrap.dedent(
        f"""
        import logging
        from deployment.incidents import configure_logging
        configure_logging(root="WARNING", levels={{"bots": "INFO"}})
        try:
            raise RuntimeError({SECRET!r})
        except RuntimeError:
            logging.getLogger("bots.x").exception("erreur interne réf=%s", "CAFE0001")
        logging.getLogger("bots.x").info("visible")
        logging.getLogger("other").info("hidden")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert "erreur interne réf=CAFE0001" in done.stderr and "visible" in done.stderr
    assert f"RuntimeError {TEXT_LEFT_OUT}" in done.stderr
    assert "DUPONT" not in done.stderr and "hidden" not in done.stderr
