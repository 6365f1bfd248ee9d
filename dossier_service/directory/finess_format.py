"""The public FINESS establishments extract, "etalab" stock file (pure).

``etalab_cs1100507_stock_<date>.csv``: ISO-8859-1 (Windows-1252 characters seen in practice),
``;``-separated, no header row. The first line is metadata: ``finess;etalab;<n>;<date>``.
Then two sections, one line per row, the section's name in the first field:

- ``structureet``: one establishment (31 fields after the section name, see
  :data:`ESTABLISHMENT_FIELDS`);
- ``geolocalisation``: ``nofinesset;x;y;source;date``, Lambert 93 coordinates of an
  establishment listed above.

Fields are read by position (the file has no header); a line of another width is rejected
and reported, never guessed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date
from typing import NamedTuple

ESTABLISHMENT_FIELDS = (
    "nofinesset",
    "nofinessej",
    "rs",
    "rslongue",
    "complrs",
    "compldistrib",
    "numvoie",
    "typvoie",
    "voie",
    "compvoie",
    "lieuditbp",
    "commune",
    "departement",
    "libdepartement",
    "ligneacheminement",
    "telephone",
    "telecopie",
    "categetab",
    "libcategetab",
    "categagretab",
    "libcategagretab",
    "siret",
    "codeape",
    "codemft",
    "libmft",
    "codesph",
    "libsph",
    "dateouv",
    "dateautor",
    "datemaj",
    "numuai",
)
GEOLOCATION_FIELDS = ("nofinesset", "x", "y", "source", "date")

ESTABLISHMENT = "structureet"
GEOLOCATION = "geolocalisation"

# 9 characters: department (2 digits, or 2A / 2B), then 7 digits
_FINESS = re.compile(r"^[0-9][0-9AB][0-9]{7}$")
_SIRET = re.compile(r"^[0-9]{14}$")
_ACHEMINEMENT = re.compile(r"^([0-9][0-9AB][0-9]{3})\s+(.+)$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Lambert 93 covers metropolitan France; overseas establishments use local projections,
# so only a plausible number is required.
_MAX_COORDINATE = 1e8


class FormatError(ValueError):
    """The file is not a FINESS extract: nothing is imported. Message in French."""


class LineError(ValueError):
    """One malformed line: rejected and reported. Message in French."""


class Extract(NamedTuple):
    """The metadata line."""

    declared_lines: int
    produced_on: date | None


class Establishment(NamedTuple):
    finess: str
    legal_finess: str
    name: str
    long_name: str
    address: str
    postcode: str
    city: str
    commune_code: str
    dept: str
    dept_label: str
    phone: str
    fax: str
    category_code: str
    category: str
    aggregate_code: str
    aggregate: str
    siret: str
    opened_on: str
    updated_on: str


class Geolocation(NamedTuple):
    finess: str
    x: float
    y: float
    source: str


def decode(raw: bytes) -> str:
    """A line of the file as text: Windows-1252 where it is defined, ISO-8859-1 otherwise."""
    try:
        return raw.decode("cp1252")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def read_metadata(line: str) -> Extract:
    fields = line.rstrip("\r\n").lstrip("\ufeff").split(";")
    if (
        len(fields) < 2
        or fields[0].strip().lower() != "finess"
        or fields[1].strip().lower() != "etalab"
    ):
        raise FormatError(
            "Format de fichier inconnu : la première ligne n'est pas « finess;etalab;… » "
            "(extraction FINESS des établissements attendue)."
        )
    declared = int(fields[2]) if len(fields) > 2 and fields[2].strip().isdigit() else 0
    produced = _iso_date(fields[3]) if len(fields) > 3 else None
    return Extract(declared, produced)


def parse_line(line: str) -> Establishment | Geolocation:
    """One data line; :class:`LineError` (French, no content of the line) when malformed."""
    fields = line.rstrip("\r\n").split(";")
    section = fields[0].strip().lower()
    if section == ESTABLISHMENT:
        return establishment(fields[1:])
    if section == GEOLOCATION:
        return geolocation(fields[1:])
    raise LineError("section inconnue (ni « structureet » ni « geolocalisation »)")


def establishment(fields: Sequence[str]) -> Establishment:
    if len(fields) != len(ESTABLISHMENT_FIELDS):
        raise LineError(
            f"structureet : {len(fields)} champs au lieu de {len(ESTABLISHMENT_FIELDS)}"
        )
    f = dict(zip(ESTABLISHMENT_FIELDS, _cleaned(fields), strict=True))
    finess = f["nofinesset"].upper()
    if not _FINESS.match(finess):
        raise LineError("numéro FINESS d'établissement (nofinesset) invalide")
    legal = f["nofinessej"].upper()
    if legal and not _FINESS.match(legal):
        raise LineError("numéro FINESS d'entité juridique (nofinessej) invalide")
    name = f["rs"] or f["rslongue"]
    if not name:
        raise LineError("raison sociale (rs) vide")
    siret = f["siret"] if _SIRET.match(f["siret"]) else ""
    postcode, city = _acheminement(f["ligneacheminement"])
    dept = f["departement"] or finess[:2]
    street = " ".join(x for x in (f["numvoie"], f["compvoie"], f["typvoie"], f["voie"]) if x)
    address = ", ".join(x for x in (f["complrs"], street, f["lieuditbp"]) if x)
    return Establishment(
        finess=finess,
        legal_finess=legal,
        name=name,
        long_name=f["rslongue"] or name,
        address=address,
        postcode=postcode,
        city=city,
        commune_code=f["commune"],
        dept=dept,
        dept_label=f["libdepartement"],
        phone=_phone(f["telephone"]),
        fax=_phone(f["telecopie"]),
        category_code=f["categetab"],
        category=f["libcategetab"],
        aggregate_code=f["categagretab"],
        aggregate=f["libcategagretab"],
        siret=siret,
        opened_on=_iso(f["dateouv"]),
        updated_on=_iso(f["datemaj"]),
    )


def geolocation(fields: Sequence[str]) -> Geolocation:
    if len(fields) != len(GEOLOCATION_FIELDS):
        raise LineError(
            f"geolocalisation : {len(fields)} champs au lieu de {len(GEOLOCATION_FIELDS)}"
        )
    finess = fields[0].strip().upper()
    if not _FINESS.match(finess):
        raise LineError("numéro FINESS (nofinesset) invalide dans la géolocalisation")
    try:
        x, y = float(fields[1]), float(fields[2])
    except ValueError:
        raise LineError("coordonnées de géolocalisation illisibles") from None
    if not (0 <= abs(x) < _MAX_COORDINATE and 0 <= abs(y) < _MAX_COORDINATE):
        raise LineError("coordonnées de géolocalisation hors limites")
    return Geolocation(finess, x, y, _clean(fields[3]))


def _clean(value: str) -> str:
    return _CONTROL.sub("", value).strip()


def _cleaned(fields: Sequence[str]) -> list[str]:
    """Each field without control characters nor surrounding blanks; the usual line has no
    control character at all (``isprintable``), and is only stripped: a third of the
    import's parsing time on 100,000 lines."""
    if all(map(str.isprintable, fields)):
        return [x.strip() for x in fields]
    return [_clean(x) for x in fields]


def _acheminement(line: str) -> tuple[str, str]:
    """``"31059 TOULOUSE CEDEX 9"`` → (``"31059"``, ``"TOULOUSE CEDEX 9"``)."""
    match = _ACHEMINEMENT.match(line)
    if match is None:
        return "", line
    return match.group(1), match.group(2).strip()


def _phone(value: str) -> str:
    digits = "".join(c for c in value if c.isdigit())
    return digits if len(digits) == 10 else ""


def _iso(value: str) -> str:
    parsed = _iso_date(value)
    return parsed.isoformat() if parsed else ""


def _iso_date(value: str) -> date | None:
    value = value.strip()
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None
