"""The directory on both of the dossier's engines (issue 14): import, ranked search, account
requests and links, and the Pro Santé Connect module's reading, on the database the
``database_url`` fixture gives (SQLite, and PostgreSQL for the ``postgres`` marker), against
the same directory on SQLite."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from dossier_service.directory.account_requests import AccountRequests
from dossier_service.directory.accounts import link
from dossier_service.directory.database import connect, is_sqlite
from dossier_service.directory.importer import import_extract
from dossier_service.directory.request_form import validate
from dossier_service.directory.search import Directory
from homeserver.modules.pro_sante_connect.directory_link import linked_to_active_rpps, lookup
from tests.directory_support import connect as sqlite_connect

from .conftest import REQUEST_FORM, SAMPLE

QUERIES = (
    "martin",
    "ma",
    "kiné béziers",
    "infirmier 34",
    "d'almeida",
    "garcia lopez",
    "jean marie",
    "ma ro",
    "cardio",
    "31",
    "10000001128",
    "boyer narbonne",
    "Lefèvre",
    "st pons",
)


def _answers(directory: Directory) -> dict[str, tuple[int, list[str]]]:
    """Per query: the total and every professional found, all pages read. Within one rank
    the order is the index's, which each engine walks its own way: sets are compared, and
    the ranking (exact names first) is checked on each page, with no page overlapping."""
    out = {}
    for q in QUERIES:
        found: list[str] = []
        page = 1
        while True:
            result = directory.search(q, page=page, per_page=20)
            exact = [h.exact for h in result.hits]
            assert exact == sorted(exact, reverse=True), q
            found += [h.national_id for h in result.hits]
            if page >= result.pages:
                break
            page += 1
        assert len(found) == len(set(found)) == min(result.total, 1000), q
        out[q] = (result.total, sorted(found))
    return out


@pytest.fixture(scope="module")
def reference(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, tuple[int, list[str]]]]:
    conn = sqlite_connect(tmp_path_factory.mktemp("reference") / "dossier.db")
    import_extract(conn, SAMPLE)
    link(conn, "@boyer:x", "810000000008", source="demande", actor="test")
    link(conn, "@secretariat:x", "810000000015", source="email", actor="test")
    yield _answers(Directory(conn))
    conn.close()


def test_the_same_directory_on_either_engine(
    database_url: str, reference: dict[str, tuple[int, list[str]]], tmp_path: Path
) -> None:
    with contextlib.closing(connect(database_url)) as conn:
        engine = "sqlite" if is_sqlite(conn) else "postgresql"
        report = import_extract(conn, SAMPLE)
        assert report.added == 406, engine
        link(conn, "@boyer:x", "810000000008", source="demande", actor="test")
        link(conn, "@secretariat:x", "810000000015", source="email", actor="test")
        directory = Directory(conn)
        assert _answers(directory) == reference, engine
        assert directory.search("boyer").hits[0].mxid == "@boyer:x"
        # a re-import of the same file changes nothing; absent professionals go inactive
        again = import_extract(conn, SAMPLE)
        assert (again.added, again.updated, again.unchanged) == (0, 0, 406)
        # account requests: queued with their audit row, ids from the engine
        form, errors = validate(REQUEST_FORM)
        assert form is not None, errors
        requests = AccountRequests(conn, directory, server_name="x", activation_hours=72)
        first = requests.submit(form)
        second = requests.submit(form)
        assert (first.match, second.id) == ("trouve", first.id + 1)
        requests.refuse(first.id, reason="Doublon", actor="@admin:x")
        assert [r.id for r in requests.list("en_attente")] == [second.id]
    # the Synapse module reads the same tables through its own short connections
    boyer = lookup(database_url, "810000000008")
    assert boyer is not None and boyer.linked_mxid == "@boyer:x" and boyer.active
    assert lookup(database_url, "810000000015").linked_mxid is None  # type: ignore[union-attr]
    assert linked_to_active_rpps(database_url, "@boyer:x")
    assert not linked_to_active_rpps(database_url, "@secretariat:x")
