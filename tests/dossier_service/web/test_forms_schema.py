"""The thematic form declarations and the answer validator (pure, no mocks)."""

from datetime import date
from pathlib import Path

import pytest
from multidict import MultiDict

from dossier_service.form_answers import (
    FormAnswerError,
    answers_from_web_form,
    diff_answers,
    display_value,
    validate_answers,
)
from dossier_service.forms_schema import FormDeclarationError, load_forms, parse_form

FORMS_DIR = Path(__file__).resolve().parents[3] / "config" / "forms"
TODAY = date(2026, 11, 25)


def small_form(**field_overrides: object) -> dict:
    field = {"key": "f", "label": "Champ", "type": "text"} | field_overrides
    return {"key": "essai", "title": "Essai", "sections": [{"title": "S", "fields": [field]}]}


def test_shipped_forms_load_and_cover_the_reference_themes() -> None:
    catalogue = load_forms(FORMS_DIR)
    keys = {f.key for f in catalogue}
    assert {"administratif_social", "medical", "cadre_de_vie", "ppcs"} <= keys
    types_used = {fld.type for form in catalogue for fld in form.fields}
    assert types_used == {"text", "textarea", "date", "choice", "multichoice", "bool", "number"}
    ppcs = catalogue.get("ppcs")
    assert ppcs is not None and ppcs.title.startswith("PPCS")
    assert {f.key for f in ppcs.fields if f.required} >= {"date_elaboration", "objectifs"}


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"type": "couleur"}, "type « couleur » inconnu"),
        ({"type": "choice"}, "choices"),
        ({"type": "choice", "choices": ["a", "a"]}, "choix en double"),
        ({"key": "Pas-Bon"}, "clé invalide"),
        ({"min": 3}, "réservés au type number"),
        ({"type": "number", "min": 5, "max": 1}, "min est supérieur à max"),
        ({"required": "oui"}, "true ou false"),
        ({"couleur": "rouge"}, "clé(s) inconnue(s) : couleur"),
        ({"type": "date", "past_only": True, "future_only": True}, "exclusifs"),
    ],
)
def test_bad_declarations_name_the_problem(override: dict, message: str) -> None:
    with pytest.raises(FormDeclarationError) as err:
        parse_form(small_form(**override), source="essai.yaml")
    assert message in str(err.value)
    assert "essai.yaml" in str(err.value)


def test_duplicate_field_and_duplicate_form(tmp_path: Path) -> None:
    data = small_form()
    data["sections"].append({"title": "T", "fields": [{"key": "f", "label": "X", "type": "bool"}]})
    with pytest.raises(FormDeclarationError, match="déclaré deux fois"):
        parse_form(data)
    (tmp_path / "a.yaml").write_text(
        "key: essai\ntitle: A\nsections: [{title: S, fields: [{key: x, label: X, type: bool}]}]\n"
    )
    (tmp_path / "b.yaml").write_text(
        "key: essai\ntitle: B\nsections: [{title: S, fields: [{key: x, label: X, type: bool}]}]\n"
    )
    with pytest.raises(FormDeclarationError, match="déjà déclaré"):
        load_forms(tmp_path)
    (tmp_path / "b.yaml").write_text("key: [\n")
    with pytest.raises(FormDeclarationError, match="YAML illisible"):
        load_forms(tmp_path)


def test_valid_answers_are_normalised() -> None:
    medical = load_forms(FORMS_DIR).get("medical")
    assert medical is not None
    clean = validate_answers(
        medical,
        {
            "pathologies": "  Insuffisance cardiaque\n",
            "poids_kg": "72,5",
            "taille_cm": 168,
            "denutrition": "non",
            "escarres": True,
            "dispositifs": ["lit_medicalise", "oxygene"],
            "derniere_consultation_mt": "2026-11-02",
            "troubles_cognitifs": "legers",
            "allergies": "",
        },
        today=TODAY,
    )
    assert clean == {
        "pathologies": "Insuffisance cardiaque",
        "poids_kg": 72.5,
        "taille_cm": 168,
        "denutrition": False,
        "escarres": True,
        "dispositifs": ["oxygene", "lit_medicalise"],  # declaration order
        "derniere_consultation_mt": "2026-11-02",
        "troubles_cognitifs": "legers",
    }


