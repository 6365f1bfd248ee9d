"""The FINESS etalab line parser (pure) and the synthetic extract generator."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dossier_service.directory import finess_format as ff

GENERATOR = Path(__file__).resolve().parents[2] / "fixtures" / "make_finess_extract.py"

CHU = (
    "structureet;310783048;310781406;CHU TOULOUSE PURPAN;CENTRE HOSPITALIER UNIVERSITAIRE "
    "TOULOUSE PURPAN;HOPITAL PURPAN;;1;PL;DU DOCTEUR BAYLAC;;TSA 40031;555;31;HAUTE-GARONNE;"
    "31059 TOULOUSE CEDEX 9;05 61 77 22 33;0561772100;101;Centre Hospitalier Régional (C.H.R.);"
    "1101;Centres Hospitaliers Régionaux;26310004700019;8610Z;03;ARS établissements Publics de "
    "santé dotation globale;1;Etablissement public de santé;1900-01-01;1900-01-01;2024-05-14;"
)


def test_an_establishment_reads_into_its_fields() -> None:
    est = ff.parse_line(CHU)
    assert isinstance(est, ff.Establishment)
    assert est.finess == "310783048" and est.legal_finess == "310781406"
    assert est.name == "CHU TOULOUSE PURPAN"
    assert est.long_name.startswith("CENTRE HOSPITALIER UNIVERSITAIRE")
    assert est.postcode == "31059" and est.city == "TOULOUSE CEDEX 9"
    assert est.address == "HOPITAL PURPAN, 1 PL DU DOCTEUR BAYLAC, TSA 40031"
    assert est.phone == "0561772233" and est.fax == "0561772100"
    assert est.category_code == "101" and est.siret == "26310004700019"
    assert est.dept == "31" and est.commune_code == "555"
    assert est.updated_on == "2024-05-14"


def test_a_geolocation_reads_its_lambert_93_coordinates() -> None:
    geo = ff.parse_line("geolocalisation;310783048;570443.2;6279617.5;1,ATLASANTE,100;2024-05-14")
    assert geo == ff.Geolocation("310783048", 570443.2, 6279617.5, "1,ATLASANTE,100")


def test_corsican_numbers_are_valid() -> None:
    est = ff.parse_line(CHU.replace("310783048", "2A0000016", 1))
    assert isinstance(est, ff.Establishment) and est.finess == "2A0000016"


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (CHU.replace("310783048", "31078", 1), "nofinesset"),
        (CHU.replace("CHU TOULOUSE PURPAN;", "", 1), "30 champs au lieu de 31"),
        (
            CHU.replace(
                "CHU TOULOUSE PURPAN;CENTRE HOSPITALIER UNIVERSITAIRE TOULOUSE PURPAN", ";", 1
            ),
            "raison sociale",
        ),
        ("structureet;310783048;", "champs au lieu de 31"),
        ("entitejuridique;310781406;CHU", "section inconnue"),
        ("geolocalisation;310783048;abc;6279617.5;src;2024-05-14", "illisibles"),
        ("geolocalisation;310783048;1e300;1;src;2024-05-14", "hors limites"),
        ("geolocalisation;310783048;1;2", "champs au lieu de 5"),
    ],
)
def test_a_malformed_line_is_a_french_line_error_without_its_content(
    line: str, reason: str
) -> None:
    with pytest.raises(ff.LineError) as caught:
        ff.parse_line(line)
    assert reason in str(caught.value)
    assert "TOULOUSE" not in str(caught.value)


def test_the_metadata_line_is_required() -> None:
    assert ff.read_metadata("finess;etalab;101942;2026-11-02\n").declared_lines == 101942
    with pytest.raises(ff.FormatError, match="finess;etalab"):
        ff.read_metadata("Identification nationale PP|Nom d'exercice|\n")


def test_windows_1252_and_latin_1_bytes_both_decode() -> None:
    assert ff.decode("établissement’".encode("cp1252")) == "établissement’"
    assert ff.decode(b"\x81caf\xe9") == "\x81café"  # 0x81 undefined in cp1252


@settings(max_examples=300, deadline=None, database=None)
@given(st.text(max_size=400))
def test_any_line_is_either_parsed_or_a_line_error(line: str) -> None:
    with contextlib.suppress(ff.LineError):
        ff.parse_line(line)


def _generate_extract(out: Path) -> None:
    """3,000 establishments (6,000 lines) with seed 7, one line in 40 malformed, into `out`."""
    args = ["--rows", "3000", "--seed", "7", "--malformed", "40", "--out", str(out)]
    subprocess.run([sys.executable, str(GENERATOR), *args], check=True)


def test_the_generator_writes_the_etalab_shape_with_the_asked_share_of_malformed_lines(
    tmp_path: Path,
) -> None:
    out = tmp_path / "finess.csv"
    _generate_extract(out)
    raw = out.read_bytes()
    raw.decode("iso-8859-1")  # the whole file is ISO-8859-1
    lines = raw.splitlines()
    assert ff.read_metadata(ff.decode(lines[0])).declared_lines == 6000
    kinds: Counter[str] = Counter()
    rejected = 0
    for line in lines[1:]:
        try:
            kinds[type(ff.parse_line(ff.decode(line))).__name__] += 1
        except ff.LineError:
            rejected += 1
    assert len(lines) == 6001
    assert 6000 / 80 < rejected < 6000 / 20  # about one line in 40
    assert kinds["Establishment"] > 2800 and kinds["Geolocation"] > 2800
    again = tmp_path / "again.csv"
    _generate_extract(again)
    assert again.read_bytes() == raw  # deterministic for a seed
