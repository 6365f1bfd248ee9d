"""One search box -> indexed filters (pure).

"infirmier toulouse", "dup 31", "cardio montpellier", "kiné 34500", "d'almeida":
professions, specialties and modes come from :mod:`vocabulary`, places from a
:class:`Gazetteer` (the communes seen in the imported extract), numbers are postcodes,
départements or identifiers, and whatever remains is a name: every remaining word must be
the beginning of one of the professional's name tokens.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from .normalize import fold, joined
from .vocabulary import MODE_WORDS, PROFESSION_WORDS, SPECIALTY_WORDS, STOPWORDS

MAX_QUERY_LENGTH = 200
MAX_WORDS = 12
_NGRAM = 5
_WORD = re.compile(r"[^\s,;:!?\"«»()\[\]{}<>|*+=]+")
_DEPT = re.compile(r"^(?:[0-9]{2}|2[ab]|97[1-8])$")
_POSTCODE = re.compile(r"^[0-9][0-9ab][0-9]{3}$")
_IDENT = re.compile(r"^[0-9]{8,12}$")
_SAINT = re.compile(r"^(st|ste)(?=[a-z])")


@dataclass(frozen=True, slots=True)
class Commune:
    code: str
    dept: str
    name: str


@dataclass(frozen=True)
class Gazetteer:
    """Places known to the directory: joined city name -> communes, postcode -> communes."""

    cities: Mapping[str, tuple[Commune, ...]] = field(default_factory=dict)
    postcodes: Mapping[str, tuple[Commune, ...]] = field(default_factory=dict)

    def city(self, key: str) -> tuple[Commune, ...]:
        found = self.cities.get(key)
        if found is None and _SAINT.match(key):
            found = self.cities.get(
                _SAINT.sub(lambda m: "saint" if m[1] == "st" else "sainte", key)
            )
        return found or ()


@dataclass(frozen=True, slots=True)
class Place:
    """A place filter: a commune (by name), a postcode or a département."""

    kind: str  # "commune" | "postcode" | "departement"
    label: str
    depts: tuple[str, ...]
    communes: tuple[str, ...] = ()
    postcode: str = ""


@dataclass(frozen=True)
class ParsedQuery:
    names: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()
    identifiers: tuple[str, ...] = ()
    professions: tuple[str, ...] = ()
    specialties: tuple[str, ...] = ()
    modes: tuple[str, ...] = ()
    place: Place | None = None

    @property
    def empty(self) -> bool:
        return not (
            self.names
            or self.emails
            or self.identifiers
            or self.professions
            or self.specialties
            or self.modes
            or self.place
        )


def _add(items: tuple[str, ...], value: str) -> tuple[str, ...]:
    return items if value in items else (*items, value)


def parse_query(
    text: str,
    gazetteer: Gazetteer,
    *,
    profession: str | None = None,
    specialty: str | None = None,
    dept: str | None = None,
    mode: str | None = None,
) -> ParsedQuery:
    """Parse the search box (and the explicit filters of the form / API)."""
    raw = _WORD.findall(text[:MAX_QUERY_LENGTH])[:MAX_WORDS]
    words = [w for w in raw if joined(w)]
    names: list[str] = []
    emails: list[str] = []
    identifiers: list[str] = []
    professions: tuple[str, ...] = (profession,) if profession else ()
    specialties: tuple[str, ...] = (specialty,) if specialty else ()
    modes: tuple[str, ...] = (mode,) if mode else ()
    place: Place | None = Place("departement", dept, (dept,)) if dept else None
    i = 0
    while i < len(words):
        word = words[i]
        key = joined(word)
        if "@" in word:
            emails.append(fold(word).strip("."))
            i += 1
            continue
        if key.isdigit() or _POSTCODE.match(key) or _DEPT.match(key):
            if _POSTCODE.match(key) and not _IDENT.match(key):
                communes = gazetteer.postcodes.get(key, ())
                depts = tuple(sorted({c.dept for c in communes})) or (
                    (key[:3],) if key.startswith("97") else (key[:2].upper(),)
                )
                place = Place("postcode", key, depts, tuple(c.code for c in communes), key)
            elif _DEPT.match(key):
                place = Place("departement", key.upper(), (key.upper(),))
            elif _IDENT.match(key):
                identifiers.append(key)
            i += 1
            continue
        # longest phrase first: "masseur kinésithérapeute", "saint jean de luz"
        matched = False
        for n in range(min(_NGRAM, len(words) - i), 0, -1):
            phrase = "".join(joined(w) for w in words[i : i + n])
            if phrase in SPECIALTY_WORDS:
                specialties = _add(specialties, SPECIALTY_WORDS[phrase])
                professions = _add(professions, "10")
            elif phrase in PROFESSION_WORDS:
                professions = _add(professions, PROFESSION_WORDS[phrase])
            elif phrase in MODE_WORDS:
                modes = _add(modes, MODE_WORDS[phrase])
            elif communes := gazetteer.city(phrase):
                place = Place(
                    "commune",
                    communes[0].name,
                    tuple(sorted({c.dept for c in communes})),
                    tuple(c.code for c in communes),
                )
            else:
                continue
            i += n
            matched = True
            break
        if not matched:
            names.append(key)
            i += 1
    meaningful = [n for n in names if n not in STOPWORDS]
    has_other = bool(emails or identifiers or professions or specialties or modes or place)
    if meaningful or has_other:
        names = meaningful
    return ParsedQuery(
        names=tuple(dict.fromkeys(names)),
        emails=tuple(emails),
        identifiers=tuple(identifiers),
        professions=professions,
        specialties=specialties,
        modes=modes,
        place=place,
    )
