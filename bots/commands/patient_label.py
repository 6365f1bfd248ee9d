"""Pure: does a patient room's label look like the patient's identity?

Room names are plaintext on the server (MATRIX_NOTES), so ``!patient nouveau`` asks for a
label that does not identify the patient. This recognises what usually does: a civility
followed by a name (« Mme TEST Jeanne », « Monsieur Dupont »), a surname in capitals next
to a capitalised first name (« DUPONT Jeanne », « Jeanne DUPONT »), a date of birth
(« 12/03/1941 », « 1941-03-12 », « née le … »). Initials (« Mme D. ») are what the help
recommends and are not flagged. The suggestion keeps the civility and the initial only.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from bots.commands.registry import UserError

_CIVILITY = r"(?:mme|madame|mlle|mademoiselle|m\.|mr\.?|monsieur|mr)"
_UPPER_WORD = r"[A-ZÀ-ÖØ-Þ][A-ZÀ-ÖØ-Þ'\-]+"  # DUPONT, LE-GOFF, D'ARC
_CAPITALISED = r"[A-ZÀ-ÖØ-Þ][a-zß-öø-ÿ'\-]+"  # Jeanne, Marie-Claire
_NAME_WORD = rf"(?:{_UPPER_WORD}|{_CAPITALISED})"

_AFTER_CIVILITY = re.compile(rf"(?<!\w)({_CIVILITY})\s+({_NAME_WORD})(?!\.)", re.I)
_SURNAME_FIRST = re.compile(rf"(?<!\w)({_UPPER_WORD})\s+({_CAPITALISED})(?!\w)")
_FIRST_SURNAME = re.compile(rf"(?<!\w)({_CAPITALISED})\s+({_UPPER_WORD})(?!\w)")
_BIRTH = re.compile(
    r"(?<!\d)(?:\d{1,2}[/.\-]\d{1,2}[/.\-](?:19|20)\d{2}|(?:19|20)\d{2}-\d{2}-\d{2})(?!\d)"
    r"|\bn[ée]+(?:\(e\))?\s+(?:le|en)\b",
    re.I,
)
_CIVILITY_ALONE = re.compile(rf"^{_CIVILITY}$", re.I)
# words that start a label without being a name (« Suivi PLAIE » is not « NOM Prénom »)
_COMMON = {"suivi", "dossier", "soins", "patient", "patiente", "salon", "plaie", "pansement"}


@dataclass(frozen=True)
class IdentityHint:
    reasons: tuple[str, ...]
    suggestion: str


def _is_word_common(word: str) -> bool:
    return word.lower() in _COMMON


def identity_hint(label: str) -> IdentityHint | None:
    """None when the label does not look like an identity; else why, and a safer label."""
    reasons: list[str] = []
    civility, surname = "", ""
    found = _AFTER_CIVILITY.search(label)
    if found and not _is_word_common(found.group(2)):
        reasons.append("une civilité suivie d'un nom")
        civility, surname = found.group(1), found.group(2)
    for pattern, surname_at in ((_SURNAME_FIRST, 1), (_FIRST_SURNAME, 2)):
        pair = pattern.search(label)
        if pair and not any(_is_word_common(w) or _CIVILITY_ALONE.match(w) for w in pair.groups()):
            reasons.append("un NOM en capitales à côté d'un prénom")
            surname = surname or pair.group(surname_at)
            break
    if _BIRTH.search(label):
        reasons.append("une date de naissance")
    if not reasons:
        return None
    civility = civility.capitalize() if civility else ""
    if civility.lower() == "madame":
        civility = "Mme"
    elif civility.lower() in ("monsieur", "mr", "mr."):
        civility = "M."
    elif civility.lower() == "mademoiselle":
        civility = "Mlle"
    initial = f"{surname[0].upper()}." if surname else ""
    suggestion = " ".join(filter(None, ["Suivi", civility, initial])) or "Suivi"
    return IdentityHint(tuple(reasons), suggestion)


CONFIRM_WORDS = ("confirmer", "confirm")


def confirmed_label(text: str, prefix: str = "!") -> str:
    """The label to create the room with; UserError asking for confirmation (with a
    suggested label) when it looks like an identity and was not confirmed."""
    first, _, rest = text.strip().partition(" ")
    if first.lower() in CONFIRM_WORDS and rest.strip():
        return rest.strip()
    hint = identity_hint(text)
    if hint is None:
        return text
    why = " et ".join(hint.reasons)
    plain = (
        f"⚠ « {text} » ressemble à l'identité d'un patient ({why}). Le nom d'un salon n'est pas "
        "chiffré : le serveur le voit. Choisissez un libellé qui n'identifie pas le patient, "
        f"par exemple : {prefix}patient nouveau {hint.suggestion}\n"
        f"Pour garder ce libellé malgré tout : {prefix}patient nouveau confirmer {text}"
    )
    rich = (
        f"⚠ « {html.escape(text)} » ressemble à l'identité d'un patient ({html.escape(why)}). "
        "Le nom d'un salon n'est pas chiffré : le serveur le voit. Choisissez un libellé qui "
        "n'identifie pas le patient, par exemple : "
        f"<code>{html.escape(prefix)}patient nouveau {html.escape(hint.suggestion)}</code><br>"
        "Pour garder ce libellé malgré tout : "
        f"<code>{html.escape(prefix)}patient nouveau confirmer {html.escape(text)}</code>"
    )
    raise UserError(plain, rich)
