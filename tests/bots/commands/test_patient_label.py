"""A patient room's label that looks like the patient's identity is questioned (room names
are plaintext on the server); the help's own examples pass."""

from __future__ import annotations

import pytest

from bots.commands.patient_label import confirmed_label, identity_hint
from bots.commands.registry import UserError


@pytest.mark.parametrize(
    ("label", "suggestion"),
    [
        ("Mme TEST Jeanne", "Suivi Mme T."),
        ("Madame Dupont", "Suivi Mme D."),
        ("DUPONT Jeanne", "Suivi D."),
        ("Jeanne LE-GOFF", "Suivi L."),
        ("M. Martin 12/03/1941", "Suivi M. M."),
        ("Plaie née le 3 mars", "Suivi"),
        ("Suivi 1941-03-12", "Suivi"),
    ],
)
def test_identities_are_recognised_with_a_pseudonymous_suggestion(
    label: str, suggestion: str
) -> None:
    hint = identity_hint(label)
    assert hint is not None and hint.suggestion == suggestion
    assert identity_hint(hint.suggestion) is None  # the suggestion passes


@pytest.mark.parametrize(
    "label",
    [
        "Suivi Mme D.",
        "Suivi M. H.",
        "Mme D. — plaie",
        "Suivi plaie jambe",
        "Suivi PLAIE",
        "Dossier APA",
        "Historique interop",
        "Suivi 2026",
    ],
)
def test_pseudonymous_labels_pass(label: str) -> None:
    assert identity_hint(label) is None
    assert confirmed_label(label) == label


def test_confirmation_is_asked_then_accepted() -> None:
    with pytest.raises(UserError) as asked:
        confirmed_label("Mme TEST Jeanne")
    text = asked.value.message
    assert "ressemble à l'identité d'un patient" in text
    assert "!patient nouveau Suivi Mme T." in text
    assert "!patient nouveau confirmer Mme TEST Jeanne" in text
    assert "<code>!patient nouveau Suivi Mme T.</code>" in (asked.value.html_message or "")
    assert confirmed_label("confirmer Mme TEST Jeanne") == "Mme TEST Jeanne"
