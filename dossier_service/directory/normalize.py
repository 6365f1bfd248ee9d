"""Text folding shared by the import and the query parser (pure).

"Béziers" and "beziers", "D'ALMEIDA" and "d'almeida", "Masseur-Kinésithérapeute" and
"masseur kinesitherapeute" must meet: everything is compared after :func:`fold`
(lower case, no accents, ligatures spelled out) and names are split into
:func:`name_tokens` (each part of a compound name, plus the whole name joined).
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_LIGATURES = str.maketrans({"œ": "oe", "æ": "ae", "ß": "ss", "’": "'", "‘": "'", "ʼ": "'"})
_SEPARATORS = re.compile(r"[\s\-'’.,/()]+")
_JOINERS = re.compile(r"[\s\-'’.]+")


@lru_cache(maxsize=4096)
def fold(text: str) -> str:
    """Lower case, accents removed: "Béziers" -> "beziers", "NÎMES" -> "nimes"."""
    text = text.strip().lower().translate(_LIGATURES)
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def joined(text: str) -> str:
    """A folded word with its hyphens, apostrophes and spaces removed:
    "D'ALMEIDA" -> "dalmeida", "Masseur-Kinésithérapeute" -> "masseurkinesitherapeute"."""
    return _JOINERS.sub("", fold(text))


def name_tokens(*names: str) -> list[str]:
    """Searchable tokens of a person's names, in order, without duplicates.

    "GARCIA-LOPEZ" -> garcia, lopez, garcialopez; "D'ALMEIDA" -> d, almeida, dalmeida
    (single letters are dropped: "d" alone would match everyone)."""
    out: list[str] = []
    for name in names:
        folded = fold(name)
        if not folded:
            continue
        parts = [p for p in _SEPARATORS.split(folded) if p]
        for part in parts:
            if len(part) > 1 and part not in out:
                out.append(part)
        whole = "".join(parts)
        if len(parts) > 1 and whole not in out:
            out.append(whole)
    return out


@lru_cache(maxsize=1 << 16)
def pair_tokens(last_name: str, first_name: str) -> tuple[str, ...]:
    """Search keys of a person: each name token followed by the other name, joined.

    "GARCIA-LOPEZ", "JEAN-PIERRE" -> "garcia jeanpierre", "lopez jeanpierre",
    "garcialopez jeanpierre", "jean garcialopez", "pierre garcialopez",
    "jeanpierre garcialopez"."""
    last, first = joined(last_name), joined(first_name)
    out = [f"{t} {first}" for t in name_tokens(last_name)]
    out.extend(f"{t} {last}" for t in name_tokens(first_name))
    return tuple(dict.fromkeys(out))


@lru_cache(maxsize=1 << 16)
def sort_key(nom: str, prenom: str) -> str:
    return f"{joined(nom)} {joined(prenom)}"
