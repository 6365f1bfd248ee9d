"""How a professional is named to people (pure): "NOM Prénom — Profession, Ville"."""

from __future__ import annotations

import re

_PARTS = re.compile(r"([\s\-'’]+)")
_PARTICLES = frozenset(
    {
        "de",
        "du",
        "des",
        "la",
        "le",
        "les",
        "en",
        "sur",
        "sous",
        "lès",
        "lez",
        "et",
        "d",
        "l",
        "aux",
        "au",
    }
)
MAX_DISPLAY_NAME = 200


def title_case(text: str) -> str:
    """ "MARIE-CLAUDE" -> "Marie-Claude", "LE PUY-EN-VELAY" -> "Le Puy-en-Velay"."""
    out = []
    for i, part in enumerate(_PARTS.split(text.strip().lower())):
        if i % 2 == 1 or not part or (i > 0 and part in _PARTICLES):
            out.append(part)
        else:
            out.append(part[0].upper() + part[1:])
    return "".join(out)


def profession_label(profession: str, specialty: str = "") -> str:
    if specialty and specialty.lower() != "médecine générale":
        return f"{profession} ({specialty})"
    if specialty:
        return f"{profession} généraliste"
    return profession


def display_name(
    last_name: str, first_name: str, profession: str, city: str = "", specialty: str = ""
) -> str:
    """Synapse display name of a linked professional: "DUPONT Marie — Infirmier, Toulouse"."""
    who = " ".join(x for x in (last_name.strip().upper(), title_case(first_name)) if x)
    what = profession_label(profession, specialty)
    where = title_case(city) if city else ""
    name = f"{who} — {what}" + (f", {where}" if where else "")
    return name[:MAX_DISPLAY_NAME]
