"""Thematic forms declared as data (``config/forms/*.yaml``): loading and answer validation.

Pure module (no I/O besides reading the declaration files in :func:`load_forms`).

A declaration file looks like::

    key: medical                 # identifier, [a-z0-9_]+, unique across files
    title: Médical
    version: 1                   # bump when fields change; stored beside each answer version
    description: "…"             # optional
    sections:
      - title: Antécédents
        fields:
          - key: allergies       # [a-z0-9_]+, unique within the form
            label: Allergies
            type: textarea       # text | textarea | date | choice | multichoice | bool | number
            required: false
            help: "…"            # optional hint shown under the field
            # per type: choices (choice/multichoice, strings or {value, label}),
            # min / max / integer (number), max_length (text/textarea),
            # past_only / future_only (date)

Answers are validated with :func:`validate_answers`; it returns *normalised, JSON-ready*
values (dates as ``"YYYY-MM-DD"``, numbers as int or float, multichoice as a list in
declaration order, bool as ``true``/``false``) and raises :class:`FormAnswerError` carrying
one French message per faulty field. **The dossier's form-answer service should call
``validate_answers(form, answers)`` before storing a version** and store what it returns.
:func:`answers_from_web_form` turns an HTML form post (strings, checkboxes, multi-selects)
into raw answers for the same validator; :func:`diff_answers` lists what changed between two
versions (for the version history and the liaison entry).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import yaml

FIELD_TYPES = ("text", "textarea", "date", "choice", "multichoice", "bool", "number")
KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
DEFAULT_MAX_LENGTH = {"text": 500, "textarea": 10_000}
MAX_FIELDS_PER_FORM = 300

TRUE_WORDS = frozenset({"true", "1", "oui", "on", "yes", "vrai"})
FALSE_WORDS = frozenset({"false", "0", "non", "off", "no", "faux"})


class FormDeclarationError(ValueError):
    """A declaration file is wrong; the message (French) names the file and the key."""


class FormAnswerError(ValueError):
    """Answers do not fit the form. ``errors`` maps a field key (or ``"_"``) to a message."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors = dict(errors)
        super().__init__("; ".join(f"{k} : {v}" for k, v in self.errors.items()))


@dataclass(frozen=True)
class Choice:
    value: str
    label: str


@dataclass(frozen=True)
class FormField:
    key: str
    label: str
    type: str
    required: bool = False
    help: str = ""
    choices: tuple[Choice, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    integer: bool = False
    max_length: int | None = None
    past_only: bool = False
    future_only: bool = False

    def choice_label(self, value: str) -> str:
        for choice in self.choices:
            if choice.value == value:
                return choice.label
        return value


@dataclass(frozen=True)
class FormSection:
    title: str
    fields: tuple[FormField, ...]


@dataclass(frozen=True)
class FormDefinition:
    key: str
    title: str
    version: int
    sections: tuple[FormSection, ...]
    description: str = ""
    source: str = ""

    @property
    def fields(self) -> tuple[FormField, ...]:
        return tuple(f for s in self.sections for f in s.fields)

    def field(self, key: str) -> FormField | None:
        for f in self.fields:
            if f.key == key:
                return f
        return None


@dataclass(frozen=True)
class FormCatalogue:
    forms: tuple[FormDefinition, ...] = field(default_factory=tuple)

    def get(self, key: str) -> FormDefinition | None:
        for form in self.forms:
            if form.key == key:
                return form
        return None

    def __iter__(self) -> Any:
        return iter(self.forms)

    def __len__(self) -> int:
        return len(self.forms)


# --------------------------------------------------------------------------- loading


def _text(data: Mapping[str, Any], key: str, where: str, *, required: bool = True) -> str:
    value = data.get(key)
    if value is None:
        if required:
            raise FormDeclarationError(f"{where} : clé « {key} » manquante")
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise FormDeclarationError(f"{where} : « {key} » doit être un texte non vide")
    return value.strip()


def _flag(data: Mapping[str, Any], key: str, where: str) -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool):
        raise FormDeclarationError(f"{where} : « {key} » doit valoir true ou false")
    return value


def _number(data: Mapping[str, Any], key: str, where: str) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FormDeclarationError(f"{where} : « {key} » doit être un nombre")
    return float(value)


def _choices(raw: Any, where: str) -> tuple[Choice, ...]:
    if not isinstance(raw, list) or not raw:
        raise FormDeclarationError(f"{where} : « choices » doit être une liste non vide")
    out: list[Choice] = []
    for i, item in enumerate(raw):
        if isinstance(item, str) and item.strip():
            out.append(Choice(value=item.strip(), label=item.strip()))
        elif isinstance(item, Mapping):
            value = _text(item, "value", f"{where}.choices[{i}]")
            label = _text(item, "label", f"{where}.choices[{i}]", required=False) or value
            out.append(Choice(value=value, label=label))
        else:
            raise FormDeclarationError(f"{where}.choices[{i}] : choix invalide")
    values = [c.value for c in out]
    if len(set(values)) != len(values):
        raise FormDeclarationError(f"{where} : choix en double")
    return tuple(out)


