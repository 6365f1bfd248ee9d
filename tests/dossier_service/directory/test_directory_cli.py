"""`cercle annuaire …` and `cercle admin demandes …` through their real argument parsers."""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import yaml

from cercle.cli import main
from cercle.commands_demandes import register_admin
from dossier_service.directory.account_requests import AccountRequests
from dossier_service.directory.request_form import validate
from dossier_service.directory.search import Directory
from tests.directory_support import connect, migrated_database

from .conftest import SAMPLE


def profile_file(tmp_path: Path, **extra: Any) -> Path:
    data = {
        "var_dir": str(tmp_path / "var"),
        # the directory lives in the dossier's database (issue 14)
        "dossier": {"database_url": f"sqlite:///{migrated_database(tmp_path / 'dossier.db')}"},
        **extra,
    }
    path = tmp_path / "profil.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def demandes(config: Path, *argv: str) -> int:
    parser = argparse.ArgumentParser(prog="cercle")
    parser.add_argument("--config", type=Path)
    admin = parser.add_subparsers(dest="command").add_parser("admin")
    register_admin(admin.add_subparsers(dest="family"))
    args = parser.parse_args(["--config", str(config), "admin", "demandes", *argv])
    result = args.handler(args)
    if asyncio.iscoroutine(result):
        result = asyncio.run(result)
    return int(result or 0)


def test_import_and_search(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = profile_file(tmp_path)
    assert main(["--config", str(config), "annuaire", "importer", str(SAMPLE), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["lignes"] == 500 and report["ajoutes"] == 406
    # each import ends by refreshing the structures' members from the RPPS (issue 18; the
    # rule itself: tests/dossier_service/test_structure_refresh.py); no account linked yet
    assert report["membres_des_structures"] == {"structures": 0, "ajoutes": [], "retires": []}
    assert main(["--config", str(config), "annuaire", "importer", str(SAMPLE)]) == 0
    out = capsys.readouterr().out
    assert "ajoutés : 0" in out and "inchangés : 406" in out
    assert "Membres des structures (RPPS) : 0 ajouté(s), 0 retiré(s)" in out
    assert main(["--config", str(config), "annuaire", "chercher", "kiné béziers"]) == 0
    assert "LAURENT Mathilde — Masseur-Kinésithérapeute, Béziers" in capsys.readouterr().out
    wrong = tmp_path / "patients.csv"
    wrong.write_text("nom;prenom\nDUPONT;Marie\n", encoding="utf-8")
    assert main(["--config", str(config), "annuaire", "importer", str(wrong)]) == 1
    assert "Format de fichier inconnu" in capsys.readouterr().err


def _queue(db: Path, **fields: str) -> int:
    conn = connect(db)
    form, errors = validate(
        {
            "nom": "Boyer",
            "prenom": "Raphaël",
            "identifiant": "10000000008",
            "profession": "Infirmier",
            "structure": "",
            "consentement": "on",
            "email": "r.boyer@example.org",
            "telephone": "0645746282",
            **fields,
        }
    )
    assert form is not None, errors
    rid = AccountRequests(conn, Directory(conn), server_name="x").submit(form).id
    conn.close()
    return rid


def test_list_and_refuse(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = profile_file(tmp_path)
    main(["--config", str(config), "annuaire", "importer", str(SAMPLE)])
    rid = _queue(tmp_path / "dossier.db")
    capsys.readouterr()
    assert demandes(config, "--json") == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(r["id"], r["statut"], r["correspondance"]) for r in listed] == [
        (rid, "en_attente", "trouve")
    ]
    assert demandes(config, "refuser", str(rid), "--motif", "Hors territoire") == 0
    assert demandes(config) == 0
    out = capsys.readouterr().out
    assert "refusee" in out and "motif : Hors territoire" in out
    from cercle.errors import CliError

    with pytest.raises(CliError, match="déjà traitée"):
        demandes(config, "refuser", str(rid), "--motif", "encore")


@pytest.mark.integration
def test_approve_from_the_cli(
    tmp_path: Path, synapse: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    hs = synapse.profile.section("homeserver")
    config = profile_file(
        tmp_path,
        var_dir=str(synapse.var_dir),
        server_name=synapse.server_name,
        homeserver={"port": hs["port"], "bind_address": hs["bind_address"]},
    )
    main(["--config", str(config), "annuaire", "importer", str(SAMPLE)])
    rid = _queue(
        tmp_path / "dossier.db",
        nom="Thomas",
        prenom="Jean-Pierre",
        identifiant="10000000022",
        profession="Médecin",
        email="jp.thomas@example.org",
    )
    capsys.readouterr()
    assert demandes(config, "approuver", str(rid)) == 0
    out = capsys.readouterr().out
    mxid = re.search(r"compte (@\S+)", out)
    assert mxid and "THOMAS Jean-Pierre — Médecin (Pneumologie), Pamiers" in out
    assert re.search(r"/annuaire/activation/[A-Za-z0-9_\-]{20,}", out)
    row = (
        sqlite3.connect(tmp_path / "dossier.db")
        .execute("SELECT status, mxid, decided_by FROM annuaire_account_request WHERE id=?", (rid,))
        .fetchone()
    )
    assert row == ("approuvee", mxid.group(1), "cli")


def test_an_old_annuaire_db_is_copied_in_by_the_first_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An operator upgrading: var/annuaire/annuaire.db of before issue 14 is found and copied
    into the dossier's database by the first `cercle` command (as by the dossier at start)."""
    from .test_directory_legacy import _old_database

    old_path, expected = _old_database(tmp_path, 2)  # tmp_path/annuaire/annuaire.db
    data = {
        "var_dir": str(tmp_path / "var"),
        "annuaire": {"database": str(old_path)},
        "dossier": {"database_url": f"sqlite:///{tmp_path / 'var' / 'dossier' / 'dossier.db'}"},
    }
    config = tmp_path / "profil.yaml"
    config.write_text(yaml.safe_dump(data), encoding="utf-8")
    assert main(["--config", str(config), "annuaire", "chercher", "martin", "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in found["resultats"]] == expected[:20]
    assert not old_path.exists()
    assert demandes(config, "--json") == 0
    (pending,) = json.loads(capsys.readouterr().out)
    assert pending["statut"] == "en_attente"
