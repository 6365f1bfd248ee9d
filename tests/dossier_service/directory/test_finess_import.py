"""The FINESS establishments import (issue 18) on both of the dossier's engines: a
100,000-line synthetic extract with malformed lines, rejects reported with their numbers,
re-import a no-op, a newer extract deactivating the absent, structures found by name words,
kind and département."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dossier_service.directory import finess_format as ff
from dossier_service.directory.database import connect, transaction
from dossier_service.directory.structure_rows import join_structure, search_without_rpps
from dossier_service.directory.structures import import_finess, search_structures, structure

GENERATOR = Path(__file__).resolve().parents[2] / "fixtures" / "make_finess_extract.py"


def extract(tmp_path: Path, rows: int, *, seed: int = 3, malformed: int = 0) -> Path:
    out = tmp_path / f"etalab_{rows}_{seed}_{malformed}.csv"
    subprocess.run(
        [sys.executable, str(GENERATOR), "--rows", str(rows), "--seed", str(seed),
         "--malformed", str(malformed), "--out", str(out)],
        check=True,
    )  # fmt: skip
    return out


def expected(path: Path) -> tuple[int, int, set[str]]:
    """What the pure parser makes of the file: (establishments, rejected, FINESS numbers)."""
    good, rejected, numbers = 0, 0, set()
    with open(path, "rb") as fh:
        fh.readline()
        for raw in fh:
            try:
                parsed = ff.parse_line(ff.decode(raw))
            except ff.LineError:
                rejected += 1
                continue
            if isinstance(parsed, ff.Establishment) and parsed.finess not in numbers:
                good += 1
                numbers.add(parsed.finess)
    return good, rejected, numbers


def test_a_large_extract_with_malformed_lines_imports_streaming_and_idempotent(
    database_url: str, tmp_path: Path
) -> None:
    # 100,001 lines on SQLite (the embedded default); a tenth on PostgreSQL, same code path
    rows = 50_000 if database_url.startswith("sqlite") else 5_000
    path = extract(tmp_path, rows, malformed=200)
    good, rejected, numbers = expected(path)
    with contextlib.closing(connect(database_url)) as conn:
        seen: list[int] = []
        report = import_finess(conn, path, progress=lambda done, total: seen.append(done))
        assert report.lines == 2 * rows
        assert report.added == good and report.rejected == rejected > rows // 250
        assert all(r.number > 1 and r.reason for r in report.rejects)
        assert len(report.rejects) == min(rejected, 1000)
        assert seen[-1] == path.stat().st_size
        located = conn.execute(
            "SELECT count(*) FROM annuaire_structure WHERE x IS NOT NULL"
        ).fetchone()[0]
        assert located > good * 0.9
        again = import_finess(conn, path)
        assert (again.added, again.updated, again.unchanged, again.deactivated) == (0, 0, good, 0)
        smaller = extract(tmp_path, rows // 2)  # another draw: some numbers kept, most gone
        newer_good, _, newer_numbers = expected(smaller)
        newer = import_finess(conn, smaller)
        assert newer.deactivated == len(numbers - newer_numbers)
        active = conn.execute("SELECT count(*) FROM annuaire_structure WHERE active=1").fetchone()
        assert active[0] == newer_good


@pytest.fixture
def structures(tmp_path: Path) -> object:
    path = tmp_path / "mini.csv"
    lines = [
        "finess;etalab;4;2026-11-02",
        ";".join(["structureet", "310000016", "310900017", "SSIAD ADMR", "SSIAD ADMR DU LAURAGAIS",
                  "", "", "12", "R", "DES LILAS", "", "", "555", "31", "HAUTE-GARONNE",
                  "31000 TOULOUSE", "0561000000", "", "354",
                  "Service de Soins Infirmiers A Domicile", "4403", "Services de Soins à Domicile",
                  "12345678901234", "8810A", "", "", "", "", "2001-01-01", "2001-01-01",
                  "2025-01-01", ""]),
        ";".join(["structureet", "340000014", "340900015", "PHARMACIE DES CÉVENNES",
                  "PHARMACIE DES CEVENNES", "", "", "3", "AV", "JEAN JAURES", "", "", "172", "34",
                  "HERAULT", "34000 MONTPELLIER", "0467000000", "", "620",
                  "Pharmacie d'Officine", "3302", "Pharmacies d'Officine", "", "4773Z", "", "",
                  "", "", "1990-01-01", "1990-01-01", "2025-01-01", ""]),
        ";".join(["structureet", "310000024", "310900025", "PHARMACIE DU CAPITOLE",
                  "PHARMACIE DU CAPITOLE", "", "", "1", "PL", "DU CAPITOLE", "", "", "555", "31",
                  "HAUTE-GARONNE", "31000 TOULOUSE", "0561000001", "", "620",
                  "Pharmacie d'Officine", "3302", "Pharmacies d'Officine", "", "4773Z", "", "",
                  "", "", "1990-01-01", "1990-01-01", "2025-01-01", ""]),
        "geolocalisation;310000016;574000.5;6280000.5;1,ATLASANTE;2025-01-01",
    ]  # fmt: skip
    path.write_bytes("\n".join(lines).encode("iso-8859-1") + b"\n")
    return path


def test_structures_are_found_by_name_kind_and_departement(
    database_url: str, structures: Path
) -> None:
    with contextlib.closing(connect(database_url)) as conn:
        import_finess(conn, structures)
        names = lambda q, **kw: [h.name for h in search_structures(conn, q, **kw).hits]  # noqa: E731
        assert names("cevennes") == ["PHARMACIE DES CÉVENNES"]
        assert names("pharmacie") == ["PHARMACIE DES CÉVENNES", "PHARMACIE DU CAPITOLE"]
        assert names("pharmacie 31") == ["PHARMACIE DU CAPITOLE"]
        assert names("ssiad") == ["SSIAD ADMR"]
        assert names("lauragais") == ["SSIAD ADMR"]  # a word of the long name
        assert names("admr", category="ssiad") == ["SSIAD ADMR"]
        assert names("admr", category="ehpad") == []
        assert names("", category="620", dept="34") == ["PHARMACIE DES CÉVENNES"]
        assert names("zzz") == [] and names("") == []
        hit = structure(conn, "310000016")
        assert hit is not None and hit.city == "TOULOUSE" and hit.siret == "12345678901234"
        assert hit.as_json()["type"] == "structure"


def test_a_file_that_is_not_a_finess_extract_is_refused_before_writing(
    database_url: str, tmp_path: Path
) -> None:
    rpps = tmp_path / "rpps.txt"
    rpps.write_text("Identification nationale PP|Nom d'exercice|\n")
    with contextlib.closing(connect(database_url)) as conn:
        with pytest.raises(ff.FormatError, match="finess;etalab"):
            import_finess(conn, rpps)
        assert conn.execute("SELECT count(*) FROM annuaire_import_run").fetchone()[0] == 0


def test_members_without_rpps_are_found_by_their_structure_s_new_name_after_a_reimport(
    database_url: str, structures: Path, tmp_path: Path
) -> None:
    """A FINESS extract that renames a structure (or moves it) refreshes the search text of
    its members without RPPS: searching the new name finds them, the old one no longer."""
    with contextlib.closing(connect(database_url)) as conn:
        import_finess(conn, structures)
        with transaction(conn):
            join_structure(
                conn,
                "310000016",
                "@ines:cercle.test",
                "Inès Lefèvre — Éducatrice",
                actor="@admin:cercle.test",
                at=datetime(2026, 11, 2, tzinfo=UTC),
            )
        assert [m.mxid for m in search_without_rpps(conn, "admr ines")] == ["@ines:cercle.test"]
        renamed = tmp_path / "renamed.csv"
        renamed.write_bytes(
            structures.read_bytes()
            .replace(b"2026-11-02", b"2026-12-02")
            .replace(b";SSIAD ADMR;SSIAD ADMR DU LAURAGAIS;", b";SSIAD AUTAN;SSIAD AUTAN;")
            .replace(b"31000 TOULOUSE;0561000000", b"31400 BALMA;0561000000")
        )
        report = import_finess(conn, renamed)
        assert report.updated == 1
        (hit,) = search_without_rpps(conn, "autan ines")
        assert (hit.mxid, hit.structure, hit.city) == ("@ines:cercle.test", "SSIAD AUTAN", "BALMA")
        assert search_without_rpps(conn, "balma educatrice")[0].mxid == "@ines:cercle.test"
        assert search_without_rpps(conn, "admr ines") == []
        assert search_without_rpps(conn, "toulouse ines") == []
