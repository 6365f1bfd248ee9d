"""What Pro Santé Connect says about a professional, and what Cercle makes of it (pure).

PSC's userinfo carries, besides the OpenID claims, ``SubjectNameID`` (the national
professional id: "8" + RPPS number, "0" + ADELI number…) and ``SubjectRefPro`` (the
professional record: ``exercices`` with ``codeProfession``, ``nomDExercice``,
``prenomDExercice``…). Nothing here knows Synapse or a database: the mapping provider
(`mapping`) reads the directory and hands its entry in, which keeps the rules testable
without a homeserver. Nothing here logs: claims are identity data.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dossier_service.directory.display import display_name
from dossier_service.directory.vocabulary import PROFESSION_LABELS

# "Identification nationale PP": a type digit then the number (RPPS: 8 + 11 digits,
# ADELI: 0 + 9 digits); other registries use letters and digits. Anything else is refused.
_NATIONAL_ID = re.compile(r"[0-9A-Za-z]{8,20}")
RPPS_PREFIX = "8"
RPPS_LENGTH = 12


def is_rpps(national_id: str) -> bool:
    """An RPPS professional (national id "8" + 11 digits): they all have a CPS / e-CPS."""
    return national_id.startswith(RPPS_PREFIX) and len(national_id) == RPPS_LENGTH


class ClaimsRefused(ValueError):
    """The provider's answer cannot open an account; the message is French, for the person
    (Synapse shows it on its SSO error page) and carries no claim value."""


@dataclass(frozen=True)
class Professional:
    """The identity PSC vouches for."""

    national_id: str
    last_name: str
    first_name: str
    profession_code: str

    @property
    def is_rpps(self) -> bool:
        return is_rpps(self.national_id)

    @property
    def profession(self) -> str:
        return PROFESSION_LABELS.get(self.profession_code, "Professionnel de santé")


@dataclass(frozen=True)
class DirectoryEntry:
    """The professional's row in Cercle's directory (from the RPPS extract)."""

    active: bool
    display_name: str
    linked_mxid: str | None


@dataclass(frozen=True)
class Decision:
    """What the account of this person is: its display name, whether it is approved at
    once (MSC3866), and whether it is linked to the directory entry."""

    display_name: str
    approve: bool
    link: bool
    existing_mxid: str | None


MISSING_NATIONAL_ID = (
    "Votre fournisseur d'identité n'a pas transmis votre identifiant national de "
    "professionnel de santé (RPPS/ADELI) : la connexion est refusée. Réessayez avec votre "
    "carte CPS ou l'application e-CPS, ou demandez un compte à l'administrateur de Cercle."
)


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _first_exercise(claims: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = claims.get("SubjectRefPro")
    exercises = ref.get("exercices") if isinstance(ref, Mapping) else None
    if isinstance(exercises, list) and exercises and isinstance(exercises[0], Mapping):
        return exercises[0]
    return {}


def national_id_of(claims: Mapping[str, Any], claim: str = "SubjectNameID") -> str:
    """The national professional id, or `ClaimsRefused` if it is missing or malformed."""
    value = claims.get(claim)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    text = _text(value)
    if not _NATIONAL_ID.fullmatch(text):
        raise ClaimsRefused(MISSING_NATIONAL_ID)
    return text


def professional_of(claims: Mapping[str, Any], claim: str = "SubjectNameID") -> Professional:
    """The professional described by PSC's claims (exercise names win over civil names:
    they are the ones of the RPPS, which the directory shows)."""
    exercise = _first_exercise(claims)
    last = _text(exercise.get("nomDExercice")) or _text(claims.get("family_name"))
    first = _text(exercise.get("prenomDExercice")) or _text(claims.get("given_name"))
    return Professional(
        national_id=national_id_of(claims, claim),
        last_name=last,
        first_name=first,
        profession_code=_text(exercise.get("codeProfession")),
    )


def decide(person: Professional, entry: DirectoryEntry | None) -> Decision:
    """The directory's name when the person is in it; approved at once only for an active
    RPPS entry (an ADELI number or someone absent from the extract waits for an admin)."""
    if entry is None:
        name = display_name(person.last_name, person.first_name, person.profession)
        return Decision(name or person.national_id, approve=False, link=False, existing_mxid=None)
    return Decision(
        entry.display_name,
        approve=entry.active and person.is_rpps,
        link=True,
        existing_mxid=entry.linked_mxid,
    )
