"""RGPD in practice, through the CLI against the real Synapse of the test session: the
export archive (Synapse's own export + the person's dossier rows and audit trail + the
directory), and the erasure recorded."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
import yaml

from cercle.cli import main
from dossier_service.db import build_database
from dossier_service.directory.accounts import link
from dossier_service.migrate import upgrade
from dossier_service.models.audit import AuditEntry
from dossier_service.models.tasks import Task
from tests.directory_support import connect

pytestmark = pytest.mark.integration


@pytest.fixture
def cli_config(synapse: Any, tmp_path: Path) -> Path:
    data = dict(synapse.profile.data)
    data["dossier"] = {**data["dossier"], "database_url": f"sqlite:///{tmp_path / 'dossier.db'}"}
    path = tmp_path / "cercle.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


async def _dossier_with_rows(url: str, user_id: str, other: str) -> None:
    await upgrade(url)
    db = build_database(url)
    try:
        async with db.transaction() as session:
            session.add(Task(type="soin", label="Pansement", created_by=user_id))
            session.add(Task(type="soin", label="Autre", created_by=other))
            session.add(
                AuditEntry(
                    actor=user_id,
                    actor_kind="user",
                    action="read",
                    resource="patient:P1",
                    patient_id="P1",
                )
            )
            session.add(
                AuditEntry(
                    actor=other,
                    actor_kind="user",
                    action="read",
                    resource="patient:P2",
                    patient_id="P2",
                )
            )
    finally:
        await db.dispose()


async def _write_something(base_url: str, token: str) -> str:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
        async with http.post(f"{base_url}/_matrix/client/v3/createRoom", json={}) as resp:
            room_id = str((await resp.json())["room_id"])
        async with http.put(
            f"{base_url}/_matrix/client/v3/rooms/{quote(room_id)}/send/m.reaction/t1",
            json={},
        ) as resp:
            assert resp.status == 200
    return room_id


def test_export_archive_has_synapse_data_dossier_rows_and_directory(
    synapse: Any,
    user_factory: Any,
    cli_config: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    user, other = user_factory(), user_factory()
    room_id = asyncio.run(_write_something(synapse.base_url, user.access_token))
    asyncio.run(
        _dossier_with_rows(
            f"sqlite+aiosqlite:///{tmp_path / 'dossier.db'}", user.user_id, other.user_id
        )
    )
    conn = connect(tmp_path / "dossier.db")  # the directory is in the dossier's database
    link(conn, user.user_id, "810000000008", source="test", actor="test")
    conn.close()

    target = tmp_path / "export.zip"
    code = main(["--config", str(cli_config), "admin", "user", "export", user.user_id,
                 "--sortie", str(target)])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    assert str(target) in out
    assert oct(target.stat().st_mode)[-3:] == "600"
    with zipfile.ZipFile(target) as zf:
        names = zf.namelist()
        assert "LISEZMOI.txt" in names
        # Synapse's own export: the room the person created, with its events
        assert any(n.startswith(f"synapse/rooms/{room_id}/") for n in names), names
        assert any(n.startswith("synapse/user_data/") for n in names), names
        tasks = json.loads(zf.read("dossier/tasks.json"))
        assert [t["label"] for t in tasks] == ["Pansement"]  # only the person's
        trail = json.loads(zf.read("dossier/audit_log.json"))
        assert [r["resource"] for r in trail] == ["patient:P1"]
        directory = json.loads(zf.read("annuaire.json"))
        assert directory["lien"][0]["national_id"] == "810000000008"
        assert "version_en_vigueur" in json.loads(zf.read("documents_juridiques.json"))
    rows = (
        sqlite3.connect(tmp_path / "dossier.db")  # the directory is in the dossier's database
        .execute("SELECT action, target FROM annuaire_audit WHERE action = 'rgpd.export'")
        .fetchall()
    )
    assert rows == [("rgpd.export", user.user_id)]


def test_erasure_is_recorded_and_unlinks_the_directory_entry(
    user_factory: Any, cli_config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    user = user_factory()
    conn = connect(tmp_path / "dossier.db")  # the directory is in the dossier's database
    link(conn, user.user_id, "810000000015", source="test", actor="test")
    conn.close()
    code = main(
        ["--config", str(cli_config), "admin", "user", "deactivate", user.user_id, "--erase"]
    )
    # no dossier runs beside this Synapse: the account is erased, and the operator is told
    # (exit 1) that the dossier's sessions could not be ended yet (issue 12)
    said = capsys.readouterr()
    assert code == 1, said.err
    assert "Compte désactivé et effacé" in said.out and "le dossier est injoignable" in said.out
    conn = sqlite3.connect(tmp_path / "dossier.db")  # the directory is in the dossier's database
    assert conn.execute(
        "SELECT actor, detail FROM annuaire_audit WHERE action = 'compte.efface' AND target = ?",
        (user.user_id,),
    ).fetchall() == [("cli", '{"lien_annuaire_retire": true}')]
    assert conn.execute(
        "SELECT count(*) FROM annuaire_account_link WHERE mxid = ?", (user.user_id,)
    ).fetchone() == (0,)


def test_export_of_an_unknown_account_is_a_clear_error(
    cli_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["--config", str(cli_config), "admin", "user", "export", "@inconnu:cercle.localhost"]
    )
    assert code == 1
    assert "utilisateur inconnu" in capsys.readouterr().err


def test_legal_publish_records_the_version_and_refuses_the_unknown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No Synapse needed: the command records the version, applied at the next start."""
    config = tmp_path / "cercle.yaml"
    config.write_text(yaml.safe_dump({"var_dir": str(tmp_path / "var")}), encoding="utf-8")

    def publish(version: str) -> tuple[int, str, str]:
        code = main(["--config", str(config), "admin", "legal", "publish", version])
        out, err = capsys.readouterr()
        return code, out, err

    code, out, _ = publish("1.1")
    assert code == 0 and "version 1.1 en vigueur" in out and "cercle down" in out
    rows = json.loads((tmp_path / "var" / "legal" / "publications.json").read_text())
    assert [(r["version"], r["published_by"]) for r in rows] == [("1.1", "cli")]
    assert publish("1.1")[0] == 1
    code, _, err = publish("9.9")
    assert code == 1 and "version inconnue « 9.9 »" in err and "1.0, 1.1" in err
