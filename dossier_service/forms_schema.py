"""Thematic forms declared as data (``config/forms/*.yaml``): the declarations as pydantic
models, and their loading. Answers are checked by ``form_answers.py``.

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

A wrong declaration stops loading with a French ``FormDeclarationError`` naming the file, the
place (``sections[0].fields[2] (allergies)``) and the problem; unknown keys are errors.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
)
from pydantic import model_validator as checks

FIELD_TYPES = ("text", "textarea", "date", "choice", "multichoice", "bool", "number")
FieldType = Literal["text", "textarea", "date", "choice", "multichoice", "bool", "number"]
KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
DEFAULT_MAX_LENGTH = {"text": 500, "textarea": 10_000}
MAX_FIELDS_PER_FORM = 300
Number = Annotated[float, Field(strict=True)]  # 3 or 2.5; never "3" nor true


class FormDeclarationError(ValueError):
    """A declaration file is wrong; the message (French) names the file and the key."""


class _Declared(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


def _non_empty(value: str) -> str:
    if not value.strip():
        raise ValueError("doit être un texte non vide")
    return value.strip()


Text = Annotated[StrictStr, AfterValidator(_non_empty)]  # stripped, never empty
Stripped = Annotated[StrictStr, AfterValidator(str.strip)]


class Choice(_Declared):
    value: Text
    label: StrictStr = ""

    @checks(mode="before")
    @classmethod
    def _from_word(cls, raw: Any) -> Any:
        if isinstance(raw, str):
            return {"value": raw, "label": raw}
        if not isinstance(raw, Mapping):
            raise ValueError("choix invalide")
        return raw

    @checks(mode="after")
    def _label(self) -> Choice:
        if not self.label.strip():
            object.__setattr__(self, "label", self.value)
        else:
            object.__setattr__(self, "label", self.label.strip())
        return self


class FormField(_Declared):
    key: StrictStr
    label: Text
    type: FieldType
    required: StrictBool = False
    help: Stripped = ""
    choices: tuple[Choice, ...] = ()
    minimum: Number | None = Field(default=None, alias="min")
    maximum: Number | None = Field(default=None, alias="max")
    integer: StrictBool = False
    max_length: StrictInt | None = None
    past_only: StrictBool = False
    future_only: StrictBool = False

    @field_validator("key")
    @classmethod
    def _key(cls, key: str) -> str:
        if not KEY_RE.match(key.strip()):
            raise ValueError("clé invalide (minuscules, chiffres, _)")
        return key.strip()

    @checks(mode="after")
    def _per_type(self) -> FormField:
        kind, given = self.type, self.model_fields_set
        if kind in ("choice", "multichoice"):
            if not self.choices:
                raise ValueError("« choices » doit être une liste non vide")
            values = [c.value for c in self.choices]
            if len(set(values)) != len(values):
                raise ValueError("choix en double")
        elif "choices" in given:
            raise ValueError("« choices » réservé aux types choice/multichoice")
        if given & {"minimum", "maximum", "integer"} and kind != "number":
            raise ValueError("min/max/integer réservés au type number")
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise ValueError("min est supérieur à max")
        if self.max_length is not None:
            if kind not in ("text", "textarea"):
                raise ValueError("max_length réservé aux textes")
            if self.max_length < 1:
                raise ValueError("max_length doit être un entier positif")
        elif kind in DEFAULT_MAX_LENGTH:
            object.__setattr__(self, "max_length", DEFAULT_MAX_LENGTH[kind])
        if (self.past_only or self.future_only) and kind != "date":
            raise ValueError("past_only/future_only réservés au type date")
        if self.past_only and self.future_only:
            raise ValueError("past_only et future_only sont exclusifs")
        return self

    def choice_label(self, value: str) -> str:
        for choice in self.choices:
            if choice.value == value:
                return choice.label
        return value


class FormSection(_Declared):
    title: Text
    fields: tuple[FormField, ...] = Field(min_length=1)


class FormDefinition(_Declared):
    key: StrictStr
    title: Text
    version: StrictInt = Field(default=1, ge=1)
    sections: tuple[FormSection, ...] = Field(min_length=1)
    description: Stripped = ""
    source: str = ""

    @field_validator("key")
    @classmethod
    def _key(cls, key: str) -> str:
        if not KEY_RE.match(key.strip()):
            raise ValueError(f"clé de formulaire invalide « {key} »")
        return key.strip()

    @checks(mode="after")
    def _unique_fields(self) -> FormDefinition:
        seen: set[str] = set()
        for f in self.fields:
            if f.key in seen:
                raise ValueError(f"champ « {f.key} » déclaré deux fois")
            seen.add(f.key)
        if len(seen) > MAX_FIELDS_PER_FORM:
            raise ValueError(f"trop de champs (> {MAX_FIELDS_PER_FORM})")
        return self

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

    def __iter__(self) -> Iterator[FormDefinition]:
        return iter(self.forms)

    def __len__(self) -> int:
        return len(self.forms)


# what pydantic's own checks mean, in the words of the declaration's author
_FRENCH = {
    "missing": "clé « {name} » manquante",
    "extra_forbidden": "clé(s) inconnue(s) : {name}",
    "bool_type": "« {name} » doit valoir true ou false",
    "string_type": "« {name} » doit être un texte non vide",
    "int_type": "« {name} » doit être un entier",
    "float_type": "« {name} » doit être un nombre",
    "greater_than_equal": "« {name} » doit être un entier ≥ 1",
    "too_short": "« {name} » doit être une liste non vide",
    "tuple_type": "« {name} » doit être une liste non vide",
    "model_type": "un élément doit être un objet",
    "literal_error": "type « {value} » inconnu (attendu : " + ", ".join(FIELD_TYPES) + ")",
}
_ALIASES = {"minimum": "min", "maximum": "max"}


def _place(data: Any, loc: Sequence[int | str]) -> tuple[str, str]:
    """``sections[0].fields[2] (allergies)`` and the last key named, from an error's loc."""
    where, node, name = "", data, ""
    for part in loc:
        if isinstance(part, int):
            where += f"[{part}]"
            node = node[part] if isinstance(node, list) and part < len(node) else None
            continue
        named = isinstance(node, Mapping) and isinstance(node.get("key"), str)
        if named and where.endswith("]") and ".fields[" in where:
            where += f" ({node['key']})"
        name = _ALIASES.get(part, part)
        if isinstance(node, Mapping) and isinstance(node.get(name), list | Mapping):
            where += ("." if where else "") + name
            node = node.get(name)
        else:
            break
    return where, name


def _declaration_error(source: str, data: Any, exc: ValidationError) -> FormDeclarationError:
    first = exc.errors()[0]
    where, name = _place(data, [p for p in first["loc"] if not str(p).startswith("function-")])
    kind = first["type"]
    if kind == "value_error":
        message = str(first.get("ctx", {}).get("error", first["msg"]))
    else:
        template = _FRENCH.get(kind, "« {name} » invalide")
        message = template.format(name=name, value=first.get("input"))
    return FormDeclarationError(f"{source} : {where + ' : ' if where else ''}{message}")


def parse_form(data: Any, source: str = "<formulaire>") -> FormDefinition:
    """Turn one parsed YAML document into a :class:`FormDefinition` (or raise)."""
    if not isinstance(data, Mapping):
        raise FormDeclarationError(f"{source} : le fichier doit contenir un objet YAML")
    try:
        return FormDefinition.model_validate({**data, "source": source})
    except ValidationError as exc:
        raise _declaration_error(source, data, exc) from None


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
