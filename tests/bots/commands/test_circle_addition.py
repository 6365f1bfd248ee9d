"""Issue 11: ``!cercle ajouter @qui [rôle] [sans-accès]`` read without a bot."""

from __future__ import annotations

import pytest

from bots.commands.dossier.circle import read_addition as _read_addition
from bots.commands.registry import UsageError


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        ("@a:s", ("@a:s", "intervenant", True)),
        ("@a:s mt", ("@a:s", "medecin_traitant", True)),
        ("@a:s sans-accès", ("@a:s", "intervenant", False)),
        ("@a:s aidant sans accès au dossier", ("@a:s", "aidant", False)),
        ("@a:s Sans Accès coordinatrice", ("@a:s", "coordinateur", False)),
    ],
)
def test_role_and_access(words: str, expected: tuple[str, str, bool]) -> None:
    assert _read_addition(words.split()) == expected


@pytest.mark.parametrize(
    ("words", "problem"),
    [
        ("dupont", "Identifiant Matrix attendu"),
        ("@a:s chirurgien", "Rôle inconnu"),
        ("@a:s mt aidant", "Forme attendue"),
    ],
)
def test_bad_input_says_what_is_wrong(words: str, problem: str) -> None:
    with pytest.raises(UsageError, match=problem):
        _read_addition(words.split())
