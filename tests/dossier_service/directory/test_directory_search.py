from __future__ import annotations

import sqlite3

from dossier_service.directory.accounts import link
from dossier_service.directory.search import Directory


def names(result) -> list[str]:  # type: ignore[no-untyped-def]
    return [h.last_name for h in result.hits]


def test_accents_and_case(sample_directory: Directory) -> None:
    a = sample_directory.search("Béziers", per_page=50)
    b = sample_directory.search("beziers", per_page=50)
    c = sample_directory.search("BEZIERS", per_page=50)
    assert a.total == b.total == c.total > 0
    assert all(any(p.city == "BÉZIERS" for p in h.practices) for h in a.hits)
    assert names(sample_directory.search("lefevre")) == names(sample_directory.search("Lefèvre"))
    assert all(h.last_name == "LEFÈVRE" for h in sample_directory.search("lefevre").hits)


def test_profession_words_and_hyphens(sample_directory: Directory) -> None:
    kine = sample_directory.search("kiné", per_page=50)
    full = sample_directory.search("Masseur-Kinésithérapeute", per_page=50)
    spaced = sample_directory.search("masseur kinesitherapeute", per_page=50)
    assert kine.total == full.total == spaced.total > 0
    assert {h.profession for h in kine.hits} == {"Masseur-Kinésithérapeute"}
    nurses = sample_directory.search("infirmière toulouse", per_page=50)
    assert nurses.total > 0
    assert all(
        h.profession == "Infirmier" and any(p.city == "TOULOUSE" for p in h.practices)
        for h in nurses.hits
    )
    assert sample_directory.search("IDE toulouse").total == nurses.total


def test_apostrophes_and_compound_names(sample_directory: Directory) -> None:
    for text in ("d'almeida", "D’ALMEIDA", "dalmeida", "almeida"):
        result = sample_directory.search(text)
        assert result.total == 6, text  # 8 lines, 6 professionals
        assert set(names(result)) == {"D'ALMEIDA"}
    both = sample_directory.search("garcia-lopez")
    assert both.total > 0 and set(names(both)) == {"GARCIA-LOPEZ"}
    assert sample_directory.search("lopez").total == both.total


def test_postcode_and_departement(sample_directory: Directory) -> None:
    pc = sample_directory.search("34500", per_page=50)
    assert pc.total > 0
    assert all(any(p.postcode == "34500" for p in h.practices) for h in pc.hits)
    dept = sample_directory.search("kiné 31", per_page=50)
    assert dept.total > 0
    assert all(any(p.dept == "31" for p in h.practices) for h in dept.hits)
    prefix = sample_directory.search("dup 31", per_page=50)
    assert all(h.last_name.startswith("DUP") for h in prefix.hits)
    assert all(any(p.dept == "31" for p in h.practices) for h in prefix.hits)
    cardio = sample_directory.search("cardio montpellier")
    assert all("Cardiologie" in h.specialty for h in cardio.hits)


def test_filters(sample_directory: Directory) -> None:
    r = sample_directory.search("", profession="Infirmier", dept="34", mode="L", per_page=50)
    assert r.total > 0
    assert all(h.profession == "Infirmier" for h in r.hits)
    assert all(any(p.dept == "34" and p.mode == "Libéral" for p in h.practices) for h in r.hits)
    assert (
        sample_directory.search("", specialty="SM26").total
        == sample_directory.search("cardiologue").total
        > 0
    )


def test_exact_name_first_then_linked(sample_directory: Directory) -> None:
    conn: sqlite3.Connection = sample_directory.conn
    result = sample_directory.search("mar", per_page=50)
    assert result.total > 0
    # link a professional named MARTIN* whose name is not exactly "mar": it must come first
    martin = next(h for h in result.hits if h.last_name == "MARTIN")
    link(conn, "@m:test", martin.national_id, source="test", actor="test")
    ranked = sample_directory.search("mar", per_page=50)
    assert ranked.hits[0].national_id == martin.national_id and ranked.hits[0].mxid == "@m:test"
    assert ranked.total == result.total
    # an exact name beats a linked prefix match
    exact = sample_directory.search("martin", per_page=50)
    assert exact.hits[0].exact and all(
        h.exact for h in exact.hits if h.last_name == "MARTIN" or h.first_name == "MARTIN"
    )
    assert exact.hits[0].national_id == martin.national_id  # exact and linked


def test_pagination_is_stable_and_complete(sample_directory: Directory) -> None:
    whole = sample_directory.search("toulouse", per_page=50)
    pages = [sample_directory.search("toulouse", page=n, per_page=7) for n in range(1, 9)]
    flat = [h.national_id for p in pages for h in p.hits]
    assert flat == [h.national_id for h in whole.hits][: len(flat)]
    assert len(set(flat)) == len(flat) == min(whole.total, 56)


def test_nothing_and_identifier(sample_directory: Directory) -> None:
    assert sample_directory.search("zzzzzz").total == 0
    assert sample_directory.search("").total == 0
    hit = sample_directory.search("10000000008").hits[0]
    assert hit.national_id == "810000000008"
    assert hit.display_name == "BOYER Raphael — Infirmier, Narbonne"


def test_first_and_last_name_in_any_order(sample_directory: Directory) -> None:
    a = sample_directory.search("thomas jean-pierre", per_page=50)
    b = sample_directory.search("Jean-Pierre THOMAS", per_page=50)
    assert a.total == b.total > 0
    assert {(h.last_name, h.first_name) for h in a.hits} == {("THOMAS", "JEAN-PIERRE")}
    # a prefix of the first name after the full surname, and a prefix of both (fallback path)
    c = sample_directory.search("thomas jean", per_page=50)
    assert {h.national_id for h in a.hits} <= {h.national_id for h in c.hits}
    assert all(h.first_name.startswith("JEAN") or h.last_name.startswith("JEAN") for h in c.hits)
    d = sample_directory.search("thom jean-p", per_page=50)
    assert {h.national_id for h in d.hits} == {h.national_id for h in a.hits}


def test_two_prefixes_and_compound_first_names(sample_directory: Directory) -> None:
    # "ma ro": both words are beginnings of names (one of each part of the name)
    both = sample_directory.search("ro ma", per_page=50)
    assert both.total > 0
    for hit in both.hits:
        words = (hit.last_name + " " + hit.first_name).replace("-", " ").lower().split()
        assert any(w.startswith("ro") for w in words) and any(w.startswith("ma") for w in words)
    assert {h.national_id for h in sample_directory.search("ma ro", per_page=50).hits} == {
        h.national_id for h in both.hits
    }
    # a compound first name typed with a space
    jp = sample_directory.search("jean pierre", per_page=50)
    assert jp.total > 0 and all("JEAN-PIERRE" in h.first_name for h in jp.hits)
    assert sample_directory.search("zz yy").total == 0
