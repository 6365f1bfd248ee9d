"""RGPD rights of a person with an account: what Cercle holds about them, and the record
of an erasure.

The archive (`build_archive`) holds, for one Matrix account:

- ``synapse/``: Synapse's own data export of the account (``synapse.app.admin_cmd
  export-data``: rooms and their events as Synapse stores them — encrypted messages stay
  encrypted —, profile, devices, connections, account data, media ids);
- ``dossier/<table>.json``: every row of the dossier that this person wrote or that names
  them (columns ``actor``, ``user_id``, ``matrix_user_id`` and every ``*_by``), the access
  audit trail (``audit_log``) included; document files themselves are not copied;
- ``annuaire.json``: the directory link, the account requests and the directory's audit rows
  about the account;
- ``documents_juridiques.json``: the version of the Documents juridiques accepted and when;
- ``LISEZMOI.txt``: what each part is, in French.

Erasure (``cercle admin user deactivate --erase``) is Synapse's; `record_erasure` writes
who asked it and when in the directory's audit table and removes the directory link.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import SQLModel

import dossier_service.models  # noqa: F401 - registers every table in SQLModel.metadata
from dossier_service.directory import audit, store
from dossier_service.directory.database import transaction

PERSON_COLUMNS = frozenset({"actor", "user_id", "matrix_user_id"})

README = """Export des données personnelles (RGPD) — Cercle

Compte : {user_id}
Produit le : {at} (UTC) par {actor}

synapse/                    Export du serveur Matrix (Synapse) : salons et événements du
                            compte tels que le serveur les conserve (les messages chiffrés
                            de bout en bout restent chiffrés), profil, appareils, connexions,
                            données de compte, identifiants des médias.
dossier/<table>.json        Lignes du dossier de coordination écrites par la personne ou qui
                            la nomment, dont le journal des accès (audit_log). Les fichiers
                            déposés ne sont pas copiés.
annuaire.json               Lien avec l'annuaire (RPPS/ADELI), demandes de compte, traces.
documents_juridiques.json   Version des documents juridiques acceptée et date.
"""


class ExportError(Exception):
    """French, for the operator."""


def person_columns(table: Any) -> list[Any]:
    return [c for c in table.columns if c.name in PERSON_COLUMNS or c.name.endswith("_by")]


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return value


async def dossier_rows(database_url: str, user_id: str) -> dict[str, list[dict[str, Any]]]:
    """Every dossier row naming ``user_id``, by table (read only, one connection)."""
    if database_url.startswith("sqlite"):
        path = database_url.split(":///", 1)[-1]
        if not Path(path).exists():
            return {}
    engine = create_async_engine(database_url)
    out: dict[str, list[dict[str, Any]]] = {}
    try:
        async with engine.connect() as conn:
            for table in SQLModel.metadata.sorted_tables:
                columns = person_columns(table)
                if not columns:
                    continue
                query = select(table).where(or_(*(c == user_id for c in columns)))
                rows = (await conn.execute(query)).mappings().all()
                if rows:
                    out[table.name] = [{k: _json_value(v) for k, v in r.items()} for r in rows]
    finally:
        await engine.dispose()
    return out


def directory_rows(database: str, user_id: str) -> dict[str, Any]:
    """The directory's rows about ``user_id`` in the dossier's database (``database``: its URL)."""
    with contextlib.closing(store.connect(database)) as conn:
        return {
            "lien": _dicts(
                conn.execute("SELECT * FROM annuaire_account_link WHERE mxid = ?", (user_id,))
            ),
            "demandes": _dicts(
                conn.execute("SELECT * FROM annuaire_account_request WHERE mxid = ?", (user_id,))
            ),
            "traces": _dicts(
                conn.execute(
                    "SELECT * FROM annuaire_audit WHERE target = ? OR actor = ? ORDER BY id",
                    (user_id, user_id),
                )
            ),
        }


def _dicts(cursor: Any) -> list[dict[str, Any]]:
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def synapse_export(python: str, config_path: Path, user_id: str, out_dir: Path) -> None:
    """Synapse's own export (``admin_cmd export-data``), run beside the running server."""
    done = subprocess.run(
        [
            python,
            "-m",
            "synapse.app.admin_cmd",
            "-c",
            str(config_path),
            "export-data",
            user_id,
            "--output-directory",
            str(out_dir),
        ],
        cwd=config_path.parent,
        capture_output=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0 or not out_dir.exists():
        raise ExportError(
            f"l'export de Synapse a échoué (code {done.returncode}) ; voir "
            f"{config_path.parent / 'homeserver.log'}"
        )


def build_archive(
    target: Path,
    *,
    user_id: str,
    actor: str,
    synapse_config: Path,
    dossier: Mapping[str, list[dict[str, Any]]],
    directory: Mapping[str, Any],
    consent: Mapping[str, Any],
    now: datetime | None = None,
    python: str = sys.executable,
) -> Path:
    """Write the zip archive (mode 0600: it is personal data) and return its path."""
    at = (now or datetime.now(UTC)).isoformat()
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="cercle-rgpd-") as tmp:
        synapse_dir = Path(tmp) / "synapse"
        synapse_export(python, synapse_config, user_id, synapse_dir)
        partial = target.with_suffix(".partiel")
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("LISEZMOI.txt", README.format(user_id=user_id, at=at, actor=actor))
            for path in sorted(synapse_dir.rglob("*")):
                if path.is_file():
                    zf.write(path, f"synapse/{path.relative_to(synapse_dir)}")
            for table, rows in dossier.items():
                zf.writestr(f"dossier/{table}.json", _dump(rows))
            zf.writestr("annuaire.json", _dump(directory))
            zf.writestr("documents_juridiques.json", _dump(consent))
        partial.chmod(0o600)
        partial.replace(target)
    return target


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2, default=str)


def record(database: str, *, action: str, user_id: str, actor: str, detail: dict[str, Any]) -> None:
    """One row of the directory's audit table (exports and erasures are recorded there)."""
    with contextlib.closing(store.connect(database)) as conn, transaction(conn):
        audit.record(conn, actor=actor, action=action, target=user_id, detail=detail)


def record_erasure(database: str, *, user_id: str, actor: str) -> None:
    """The account was erased: write it down, and drop its directory link (with the
    search rows' linked flag) in the same transaction."""
    with contextlib.closing(store.connect(database)) as conn, transaction(conn):
        row = conn.execute(
            "SELECT national_id FROM annuaire_account_link WHERE mxid = ?", (user_id,)
        ).fetchone()
        if row is not None:
            store.mark_linked(conn, row[0], False)
            conn.execute("DELETE FROM annuaire_account_link WHERE mxid = ?", (user_id,))
        audit.record(
            conn,
            actor=actor,
            action="compte.efface",
            target=user_id,
            detail={"lien_annuaire_retire": row is not None},
        )
