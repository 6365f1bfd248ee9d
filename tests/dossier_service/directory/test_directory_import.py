from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from dossier_service.directory.database import has_schema
from dossier_service.directory.importer import import_extract
from dossier_service.directory.rpps_format import FormatError
from tests.directory_support import connect

from .conftest import SAMPLE


def people(path: Path) -> dict[str, list[list[str]]]:
    """Independent reading of an extract: national id -> its lines' fields."""
    lines = path.read_text(encoding="utf-8").splitlines()
    header = lines[0].split("|")
    col = header.index("Identification nationale PP")
    out: dict[str, list[list[str]]] = {}
    for line in lines[1:]:
        fields = line.split("|")
        out.setdefault(fields[col], []).append(fields)
    return out


def count(conn: sqlite3.Connection, sql: str) -> int:
    return int(conn.execute(sql).fetchone()[0])


def test_the_tables_are_the_dossiers_alembic_schema(tmp_path: Path) -> None:
    from alembic.script import ScriptDirectory

    from dossier_service.migrate import alembic_config

    conn = connect(tmp_path / "a.db")
    assert has_schema(conn)
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert conn.execute("SELECT version_num FROM alembic_version").fetchone()[0] == head
    import_extract(conn, SAMPLE)
    conn.close()
    conn = connect(tmp_path / "a.db")  # reopening keeps the data
    assert count(conn, "SELECT count(*) FROM annuaire_professional") > 0


def test_sample_groups_activities_by_professional(db: sqlite3.Connection) -> None:
    expected = people(SAMPLE)
    seen: list[tuple[int, int]] = []
    report = import_extract(db, SAMPLE, progress=lambda done, total: seen.append((done, total)))
    assert report.lines == 500
    assert report.rejected == 0
    assert report.added == len(expected)
    assert count(db, "SELECT count(*) FROM annuaire_professional WHERE active=1") == len(expected)
    multi = next(k for k, v in expected.items() if len(v) > 1)
    n = count(
        db,
        "SELECT count(*) FROM annuaire_activity a JOIN annuaire_professional p ON p.id=a.professional_id "
        f"WHERE p.national_id='{multi}'",
    )
    assert n == len({tuple(f) for f in expected[multi]})
    assert seen and seen[-1][0] == seen[-1][1] == SAMPLE.stat().st_size


def test_reimport_same_file_changes_nothing(db: sqlite3.Connection) -> None:
    first = import_extract(db, SAMPLE)
    snapshot = db.execute(
        "SELECT national_id, content_hash, active FROM annuaire_professional ORDER BY id"
    ).fetchall()
    again = import_extract(db, SAMPLE)
    assert (again.added, again.updated, again.deactivated) == (0, 0, 0)
    assert again.unchanged == first.added
    assert (
        db.execute(
            "SELECT national_id, content_hash, active FROM annuaire_professional ORDER BY id"
        ).fetchall()
        == snapshot
    )


def test_malformed_lines_are_rejected_with_numbers(db: sqlite3.Connection, tmp_path: Path) -> None:
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()
    width = len(lines[0].split("|"))
    bad = list(lines)
    bad[3] = "8|123|"  # too few columns (file line 4)
    fields = bad[10].split("|")
    fields[2] = ""  # no national id (file line 11)
    bad[10] = "|".join(fields)
    fields = bad[20].split("|")
    fields[7] = ""  # no last name (file line 21)
    bad[20] = "|".join(fields)
    path = tmp_path / "bad.txt"
    data = ("\n".join(bad) + "\n").encode() + b"8|\xff\xfe|broken\n"  # line 502: not UTF-8
    path.write_bytes(data)
    report = import_extract(db, path)
    assert report.rejected == 4
    numbers = {r.number: r.reason for r in report.rejects}
    assert set(numbers) == {4, 11, 21, 502}
    assert "colonnes" in numbers[4] and str(width - 1) in numbers[4]
    assert "identifiant national" in numbers[11]
    assert "nom" in numbers[21]
    assert "UTF-8" in numbers[502]
    assert report.added > 0 and report.lines == 501


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"\x89PNG\r\n\x1a\n\0\0\0IHDR",
        "nom;prénom;profession\nDUPONT;Marie;Infirmier\n".encode(),
        b"Type d'identifiant PP|Identifiant PP|Nom d'exercice|\n8|1|X|\n",
        "Identification nationale PP|Nom d'exercice\n".encode("latin-1"),
    ],
)
def test_wrong_format_is_refused_before_writing(
    db: sqlite3.Connection, tmp_path: Path, content: bytes
) -> None:
    import_extract(db, SAMPLE)
    before = db.execute("SELECT count(*), max(id) FROM annuaire_import_run").fetchone()
    path = tmp_path / "autre.txt"
    path.write_bytes(content)
    with pytest.raises(FormatError) as err:
        import_extract(db, path)
    assert "Format" in str(err.value) or "vide" in str(err.value)
    assert db.execute("SELECT count(*), max(id) FROM annuaire_import_run").fetchone() == before
    assert count(db, "SELECT count(*) FROM annuaire_professional WHERE active=1") > 0


