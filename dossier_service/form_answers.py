"""Answers to a thematic form (declared in ``forms_schema.py``): checking, normalising,
reading an HTML post, showing and comparing versions. Pure, no I/O.

:func:`validate_answers` returns *normalised, JSON-ready* values (dates as ``"YYYY-MM-DD"``,
numbers as int or float, multichoice as a list in declaration order, bool as
``true``/``false``) and raises :class:`FormAnswerError` carrying one French message per
faulty field; the dossier's form-answer service stores what it returns.
:func:`answers_from_web_form` turns an HTML form post (strings, checkboxes, multi-selects)
into raw answers for the same validator; :func:`diff_answers` lists what changed between two
versions (for the version history and the liaison entry).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from dossier_service.forms_schema import FormDefinition, FormField

TRUE_WORDS = frozenset({"true", "1", "oui", "on", "yes", "vrai"})
FALSE_WORDS = frozenset({"false", "0", "non", "off", "no", "faux"})


class FormAnswerError(ValueError):
    """Answers do not fit the form. ``errors`` maps a field key (or ``"_"``) to a message."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors = dict(errors)
        super().__init__("; ".join(f"{k} : {v}" for k, v in self.errors.items()))


def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or value == []


def _check_one(f: FormField, value: Any, today: date) -> Any:
    """Return the normalised value or raise ValueError with a French message."""
    if f.type in ("text", "textarea"):
        if not isinstance(value, str):
            raise ValueError("texte attendu")
        text = value.strip() if f.type == "text" else value.strip("\n\r ")
        if f.type == "text" and ("\n" in text or "\r" in text):
            raise ValueError("une seule ligne attendue")
        if f.max_length is not None and len(text) > f.max_length:
            raise ValueError(f"{f.max_length} caractères au plus")
        return text
    if f.type == "date":
        if isinstance(value, date):
            day = value
        elif isinstance(value, str):
            try:
                day = date.fromisoformat(value.strip())
            except ValueError:
                raise ValueError("date invalide (format AAAA-MM-JJ)") from None
        else:
            raise ValueError("date attendue")
        if day.year < 1850 or day.year > 2200:
            raise ValueError("date hors limites")
        if f.past_only and day > today:
            raise ValueError("la date ne peut pas être dans le futur")
        if f.future_only and day < today:
            raise ValueError("la date ne peut pas être dans le passé")
        return day.isoformat()
    if f.type == "choice":
        if not isinstance(value, str) or value not in {c.value for c in f.choices}:
            raise ValueError("choix inconnu")
        return value
    if f.type == "multichoice":
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list | tuple) or not all(isinstance(v, str) for v in items):
            raise ValueError("liste de choix attendue")
        allowed = [c.value for c in f.choices]
        if any(v not in allowed for v in items):
            raise ValueError("choix inconnu")
        return [v for v in allowed if v in set(items)]
    if f.type == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in TRUE_WORDS:
            return True
        if isinstance(value, str) and value.strip().lower() in FALSE_WORDS:
            return False
        raise ValueError("oui ou non attendu")
    if f.type == "number":
        number: float
        if isinstance(value, bool):
            raise ValueError("nombre attendu")
        if isinstance(value, int | float):
            number = float(value)
        elif isinstance(value, str):
            try:
                number = float(value.strip().replace(",", ".").replace("\u00a0", ""))
            except ValueError:
                raise ValueError("nombre attendu") from None
        else:
            raise ValueError("nombre attendu")
        if not math.isfinite(number):
            raise ValueError("nombre attendu")
        if f.integer and not number.is_integer():
            raise ValueError("nombre entier attendu")
        if f.minimum is not None and number < f.minimum:
            raise ValueError(f"valeur minimale : {_fmt_number(f.minimum)}")
        if f.maximum is not None and number > f.maximum:
            raise ValueError(f"valeur maximale : {_fmt_number(f.maximum)}")
        return int(number) if number.is_integer() else number
    raise ValueError("type de champ inconnu")  # pragma: no cover - excluded by the loader


def _fmt_number(value: float) -> str:
    return str(int(value)) if value.is_integer() else str(value).replace(".", ",")


def validate_answers(
    form: FormDefinition, answers: Mapping[str, Any], *, today: date | None = None
) -> dict[str, Any]:
    """Check ``answers`` against ``form``; return the normalised answers (blank ones dropped).

    Raises :class:`FormAnswerError` with every problem at once: unknown keys, missing
    required fields, wrong types, out-of-range numbers, unknown choices, bad dates.
    ``today`` (the caller's date in Europe/Paris) is used by ``past_only``/``future_only``.
    """
    if not isinstance(answers, Mapping):
        raise FormAnswerError({"_": "les réponses doivent être un objet"})
    today = today or date.today()
    errors: dict[str, str] = {}
    fields = {f.key: f for f in form.fields}
    for key in answers:
        if key not in fields:
            errors[str(key)[:64]] = "champ inconnu dans ce formulaire"
    clean: dict[str, Any] = {}
    for f in form.fields:
        value = answers.get(f.key)
        # an unticked box is a real answer ("non") unless nothing was sent at all
        if _is_blank(value) or (f.type == "bool" and value == ""):
            if f.required:
                errors[f.key] = "champ obligatoire"
            continue
        try:
            clean[f.key] = _check_one(f, value, today)
        except ValueError as exc:
            errors[f.key] = str(exc)
            continue
        if f.required and _is_blank(clean[f.key]):
            errors[f.key] = "champ obligatoire"
    if errors:
        raise FormAnswerError(errors)
    return clean


def answers_from_web_form(form: FormDefinition, post: Any) -> dict[str, Any]:
    """Raw answers from an HTML form post (a MultiDict-like object with ``getall``).

    Checkbox fields (``bool``) are rendered as a select oui/non/— so that "no answer" and
    "non" stay distinct; multichoice fields as checkboxes sharing the field's name.
    """
    raw: dict[str, Any] = {}
    for f in form.fields:
        if f.type == "multichoice":
            values = list(post.getall(f.key, []))
            if values:
                raw[f.key] = [str(v) for v in values]
        else:
            value = post.get(f.key)
            if value is not None and str(value).strip() != "":
                raw[f.key] = str(value)
    return raw


@dataclass(frozen=True)
class AnswerChange:
    key: str
    label: str
    before: str
    after: str


def display_value(f: FormField, value: Any) -> str:
    """French display text of a normalised answer."""
    if value is None or value == [] or value == "":
        return "—"
    if f.type == "bool":
        return "Oui" if value else "Non"
    if f.type == "choice":
        return f.choice_label(str(value))
    if f.type == "multichoice":
        return ", ".join(f.choice_label(str(v)) for v in value)
    if f.type == "date":
        try:
            return date.fromisoformat(str(value)).strftime("%d/%m/%Y")
        except ValueError:
            return str(value)
    if f.type == "number" and isinstance(value, float):
        return _fmt_number(value)
    return str(value)


def diff_answers(
    form: FormDefinition, before: Mapping[str, Any] | None, after: Mapping[str, Any]
) -> list[AnswerChange]:
    """What changed between two versions, in declaration order (display texts)."""
    before = before or {}
    changes: list[AnswerChange] = []
    for f in form.fields:
        old, new = before.get(f.key), after.get(f.key)
        if old != new:
            changes.append(
                AnswerChange(f.key, f.label, display_value(f, old), display_value(f, new))
            )
    return changes


def field_keys(forms: Iterable[FormDefinition]) -> dict[str, tuple[str, ...]]:
    """Form key -> its field keys (handy for API documentation and checks)."""
    return {form.key: tuple(f.key for f in form.fields) for form in forms}
