"""The Pro Santé Connect rules without Synapse: claims -> professional, directory entry ->
decision, and the configuration's refusals."""

from __future__ import annotations

import pytest
from synapse.module_api.errors import ConfigError

from homeserver.modules.pro_sante_connect import (
    ClaimsRefused,
    DirectoryEntry,
    decide,
    parse_config,
)
from homeserver.modules.pro_sante_connect.claims import national_id_of, professional_of

PSC = {
    "sub": "f:550dc1c8:810000000008",
    "SubjectNameID": "810000000008",
    "family_name": "BOYER-CIVIL",
    "given_name": "RAPHAEL",
    "SubjectRefPro": {
        "codeCivilite": "M",
        "exercices": [
            {"codeProfession": "60", "nomDExercice": "BOYER", "prenomDExercice": "RAPHAEL"}
        ],
    },
}


def test_psc_claims_give_the_professional_with_exercise_names() -> None:
    person = professional_of(PSC)
    assert person.national_id == "810000000008" and person.is_rpps
    assert (person.last_name, person.first_name) == ("BOYER", "RAPHAEL")
    assert person.profession == "Infirmier"


def test_civil_names_when_there_is_no_exercise() -> None:
    person = professional_of({"SubjectNameID": "0123456789", "family_name": "X", "given_name": "Y"})
    assert (person.last_name, person.first_name, person.profession_code) == ("X", "Y", "")
    assert not person.is_rpps  # ADELI
    assert person.profession == "Professionnel de santé"


@pytest.mark.parametrize(
    "value", [None, "", "   ", "81000000000 8", "<script>", "8" * 40, ["810000000008"], True]
)
def test_a_missing_or_malformed_national_id_is_refused(value: object) -> None:
    claims = dict(PSC, SubjectNameID=value)
    with pytest.raises(ClaimsRefused) as refused:
        national_id_of(claims)
    assert "identifiant national" in str(refused.value)
    assert str(value) not in str(refused.value) or value in ("", None)


def test_another_claim_can_carry_the_national_id() -> None:
    assert national_id_of({"rpps": 810000000008}, "rpps") == "810000000008"


def test_decisions() -> None:
    person = professional_of(PSC)
    active = DirectoryEntry(True, "BOYER Raphael — Infirmier, Narbonne", None)
    assert decide(person, active).approve and decide(person, active).link
    assert decide(person, active).display_name == "BOYER Raphael — Infirmier, Narbonne"
    inactive = DirectoryEntry(False, "BOYER Raphael — Infirmier, Narbonne", "@r.boyer:x")
    assert not decide(person, inactive).approve
    assert decide(person, inactive).existing_mxid == "@r.boyer:x"
    absent = decide(person, None)
    assert not absent.approve and not absent.link
    assert absent.display_name == "BOYER Raphael — Infirmier"
    adeli = professional_of(dict(PSC, SubjectNameID="0000000016"))
    assert not decide(adeli, active).approve  # only an RPPS entry is trusted at once


def test_config() -> None:
    assert parse_config({"directory_database": "/x.db"}).national_id_claim == "SubjectNameID"
    with pytest.raises(ConfigError):
        parse_config({})
    with pytest.raises(ConfigError):
        parse_config({"directory_database": "/x.db", "typo": 1})
    with pytest.raises(ConfigError):
        parse_config({"directory_database": ""})