def test_newer_extract_updates_adds_and_deactivates(
    db: sqlite3.Connection, tmp_path: Path, generate
) -> None:  # type: ignore[no-untyped-def]
    old = generate(3000, seed=5)
    first = import_extract(db, old)
    lines = old.read_text(encoding="utf-8").splitlines()
    header, body = lines[0], lines[1:]
    col = header.split("|").index("Identification nationale PP")
    city_col = header.split("|").index("Libellé commune (coord. structure)")
    ids = list(dict.fromkeys(line.split("|")[col] for line in body))
    gone = set(ids[:40])
    changed = set(ids[40:65])
    new_body = []
    for line in body:
        f = line.split("|")
        if f[col] in gone:
            continue
        if f[col] in changed:
            f[city_col] = "BÉZIERS"
        new_body.append("|".join(f))
    extra = generate(120, seed=999).read_text(encoding="utf-8").splitlines()[1:]
    extra_ids = {line.split("|")[col] for line in extra} - set(ids)
    extra = [line for line in extra if line.split("|")[col] in extra_ids]
    newer = tmp_path / "newer.txt"
    newer.write_text("\n".join([header, *new_body, *extra]) + "\n", encoding="utf-8")
    report = import_extract(db, newer)
    assert report.deactivated == len(gone)
    assert report.updated == len(changed)
    assert report.added == len(extra_ids)
    assert report.unchanged == first.added - len(gone) - len(changed)
    inactive = {
        r[0] for r in db.execute("SELECT national_id FROM annuaire_professional WHERE active=0")
    }
    assert inactive == gone
    # deactivated professionals are no longer found; updated ones are found at the new place
    gone_id = sorted(gone)[0]
    assert (
        count(
            db,
            "SELECT count(*) FROM annuaire_search_key k JOIN annuaire_professional p ON "
            f"p.id=k.professional_id WHERE p.national_id='{gone_id}'",
        )
        == 0
    )
    one = sorted(changed)[0]
    cities = {
        r[0]
        for r in db.execute(
            "SELECT a.city FROM annuaire_activity a JOIN annuaire_professional p ON p.id=a.professional_id "
            f"WHERE p.national_id='{one}'"
        )
    }
    assert cities == {"BÉZIERS"}
    # the old extract again brings the absent ones back
    back = import_extract(db, old)
    assert back.updated == len(gone) + len(changed)
    assert back.deactivated == len(extra_ids)


def test_reading_in_a_helper_process_gives_the_same_directory(tmp_path: Path, generate) -> None:  # type: ignore[no-untyped-def]
    path = generate(4000, seed=11)
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[100] = "cassée|"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    here = connect(tmp_path / "here.db")
    there = connect(tmp_path / "there.db")
    a = import_extract(here, path, parallel=False)
    b = import_extract(there, path, parallel=True)
    assert (a.lines, a.added, a.rejected) == (b.lines, b.added, b.rejected) == (4000, a.added, 1)
    assert [r.number for r in b.rejects] == [101]
    dump = "SELECT national_id, last_name, content_hash FROM annuaire_professional ORDER BY id"
    assert here.execute(dump).fetchall() == there.execute(dump).fetchall()
    keys = "SELECT count(*), group_concat(token, ',') FROM annuaire_search_key"
    assert here.execute(keys).fetchone() == there.execute(keys).fetchone()
    again = import_extract(there, path, parallel=True)
    assert (again.added, again.updated, again.unchanged) == (0, 0, a.added)