def test_every_problem_is_reported_at_once() -> None:
    medical = load_forms(FORMS_DIR).get("medical")
    assert medical is not None
    with pytest.raises(FormAnswerError) as err:
        validate_answers(
            medical,
            {
                "poids_kg": "lourd",
                "taille_cm": 170.5,
                "douleur_eva": 11,
                "troubles_cognitifs": "inconnu",
                "dispositifs": ["oxygene", "jetpack"],
                "derniere_consultation_mt": "2027-01-01",
                "escarres": "peut-être",
                "champ_pirate": "x",
            },
            today=TODAY,
        )
    errors = err.value.errors
    assert errors["pathologies"] == "champ obligatoire"
    assert errors["poids_kg"] == "nombre attendu"
    assert errors["taille_cm"] == "nombre entier attendu"
    assert errors["douleur_eva"] == "valeur maximale : 10"
    assert errors["troubles_cognitifs"] == "choix inconnu"
    assert errors["dispositifs"] == "choix inconnu"
    assert errors["derniere_consultation_mt"] == "la date ne peut pas être dans le futur"
    assert errors["escarres"] == "oui ou non attendu"
    assert errors["champ_pirate"] == "champ inconnu dans ce formulaire"


def test_text_limits_and_types() -> None:
    form = parse_form(small_form(max_length=5))
    assert validate_answers(form, {"f": "abc"}) == {"f": "abc"}
    with pytest.raises(FormAnswerError, match="5 caractères au plus"):
        validate_answers(form, {"f": "abcdef"})
    with pytest.raises(FormAnswerError, match="une seule ligne"):
        validate_answers(form, {"f": "a\nb"})
    with pytest.raises(FormAnswerError, match="texte attendu"):
        validate_answers(form, {"f": 12})
    with pytest.raises(FormAnswerError, match="objet"):
        validate_answers(form, ["f"])  # type: ignore[arg-type]
    dated = parse_form(small_form(type="date", future_only=True))
    with pytest.raises(FormAnswerError, match="format AAAA-MM-JJ"):
        validate_answers(dated, {"f": "25/11/2026"})
    with pytest.raises(FormAnswerError, match="dans le passé"):
        validate_answers(dated, {"f": "2026-11-24"}, today=TODAY)
    assert validate_answers(dated, {"f": date(2026, 12, 1)}, today=TODAY) == {"f": "2026-12-01"}


def test_web_form_post_round_trip_and_diff() -> None:
    form = load_forms(FORMS_DIR).get("cadre_de_vie")
    assert form is not None
    post = MultiDict(
        [
            ("type_logement", "appartement"),
            ("etage", "3"),
            ("ascenseur", "non"),
            ("risques", "chute"),
            ("risques", "isolement_inexistant"),
            ("commentaire", ""),
        ]
    )
    raw = answers_from_web_form(form, post)
    assert raw == {
        "type_logement": "appartement",
        "etage": "3",
        "ascenseur": "non",
        "risques": ["chute", "isolement_inexistant"],
    }
    with pytest.raises(FormAnswerError) as err:
        validate_answers(form, raw)
    assert set(err.value.errors) == {"risques"}
    raw["risques"] = ["chute"]
    v1 = validate_answers(form, raw)
    v2 = validate_answers(form, {**raw, "etage": "4", "ascenseur": "oui"})
    changes = diff_answers(form, v1, v2)
    assert [(c.label, c.before, c.after) for c in changes] == [
        ("Étage", "3", "4"),
        ("Ascenseur", "Non", "Oui"),
    ]
    first = diff_answers(form, None, v1)
    assert ("Type de logement", "—", "Appartement") in [(c.label, c.before, c.after) for c in first]
    risques = form.field("risques")
    assert risques is not None and display_value(risques, ["chute"]) == "Chute"


def test_a_label_cut_by_an_unquoted_comma_is_refused() -> None:
    """In a YAML flow mapping an unquoted comma ends the label and starts a stray key: the
    shipped forms had two such labels silently cut short; the declaration is now refused."""
    import yaml

    raw = yaml.safe_load("{ value: couple, label: Marié(e), pacsé(e) ou en couple }")
    with pytest.raises(FormDeclarationError) as err:
        parse_form(small_form(type="choice", choices=[raw]), source="essai.yaml")
    assert "essai.yaml : sections[0].fields[0] (f).choices[0]" in str(err.value)
    assert "clé(s) inconnue(s) : pacsé(e) ou en couple" in str(err.value)
    labels = {
        c.value: c.label for form in load_forms(FORMS_DIR) for f in form.fields for c in f.choices
    }
    assert labels["couple"] == "Marié(e), pacsé(e) ou en couple"
    assert labels["pompe"] == "Pompe (insuline, antalgie…)"