def _parse_field(raw: Any, where: str) -> FormField:
    if not isinstance(raw, Mapping):
        raise FormDeclarationError(f"{where} : un champ doit être un objet")
    key = _text(raw, "key", where)
    where = f"{where} ({key})"
    if not KEY_RE.match(key):
        raise FormDeclarationError(f"{where} : clé invalide (minuscules, chiffres, _)")
    ftype = _text(raw, "type", where)
    if ftype not in FIELD_TYPES:
        raise FormDeclarationError(
            f"{where} : type « {ftype} » inconnu (attendu : {', '.join(FIELD_TYPES)})"
        )
    known = {
        "key", "label", "type", "required", "help", "choices", "min", "max", "integer",
        "max_length", "past_only", "future_only",
    }  # fmt: skip
    unknown = sorted(set(raw) - known)
    if unknown:
        raise FormDeclarationError(f"{where} : clé(s) inconnue(s) : {', '.join(unknown)}")
    choices: tuple[Choice, ...] = ()
    if ftype in ("choice", "multichoice"):
        choices = _choices(raw.get("choices"), where)
    elif "choices" in raw:
        raise FormDeclarationError(f"{where} : « choices » réservé aux types choice/multichoice")
    minimum, maximum = _number(raw, "min", where), _number(raw, "max", where)
    if (minimum is not None or maximum is not None or "integer" in raw) and ftype != "number":
        raise FormDeclarationError(f"{where} : min/max/integer réservés au type number")
    if minimum is not None and maximum is not None and minimum > maximum:
        raise FormDeclarationError(f"{where} : min est supérieur à max")
    max_length = raw.get("max_length")
    if max_length is not None:
        if ftype not in ("text", "textarea"):
            raise FormDeclarationError(f"{where} : max_length réservé aux textes")
        if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
            raise FormDeclarationError(f"{where} : max_length doit être un entier positif")
    elif ftype in DEFAULT_MAX_LENGTH:
        max_length = DEFAULT_MAX_LENGTH[ftype]
    past_only, future_only = _flag(raw, "past_only", where), _flag(raw, "future_only", where)
    if (past_only or future_only) and ftype != "date":
        raise FormDeclarationError(f"{where} : past_only/future_only réservés au type date")
    if past_only and future_only:
        raise FormDeclarationError(f"{where} : past_only et future_only sont exclusifs")
    return FormField(
        key=key,
        label=_text(raw, "label", where),
        type=ftype,
        required=_flag(raw, "required", where),
        help=_text(raw, "help", where, required=False),
        choices=choices,
        minimum=minimum,
        maximum=maximum,
        integer=_flag(raw, "integer", where),
        max_length=max_length,
        past_only=past_only,
        future_only=future_only,
    )


def parse_form(data: Any, source: str = "<formulaire>") -> FormDefinition:
    """Turn one parsed YAML document into a :class:`FormDefinition` (or raise)."""
    if not isinstance(data, Mapping):
        raise FormDeclarationError(f"{source} : le fichier doit contenir un objet YAML")
    key = _text(data, "key", source)
    if not KEY_RE.match(key):
        raise FormDeclarationError(f"{source} : clé de formulaire invalide « {key} »")
    version = data.get("version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise FormDeclarationError(f"{source} : « version » doit être un entier ≥ 1")
    raw_sections = data.get("sections")
    if not isinstance(raw_sections, list) or not raw_sections:
        raise FormDeclarationError(f"{source} : « sections » doit être une liste non vide")
    sections: list[FormSection] = []
    seen: set[str] = set()
    for i, raw_section in enumerate(raw_sections):
        where = f"{source} : sections[{i}]"
        if not isinstance(raw_section, Mapping):
            raise FormDeclarationError(f"{where} : une section doit être un objet")
        raw_fields = raw_section.get("fields")
        if not isinstance(raw_fields, list) or not raw_fields:
            raise FormDeclarationError(f"{where} : « fields » doit être une liste non vide")
        fields = tuple(_parse_field(f, f"{where}.fields[{j}]") for j, f in enumerate(raw_fields))
        for f in fields:
            if f.key in seen:
                raise FormDeclarationError(f"{source} : champ « {f.key} » déclaré deux fois")
            seen.add(f.key)
        sections.append(FormSection(title=_text(raw_section, "title", where), fields=fields))
    if len(seen) > MAX_FIELDS_PER_FORM:
        raise FormDeclarationError(f"{source} : trop de champs (> {MAX_FIELDS_PER_FORM})")
    return FormDefinition(
        key=key,
        title=_text(data, "title", source),
        version=version,
        sections=tuple(sections),
        description=_text(data, "description", source, required=False),
        source=source,
    )


def load_form(path: Path) -> FormDefinition:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise FormDeclarationError(f"{path.name} : YAML illisible") from exc
    return parse_form(data, source=path.name)


def load_forms(directory: Path) -> FormCatalogue:
    """Load every ``*.yaml`` of ``directory`` (sorted by file name); keys must be unique."""
    forms: list[FormDefinition] = []
    for path in sorted(directory.glob("*.yaml")):
        form = load_form(path)
        if any(f.key == form.key for f in forms):
            raise FormDeclarationError(f"{path.name} : formulaire « {form.key} » déjà déclaré")
        forms.append(form)
    return FormCatalogue(forms=tuple(forms))


# --------------------------------------------------------------------------- answers


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