def test_lines_of_one_professional_far_apart(
    db: sqlite3.Connection, tmp_path: Path, generate
) -> None:  # type: ignore[no-untyped-def]
    path = generate(6000, seed=3)
    lines = path.read_text(encoding="utf-8").splitlines()
    col = lines[0].split("|").index("Identification nationale PP")
    ids = [line.split("|")[col] for line in lines[1:]]
    target = next(i for i in range(1, len(ids)) if ids[i] == ids[i - 1])  # two adjacent lines
    moved = lines.pop(target + 1)  # the second line of that professional goes to the end
    lines.append(moved)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    first = import_extract(db, path, parallel=False)
    assert first.added == len(set(ids))
    n = count(
        db,
        "SELECT count(*) FROM annuaire_activity a JOIN annuaire_professional p ON "
        f"p.id=a.professional_id WHERE p.national_id='{ids[target]}'",
    )
    assert n == ids.count(ids[target]) >= 2
    again = import_extract(db, path, parallel=True)
    assert (again.added, again.updated, again.unchanged) == (0, 0, first.added)
    assert (
        count(
            db,
            "SELECT count(*) FROM annuaire_activity a JOIN annuaire_professional p ON "
            f"p.id=a.professional_id WHERE p.national_id='{ids[target]}'",
        )
        == n
    )


def test_links_survive_imports(db: sqlite3.Connection, tmp_path: Path) -> None:
    from dossier_service.directory.accounts import link
    from dossier_service.directory.search import Directory

    conn = db
    import_extract(conn, SAMPLE)
    link(conn, "@boyer:x", "810000000008", source="test", actor="test")
    flags = (
        "SELECT DISTINCT k.linked FROM annuaire_search_key k JOIN annuaire_professional p ON "
        "p.id = k.professional_id WHERE p.national_id = '810000000008'"
    )
    assert conn.execute(flags).fetchall() == [(1,)]
    # a newer extract changes the professional: the rewritten rows stay flagged
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()
    newer = tmp_path / "newer.txt"
    newer.write_text(
        "\n".join([lines[0], lines[1].replace("NARBONNE", "NÎMES"), *lines[2:]]) + "\n",
        encoding="utf-8",
    )
    report = import_extract(conn, newer)
    assert report.updated == 1
    assert conn.execute(flags).fetchall() == [(1,)]
    assert Directory(conn).search("boyer").hits[0].mxid == "@boyer:x"
    # linking the account to someone else unflags the first professional
    link(conn, "@boyer:x", "810000000015", source="test", actor="test")
    assert conn.execute(flags).fetchall() == [(0,)]


def test_the_dossiers_writes_get_their_turn_during_an_import(
    tmp_path: Path, generate, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """One database for the dossier and its directory (issue 14): on SQLite a writer waits at
    most its busy timeout, so a long import commits along the way."""
    import threading

    from dossier_service.directory import importer

    monkeypatch.setattr(importer, "COMMIT_LINES", 2000)  # one commit per batch
    path = generate(8000, seed=5)
    conn = connect(tmp_path / "dossier.db")
    written: list[float] = []

    def dossier_write() -> None:
        other = sqlite3.connect(tmp_path / "dossier.db", timeout=10, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        other.execute(
            "INSERT INTO annuaire_audit (at, actor, action, target) VALUES "
            "('t', 'dossier', 'test', 'x')"
        )
        other.execute("COMMIT")
        written.append(time.monotonic())
        other.close()

    started: list[threading.Thread] = []

    def progress(done: int, total: int) -> None:
        if not started:  # the import holds the write lock now
            started.append(threading.Thread(target=dossier_write))
            started[0].start()

    report = import_extract(conn, path, progress=progress)
    finished = time.monotonic()
    started[0].join(timeout=30)
    assert report.lines == 8000
    assert written and written[0] < finished  # written while the import went on


def test_the_sites_finess_and_siret_are_read() -> None:
    """Issue 18: « Numéro FINESS site » / « Numéro SIRET site » (optional columns) are kept
    with the activity, for the structures' members from the RPPS."""
    from dossier_service.directory.rpps_format import Layout

    header = "Identification nationale PP|Nom d'exercice|Prénom d'exercice|Code profession|"
    header += "Libellé profession|Numéro SIRET site|Numéro FINESS site|"
    layout = Layout(header)
    line = layout.parse("810001234567|DUPONT|Claire|60|Infirmier| 12345678900011 |750000001|\n")
    assert (line.activity.siret, line.activity.finess) == ("12345678900011", "750000001")
    old = Layout(header.replace("Numéro SIRET site|Numéro FINESS site|", ""))
    line = old.parse("810001234567|DUPONT|Claire|60|Infirmier|\n")
    assert (line.activity.siret, line.activity.finess) == ("", "")
