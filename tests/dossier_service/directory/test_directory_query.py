"""The query parser alone: words -> filters (no database)."""

from __future__ import annotations

from dossier_service.directory.normalize import fold, joined, name_tokens
from dossier_service.directory.query import Commune, Gazetteer, parse_query

GAZ = Gazetteer(
    cities={
        "toulouse": (Commune("31555", "31", "Toulouse"),),
        "beziers": (Commune("34032", "34", "Béziers"),),
        "montpellier": (Commune("34172", "34", "Montpellier"),),
        "saintjeandeluz": (Commune("64483", "64", "Saint-Jean-de-Luz"),),
    },
    postcodes={"31000": (Commune("31555", "31", "Toulouse"),)},
)


def test_folding() -> None:
    assert fold("Béziers") == fold("BEZIERS") == "beziers"
    assert joined("D'ALMEIDA") == joined("d’almeida") == "dalmeida"
    assert joined("Masseur-Kinésithérapeute") == "masseurkinesitherapeute"
    assert name_tokens("GARCIA-LOPEZ", "JEAN-PIERRE") == [
        "garcia",
        "lopez",
        "garcialopez",
        "jean",
        "pierre",
        "jeanpierre",
    ]
    assert name_tokens("D'ALMEIDA", "") == ["almeida", "dalmeida"]


def test_profession_and_city() -> None:
    q = parse_query("infirmier toulouse", GAZ)
    assert q.professions == ("60",) and q.names == ()
    assert q.place is not None and q.place.communes == ("31555",) and q.place.depts == ("31",)
    for word in ("infirmière", "IDE", "Infirmiers"):
        assert parse_query(word, GAZ).professions == ("60",)


def test_kine_synonyms_and_hyphens() -> None:
    for text in ("kiné", "Kine", "masseur-kinésithérapeute", "Masseur Kinésithérapeute", "MK"):
        q = parse_query(text, GAZ)
        assert q.professions == ("70",), text
        assert q.names == ()


def test_specialty_implies_doctor() -> None:
    q = parse_query("cardio montpellier", GAZ)
    assert q.specialties == ("SM26",) and q.professions == ("10",)
    assert q.place is not None and q.place.label == "Montpellier"


def test_numbers() -> None:
    q = parse_query("dup 31", GAZ)
    assert q.names == ("dup",)
    assert q.place is not None and q.place.kind == "departement" and q.place.depts == ("31",)
    q = parse_query("kiné 31000", GAZ)
    assert q.place is not None and q.place.kind == "postcode" and q.place.communes == ("31555",)
    q = parse_query("2A", GAZ)
    assert q.place is not None and q.place.depts == ("2A",)
    assert parse_query("10000000008", GAZ).identifiers == ("10000000008",)


def test_names_accents_apostrophes() -> None:
    assert parse_query("d'almeida", GAZ).names == ("dalmeida",)
    assert parse_query("Béziers", GAZ).place is not None
    assert parse_query("beziers", GAZ).place is not None
    assert parse_query("jean-pierre thomas", GAZ).names == ("jeanpierre", "thomas")
    assert parse_query("St Jean de Luz", GAZ).place is not None


def test_stopwords_only_when_something_else_remains() -> None:
    assert parse_query("du", GAZ).names == ("du",)
    q = parse_query("infirmier à Toulouse", GAZ)
    assert q.names == () and q.place is not None
    assert parse_query("de la fontaine", GAZ).names == ("fontaine",)


def test_email_and_explicit_filters() -> None:
    q = parse_query("Marie.Dupont@Orange.fr", GAZ)
    assert q.emails == ("marie.dupont@orange.fr",)
    q = parse_query("martin", GAZ, profession="60", dept="34", mode="L")
    assert q.professions == ("60",) and q.modes == ("L",)
    assert q.place is not None and q.place.depts == ("34",)


def test_hostile_input_is_bounded() -> None:
    q = parse_query("<script>alert(1)</script> " * 50, GAZ)
    assert len(q.names) <= 12
    assert parse_query("", GAZ).empty and parse_query("   ;;  ", GAZ).empty
