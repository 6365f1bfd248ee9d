"""The public RPPS / Annuaire Santé extract "PS_LibreAcces_Personne_activite_<date>.txt" (pure).

UTF-8, '|' separated, a header line, a trailing '|' on every line, one line per
professional x activity. Columns are found by name, never by position (new columns have
been added over the years); only the columns below are read.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from operator import itemgetter
from typing import NamedTuple

COL_ID = "Identification nationale PP"
COL_ID_TYPE = "Type d'identifiant PP"
COL_ID_PP = "Identifiant PP"
COL_CIVILITY = "Libellé civilité d'exercice"
COL_LAST = "Nom d'exercice"
COL_FIRST = "Prénom d'exercice"
COL_PROF_CODE = "Code profession"
COL_PROF = "Libellé profession"
COL_SPEC_CODE = "Code savoir-faire"
COL_SPEC = "Libellé savoir-faire"
COL_MODE_CODE = "Code mode exercice"
COL_MODE = "Libellé mode exercice"
COL_STRUCTURE = "Raison sociale site"
COL_STREET_NO = "Numéro Voie (coord. structure)"
COL_STREET_TYPE = "Libellé type de voie (coord. structure)"
COL_STREET = "Libellé Voie (coord. structure)"
COL_POSTCODE = "Code postal (coord. structure)"
COL_COMMUNE = "Code commune (coord. structure)"
COL_CITY = "Libellé commune (coord. structure)"
COL_PHONE = "Téléphone (coord. structure)"
COL_EMAIL = "Adresse e-mail (coord. structure)"
COL_DEPT = "Code Département (structure)"
COL_SIRET_SITE = "Numéro SIRET site"  # issue 18: a structure's members from their activity
COL_FINESS_SITE = "Numéro FINESS site"

REQUIRED = (COL_ID, COL_LAST, COL_FIRST, COL_PROF_CODE, COL_PROF)
OPTIONAL = (
    COL_ID_TYPE,
    COL_ID_PP,
    COL_CIVILITY,
    COL_SPEC_CODE,
    COL_SPEC,
    COL_MODE_CODE,
    COL_MODE,
    COL_STRUCTURE,
    COL_STREET_NO,
    COL_STREET_TYPE,
    COL_STREET,
    COL_POSTCODE,
    COL_COMMUNE,
    COL_CITY,
    COL_PHONE,
    COL_EMAIL,
    COL_DEPT,
    COL_SIRET_SITE,
    COL_FINESS_SITE,
)

_NATIONAL_ID = re.compile(r"^[0-9][0-9A-Z]{5,19}$")
_POSTCODE = re.compile(r"^[0-9][0-9AB][0-9]{3}$")


class FormatError(ValueError):
    """The file is not an RPPS extract: nothing is imported. Message in French."""


class LineError(ValueError):
    """One malformed line: rejected and reported. Message in French."""


class Activity(NamedTuple):
    specialty_code: str
    specialty: str
    mode_code: str
    mode: str
    structure: str
    address: str
    postcode: str
    commune_code: str
    city: str
    dept: str
    phone: str
    email: str
    siret: str = ""
    finess: str = ""


class PersonLine(NamedTuple):
    """One line of the extract: who, and one of their activities."""

    national_id: str
    id_type: str
    civility: str
    last_name: str
    first_name: str
    profession_code: str
    profession: str
    activity: Activity


class Layout:
    """Column positions found from the header line."""

    def __init__(self, header_line: str) -> None:
        if "|" not in header_line:
            raise FormatError(
                "Format de fichier inconnu : la première ligne n'est pas un en-tête "
                "séparé par des « | » (extrait PS_LibreAcces_Personne_activite attendu)."
            )
        names = header_line.rstrip("\r\n").lstrip("\ufeff").split("|")
        if names and names[-1] == "":
            names.pop()
        self.width = len(names)
        positions = {name.strip(): i for i, name in enumerate(names)}
        missing = [c for c in REQUIRED if c not in positions]
        if missing:
            raise FormatError(
                "Format de fichier inconnu : colonnes manquantes dans l'en-tête : "
                + ", ".join(f"« {c} »" for c in missing)
                + " (extrait PS_LibreAcces_Personne_activite attendu)."
            )
        # a missing optional column reads the empty field appended after the last one
        self._columns = REQUIRED + OPTIONAL
        self._getter = itemgetter(*(positions.get(c, self.width) for c in self._columns))

    def parse(self, line: str) -> PersonLine:
        fields = line.rstrip("\r\n").split("|")
        if len(fields) == self.width + 1 and fields[-1] == "":
            fields[-1] = ""
        elif len(fields) == self.width:
            fields.append("")
        else:
            raise LineError(f"{len(fields) - (fields[-1] == '')} colonnes au lieu de {self.width}")
        return self.person_line(fields)

    def person_line(self, fields: Sequence[str]) -> PersonLine:
        """``fields``: the line's fields plus one empty field at the end."""
        (
            national_id,
            last,
            first,
            profession_code,
            profession,
            id_type,
            _id_pp,
            civility,
            spec_code,
            spec,
            mode_code,
            mode,
            structure,
            street_no,
            street_type,
            street,
            postcode,
            commune,
            city,
            phone,
            email,
            dept,
            siret,
            finess,
        ) = self._getter(fields)
        national_id = national_id.strip()
        if not national_id:
            raise LineError("identifiant national (Identification nationale PP) vide")
        if not _NATIONAL_ID.match(national_id):
            raise LineError("identifiant national (Identification nationale PP) invalide")
        last = last.strip()
        if not last:
            raise LineError("nom d'exercice vide")
        profession_code = profession_code.strip()
        if not profession_code:
            raise LineError("code profession vide")
        if postcode and not _POSTCODE.match(postcode):
            postcode = ""  # foreign or malformed postcode: kept out of the search, not fatal
        dept = dept or (postcode[:3] if postcode[:2] in ("97", "98") else postcode[:2])
        address = " ".join(x for x in (street_no, street_type, street) if x)
        return PersonLine(
            national_id,
            id_type or national_id[0],
            civility,
            last,
            first.strip(),
            profession_code,
            profession,
            Activity(
                spec_code,
                spec,
                mode_code,
                mode,
                structure,
                address,
                postcode,
                commune,
                city,
                dept,
                phone,
                email.lower(),
                siret.strip(),
                finess.strip().upper(),
            ),
        )
