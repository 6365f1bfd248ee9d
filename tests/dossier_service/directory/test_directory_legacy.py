"""Upgrading from a directory kept in its own ``annuaire.db`` (before issue 14): the dossier
copies it into its database once at start, keeping the professionals, the links and the
pending account requests, and renames the old file."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest

from dossier_service.directory.account_requests import AccountRequests
from dossier_service.directory.accounts import link
from dossier_service.directory.database import connect as open_database
from dossier_service.directory.importer import import_extract
from dossier_service.directory.legacy import DONE_SUFFIX, LegacyError, import_legacy_database
from dossier_service.directory.request_form import validate
from dossier_service.directory.search import Directory
from tests.directory_support import connect, migrated_database

from .conftest import REQUEST_FORM, SAMPLE
from .legacy_schema import OLD_V1, OLD_V2

OLD_TABLES = (
    "import_run",
    "professional",
    "activity",
    "search_key",
    "commune",
    "account_link",
    "account_request",
    "activation",
    "audit",
)


def _old_database(tmp_path: Path, version: int) -> tuple[Path, list[str]]:
    """An ``annuaire.db`` as the old code left it: the sample imported, one account linked,
    one request pending; the rows are the ones the current code writes, copied into the old
    tables (the same columns, less ``kind`` and — in version 1 — ``linked``)."""
    source = connect(tmp_path / "source.db")
    import_extract(source, SAMPLE)
    link(source, "@boyer:x", "810000000008", source="test", actor="test")
    directory = Directory(source)
    form, errors = validate(REQUEST_FORM)
    assert form is not None, errors
    pending = AccountRequests(source, directory, server_name="x", activation_hours=72)
    pending.submit(form)
    expected = [h.national_id for h in directory.search("martin", per_page=50).hits]
    source.close()
    old_path = tmp_path / "annuaire" / "annuaire.db"
    old_path.parent.mkdir()
    old = sqlite3.connect(old_path, isolation_level=None)
    old.executescript(OLD_V1 + (OLD_V2 if version == 2 else ""))
    old.execute(f"PRAGMA user_version={version}")
    old.execute("ATTACH DATABASE ? AS new", (str(tmp_path / "source.db"),))
    for table in OLD_TABLES:
        columns = [row[1] for row in old.execute(f"PRAGMA main.table_info({table})")]
        names = ", ".join(columns)
        old.execute(f"INSERT INTO main.{table} ({names}) SELECT {names} FROM new.annuaire_{table}")
    old.execute("DETACH DATABASE new")
    old.close()
    return old_path, expected


@pytest.mark.parametrize("version", [1, 2])
def test_an_old_directory_is_copied_once_with_its_pending_requests(
    tmp_path: Path, version: int, database_url: str
) -> None:
    """Into the dossier's database on either engine (``database_url``: SQLite, PostgreSQL)."""
    old_path, expected = _old_database(tmp_path, version)
    url = database_url
    counts = import_legacy_database(url, old_path)
    assert counts is not None and counts["annuaire_account_request"] == 1
    assert counts["annuaire_professional"] > 100
    assert not old_path.exists() and old_path.with_name("annuaire.db" + DONE_SUFFIX).exists()
    with contextlib.closing(open_database(url)) as conn:
        directory = Directory(conn)
        found = directory.search("martin", per_page=50).hits
        assert sorted(h.national_id for h in found) == sorted(expected)
        boyer = directory.search("boyer").hits[0]
        assert boyer.mxid == "@boyer:x"
        flags = conn.execute(
            "SELECT DISTINCT k.linked FROM annuaire_search_key k JOIN annuaire_professional p "
            "ON p.id = k.professional_id WHERE p.national_id = '810000000008'"
        ).fetchall()
        assert flags == [(1,)]  # version 1 had no flags: they are computed
        requests = AccountRequests(conn, directory, server_name="x", activation_hours=72)
        (waiting,) = requests.list("en_attente")
        assert (waiting.last_name, waiting.national_id) == ("D'Almeida", "810000001128")
        # new rows continue after the copied ones, and a re-import changes nothing
        form, _ = validate(dict(REQUEST_FORM, nom="Autre"))
        assert form is not None
        assert requests.submit(form).id == waiting.id + 1
        again = import_extract(conn, SAMPLE)
        assert (again.added, again.updated) == (0, 0)
    assert import_legacy_database(url, old_path) is None  # nothing left to copy


def test_a_second_copy_is_refused_and_keeps_the_file(tmp_path: Path) -> None:
    old_path, _ = _old_database(tmp_path, 2)
    url = f"sqlite:///{migrated_database(tmp_path / 'dossier.db')}"
    with contextlib.closing(connect(tmp_path / "dossier.db")) as conn:
        import_extract(conn, SAMPLE)  # the directory was imported again in the meantime
    with pytest.raises(LegacyError, match="déjà dans la base du dossier"):
        import_legacy_database(url, old_path)
    assert old_path.exists()


def test_an_unknown_old_version_is_refused(tmp_path: Path) -> None:
    old_path = tmp_path / "annuaire.db"
    sqlite3.connect(old_path).execute("PRAGMA user_version=7").connection.close()
    url = f"sqlite:///{migrated_database(tmp_path / 'dossier.db')}"
    with pytest.raises(LegacyError, match="version 7"):
        import_legacy_database(url, old_path)
