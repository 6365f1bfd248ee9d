"""French INS identity rules (pure): INSEE codes, NIR/NIA keys, dates, status transitions.

Statuses (référentiel INS): PROV (provisoire), RECUP (INS récupérée par le téléservice,
identité non vérifiée), VALI (identité vérifiée sur une pièce à haut niveau de confiance),
QUAL (récupérée et vérifiée). The INS number is shown only for QUAL.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date

from deployment.conventions import ToldError

IDENTITY_STATUSES = ("PROV", "RECUP", "VALI", "QUAL")
STATUS_LABELS = {
    "PROV": "Identité provisoire",
    "RECUP": "Identité récupérée",
    "VALI": "Identité validée",
    "QUAL": "Identité qualifiée",
}
ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    "PROV": frozenset({"RECUP", "VALI"}),
    "RECUP": frozenset({"QUAL", "PROV"}),
    "VALI": frozenset({"QUAL", "PROV"}),
    "QUAL": frozenset({"RECUP", "VALI", "PROV"}),
}
SEXES = ("M", "F", "I")
# Identity documents of high trust level accepted to validate an identity.
IDENTITY_DOCUMENTS = (
    "carte nationale d'identité",
    "passeport",
    "titre de séjour",
    "livret de famille",
    "extrait d'acte de naissance",
)

_INSEE = re.compile(r"^(?:\d{2}|2[AB])\d{3}$")
_NIR = re.compile(r"^([1-478])(\d{2})(\d{2})(\d{2}|2A|2B)(\d{3})(\d{3})(\d{2})$")


class IdentityError(ToldError, ValueError):
    """An invalid identity trait; ``field`` names it, the message is for people (French)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def check_insee_code(code: str) -> str:
    """A commune (or ``99xxx`` country) INSEE code: 5 characters, Corsica as 2A / 2B."""
    value = code.strip().upper()
    if not _INSEE.match(value):
        raise IdentityError(
            "birth_insee_code",
            "Le code INSEE du lieu de naissance doit compter 5 caractères "
            "(chiffres, ou 2A / 2B pour la Corse).",
        )
    return value


def nir_key(body13: str) -> int:
    """The 2-digit key of a NIR/NIA: 97 - (number mod 97), Corsica 2A→19, 2B→18."""
    text = body13.upper()
    corsica = {"2A": "19", "2B": "18"}.get(text[5:7])
    if corsica is not None:
        text = text[:5] + corsica + text[7:]
    return 97 - (int(text) % 97)


def check_ins_number(value: str) -> str:
    """A matricule INS (NIR or NIA): 15 characters, valid sex digit, month and key."""
    text = value.replace(" ", "").upper()
    match = _NIR.match(text)
    if not match:
        raise IdentityError(
            "ins_number",
            "Le matricule INS doit compter 15 caractères (13 + clé de 2 chiffres).",
        )
    month = int(match.group(3))
    if not (1 <= month <= 12 or 20 <= month <= 42 or 50 <= month <= 99):
        raise IdentityError("ins_number", "Le mois de naissance du matricule INS est invalide.")
    if nir_key(text[:13]) != int(text[13:]):
        raise IdentityError("ins_number", "La clé du matricule INS est incorrecte.")
    return text


def check_past_date(value: date, field: str, today: date, label: str) -> date:
    if value > today:
        raise IdentityError(field, f"La {label} ne peut pas être dans le futur.")
    if value.year < 1880:
        raise IdentityError(field, f"La {label} est invalide.")
    return value


def check_transition(current: str, new: str) -> None:
    if new not in IDENTITY_STATUSES:
        raise IdentityError("identity_status", "Statut d'identité inconnu.")
    if new != current and new not in ALLOWED_TRANSITIONS[current]:
        raise IdentityError(
            "identity_status",
            f"Passage du statut {current} au statut {new} non autorisé.",
        )


def check_status_requirements(
    status: str,
    *,
    ins_number: str | None,
    identity_document_type: str | None,
    identity_document_date: date | None,
    birth_name: str,
    birth_first_names: Sequence[str],
    birth_date: date | None,
    sex: str | None,
    birth_insee_code: str | None,
) -> None:
    """RECUP/QUAL need the INS number; VALI/QUAL a verified document; all but PROV the traits."""
    if status == "PROV":
        return
    missing = [
        name
        for name, present in (
            ("nom de naissance", bool(birth_name.strip())),
            ("prénoms de naissance", bool(birth_first_names)),
            ("date de naissance", birth_date is not None),
            ("sexe", sex is not None),
            ("lieu de naissance (code INSEE)", birth_insee_code is not None),
        )
        if not present
    ]
    if missing:
        raise IdentityError(
            "identity_status",
            f"Le statut {status} exige les traits d'identité : " + ", ".join(missing) + ".",
        )
    if status in ("RECUP", "QUAL") and not ins_number:
        raise IdentityError("ins_number", f"Le statut {status} exige le matricule INS.")
    if status in ("VALI", "QUAL") and not (identity_document_type and identity_document_date):
        raise IdentityError(
            "identity_document_type",
            f"Le statut {status} exige la pièce d'identité contrôlée (type et date).",
        )
    if status in ("VALI", "QUAL") and identity_document_type not in IDENTITY_DOCUMENTS:
        raise IdentityError(
            "identity_document_type",
            "Ce type de pièce ne permet pas de valider une identité.",
        )


def check_ins_matches(ins_number: str, *, sex: str | None, birth_date: date | None) -> None:
    """The NIR's sex digit and birth year/month must agree with the traits when known."""
    if sex in ("M", "F") and ins_number[0] in "12":
        expected = "1" if sex == "M" else "2"
        if ins_number[0] != expected:
            raise IdentityError("ins_number", "Le matricule INS ne correspond pas au sexe.")
    if birth_date is not None and int(ins_number[1:3]) != birth_date.year % 100:
        raise IdentityError(
            "ins_number", "Le matricule INS ne correspond pas à l'année de naissance."
        )
