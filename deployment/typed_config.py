"""The one way Cercle reads typed settings, shared by the profile and every component.

A component's configuration (the bot's ``BotConfig``, the mail bridge's ``MailBridgeConfig``,
the dossier's ``DossierConfig``) and every section of the profile (``deployment.settings``)
is a frozen pydantic model deriving from `ConfigModel`: every key declared, an unknown key an
error, the types checked. `validated` builds one and turns pydantic's report into one French
line for the operator, naming the key and where it was written (a file, an environment
variable, a section of the profile); `check_source` does the same for one source of the
profile before the sources are merged, so that the line names the file holding the bad key.

Values are never quoted back: a configuration holds passwords.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, Strict, ValidationError
from pydantic_core import ErrorDetails


class ProfileError(Exception):
    """A configuration problem, worded in French for the operator."""


class ConfigModel(BaseModel):
    """Frozen, every key declared (an unknown one is an error)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def replaced(self, **changes: Any) -> Self:
        """A copy with ``changes``, checked like the original."""
        values = {name: getattr(self, name) for name in type(self).model_fields}
        return type(self).model_validate({**values, **changes})


Model = TypeVar("Model", bound=BaseModel)

# Values as YAML writes them: a number is not a boolean, a boolean is not the text "yes".
PositiveNumber = Annotated[float, Strict(), Field(gt=0)]
Count = Annotated[int, Strict(), Field(ge=0)]
PositiveCount = Annotated[int, Strict(), Field(gt=0)]
Flag = Annotated[bool, Strict()]
Text = Annotated[str, Strict(), Field(min_length=1)]
Port = Annotated[int, Strict(), Field(gt=0, lt=65536)]
HostName = Annotated[str, Strict(), Field(pattern=r"^[^\s/]+$")]


def validated(
    model: type[Model], values: Mapping[str, Any], source: str, prefix: str = ""
) -> Model:
    """``model`` built from ``values``; a `ProfileError` naming the key (under ``prefix``,
    e.g. ``"bot."``) and ``source`` when a value is unknown or of the wrong kind."""
    try:
        return model.model_validate(dict(values))
    except ValidationError as exc:
        raise ProfileError(french(exc.errors(), source, prefix)) from None


def check_source(model: type[BaseModel], values: Mapping[str, Any], source: str) -> None:
    """One source of a merged configuration checked on its own: what it writes must be known
    and well typed; what it leaves out (a required key another source gives) is not judged."""
    try:
        model.model_validate(dict(values))
    except ValidationError as exc:
        errors = [error for error in exc.errors() if error["type"] != "missing"]
        if errors:
            raise ProfileError(french(errors, source)) from None


_REASONS = {
    "missing": "valeur requise",
    "int_type": "un nombre entier est attendu",
    "int_parsing": "un nombre entier est attendu",
    "int_from_float": "un nombre entier est attendu",
    "float_type": "un nombre est attendu",
    "float_parsing": "un nombre est attendu",
    "greater_than": "valeur hors limites",
    "greater_than_equal": "valeur hors limites",
    "less_than": "valeur hors limites",
    "less_than_equal": "valeur hors limites",
    "bool_type": "true ou false attendu",
    "bool_parsing": "true ou false attendu",
    "string_type": "un texte est attendu",
    "string_too_short": "un texte non vide est attendu",
    "string_pattern_mismatch": "forme invalide",
    "list_type": "une liste est attendue",
    "tuple_type": "une liste est attendue",
    "set_type": "une liste est attendue",
    "frozen_set_type": "une liste est attendue",
    "dict_type": "un objet est attendu",
    "mapping_type": "un objet est attendu",
    "model_type": "un objet est attendu",
    "model_attributes_type": "un objet est attendu",
    "dataclass_type": "un objet est attendu",
    "path_type": "un chemin est attendu",
    "union": "valeur d'un type inattendu",
}


def french(errors: list[ErrorDetails], source: str, prefix: str = "") -> str:
    """The first of pydantic's errors as the operator's line: the dotted key, where, why."""
    error = errors[0]
    loc = error["loc"]
    kind = error["type"]
    # a value that fits none of a union's types (e.g. a size: bytes or "50M") is reported
    # once per type, each under a tag named after the type: the key is the part before it
    if (
        kind != "extra_forbidden"
        and len(loc) > 1
        and isinstance(loc[-1], str)
        and any(_same_value_other_type(error, other) for other in errors[1:])
    ):
        loc, kind = loc[:-1], "union"
    key = prefix + ".".join(str(part) for part in loc)
    if kind == "extra_forbidden":
        return f"clé de configuration inconnue : {key} ({source})"
    if kind == "literal_error":
        expected = str((error.get("ctx") or {}).get("expected", "")).replace(" or ", " ou ")
        reason = f"attendu {expected}"
    else:
        reason = _REASONS.get(kind, "valeur invalide")
    return f"valeur de configuration invalide : {key} ({source}) : {reason}"


def _same_value_other_type(error: ErrorDetails, other: ErrorDetails) -> bool:
    """Whether ``other`` judges the same value as ``error`` under another type of a union."""
    return (
        other["input"] is error["input"]
        and other["loc"][:-1] == error["loc"][:-1]
        and isinstance(other["loc"][-1], str)
        and other["loc"][-1] != error["loc"][-1]
    )
