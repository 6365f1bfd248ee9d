"""The public "Demander un compte" form: strict validation (pure).

Every field has a length limit and a character set; names and the identifier refuse
markup outright, free-text fields (structure) are kept as typed and always escaped when
shown. Errors are French, per field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from .normalize import fold

_NAME = re.compile(r"^[^\W\d_](?:[^\W\d_]|[ '’\-.])*$")
_IDENT = re.compile(
    r"^(?:[0-9]{11}|[0-9]{9}|[0-9]{2}[0-9AB][0-9]{6}|[0-9]{12}|[0-9][0-9A-B][0-9]{8})$"
)
_EMAIL = re.compile(r"^[A-Za-z0-9._%+\-]{1,64}@[A-Za-z0-9\-]{1,63}(?:\.[A-Za-z0-9\-]{1,63})+$")
_PHONE = re.compile(r"^\+?[0-9 .\-]{6,20}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f<>]")

LIMITS = {
    "nom": 80,
    "prenom": 80,
    "identifiant": 12,
    "profession": 80,
    "structure": 160,
    "email": 254,
    "telephone": 20,
}
LABELS = {
    "nom": "Nom",
    "prenom": "Prénom",
    "identifiant": "N° RPPS ou ADELI",
    "profession": "Profession",
    "structure": "Structure d'exercice",
    "email": "Adresse e-mail",
    "telephone": "Téléphone",
    "consentement": "Acceptation des conditions d'utilisation",
}


@dataclass(frozen=True)
class RequestForm:
    last_name: str
    first_name: str
    identifier: str
    profession: str
    structure: str
    email: str
    phone: str


def validate(form: Mapping[str, str]) -> tuple[RequestForm | None, dict[str, str]]:
    """(the request, {}) when valid, else (None, {field: message})."""
    errors: dict[str, str] = {}
    values: dict[str, str] = {}
    for name, limit in LIMITS.items():
        value = " ".join(str(form.get(name, "") or "").split())
        if name != "structure" and not value:
            errors[name] = f"{LABELS[name]} : champ obligatoire."
        elif len(value) > limit:
            errors[name] = f"{LABELS[name]} : {limit} caractères au maximum."
        elif _CONTROL.search(value):
            errors[name] = (
                f"{LABELS[name]} : caractères non autorisés (< > ou caractères de contrôle)."
            )
        values[name] = value
    for name in ("nom", "prenom"):
        if name not in errors and not _NAME.match(values[name]):
            errors[name] = f"{LABELS[name]} : lettres, espaces, tirets et apostrophes uniquement."
    ident = values["identifiant"].replace(" ", "").upper()
    if "identifiant" not in errors and not _IDENT.match(ident):
        errors["identifiant"] = "N° RPPS ou ADELI : 11 chiffres (RPPS) ou 9 caractères (ADELI)."
    if "profession" not in errors and not _NAME.match(values["profession"]):
        errors["profession"] = "Profession : lettres, espaces et tirets uniquement."
    if "email" not in errors and not _EMAIL.match(values["email"]):
        errors["email"] = "Adresse e-mail invalide."
    if "telephone" not in errors and not _PHONE.match(values["telephone"]):
        errors["telephone"] = "Téléphone invalide (chiffres, espaces, + . -)."
    if str(form.get("consentement", "")) not in ("on", "oui", "1", "true"):
        errors["consentement"] = "Vous devez accepter les conditions d'utilisation."
    if errors:
        return None, errors
    return RequestForm(
        last_name=values["nom"],
        first_name=values["prenom"],
        identifier=ident,
        profession=values["profession"],
        structure=values["structure"],
        email=values["email"].lower(),
        phone=values["telephone"],
    ), {}


def national_ids(identifier: str) -> tuple[str, ...]:
    """Possible "Identification nationale PP" for what a professional typed:
    RPPS (11 digits) -> "8" + RPPS; ADELI (9) -> "0" + ADELI; 12 characters as is."""
    if len(identifier) == 11:
        return ("8" + identifier, identifier)
    if len(identifier) == 9:
        return ("0" + identifier, identifier)
    return (identifier,)


def same_name(a: str, b: str) -> bool:
    def key(s: str) -> str:
        return re.sub(r"[\s\-'’.]+", "", fold(s))

    return key(a) == key(b)
