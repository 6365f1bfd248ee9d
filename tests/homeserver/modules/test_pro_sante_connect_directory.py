"""What the mapping provider reads from the directory (a real SQLite directory, the RPPS
sample): the entry, whether it is active, and which account PSC may be led into."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import RPPS_SAMPLE

from dossier_service.directory.accounts import link
from dossier_service.directory.importer import import_extract
from homeserver.modules.pro_sante_connect.directory_link import linked_to_active_rpps, lookup
from tests.directory_support import connect


@pytest.fixture
def directory(tmp_path: Path) -> str:
    path = tmp_path / "annuaire.db"
    conn = connect(path)
    import_extract(conn, RPPS_SAMPLE)
    link(conn, "@r.boyer:x", "810000000008", source="demande", actor="test")
    link(conn, "@secretariat:x", "810000000015", source="email", actor="test")
    conn.close()
    return str(path)


def test_entries_and_which_links_psc_may_follow(directory: str, tmp_path: Path) -> None:
    boyer = lookup(directory, "810000000008")
    assert boyer is not None and boyer.active and boyer.linked_mxid == "@r.boyer:x"
    assert boyer.display_name == "BOYER Raphael — Infirmier, Narbonne"
    robin = lookup(directory, "810000000015")  # linked by a practice e-mail: not followed
    assert robin is not None and robin.linked_mxid is None
    assert lookup(directory, "899999999999") is None
    assert lookup(str(tmp_path / "pas-encore.db"), "810000000008") is None  # no directory yet
    assert linked_to_active_rpps(directory, "@r.boyer:x")
    assert not linked_to_active_rpps(directory, "@inconnu:x")
    assert not linked_to_active_rpps(directory, "@secretariat:x")
