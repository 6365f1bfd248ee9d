"""Pure: reading what a professional typed in the Courriers room.

- ``!courrier à <adresse>[, <adresse>…] objet <objet>`` on the first line, the mail's text
  on the following lines;
- a Matrix reply's own text, without the quoted fallback of the message it answers;
- ``!connecter <adresse> <mot de passe>``;
- ``!classer <patient> [catégorie]``: a known category at the end of the line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bots.commands.registry import UsageError, UserError

_ADDRESS = re.compile(r"^[^@\s<>(),;:\"]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?\.[A-Za-z]{2,}$")
_COMPOSE = re.compile(
    r"^\s*(?:à|a|to)\s+(?P<to>.+?)\s+(?:objet|subject)\s*:?\s+(?P<subject>.+)$", re.I
)


@dataclass(frozen=True)
class Draft:
    to: tuple[str, ...]  # addresses; empty when ``to_words`` must be looked up
    subject: str
    text: str
    to_words: str = ""  # a colleague's name, completed from the directory


MSSANTE_DOMAIN = ".mssante.fr"


def directory_choice(query: str, results: Sequence[Mapping[str, Any]]) -> str:
    """Pure: the one address the directory gives for ``query`` (an MSSanté address first:
    the RPPS extract's practice e-mail), or a French ``UserError`` saying why not."""
    people: list[tuple[str, list[str]]] = []
    for hit in results:
        mails = [
            str(p.get("email")).strip().lower()
            for p in hit.get("exercices") or []
            if isinstance(p, Mapping) and is_address(str(p.get("email") or "").strip())
        ]
        if mails:
            secure = [m for m in mails if m.endswith(MSSANTE_DOMAIN)]
            people.append((str(hit.get("nom_affiche") or ""), list(dict.fromkeys(secure or mails))))
    if not people:
        raise UserError(
            f"Aucune adresse de messagerie trouvée dans l'annuaire pour « {query[:80]} » : "
            "écrivez l'adresse."
        )
    if len(people) > 1 or len(people[0][1]) > 1:
        names = "; ".join(f"{n} : {', '.join(m)}" for n, m in people[:5])
        raise UserError(
            f"Plusieurs adresses possibles pour « {query[:80]} » — {names}. "
            "Écrivez l'adresse voulue."
        )
    return people[0][1][0]


def is_address(text: str) -> bool:
    return bool(_ADDRESS.match(text)) and len(text) <= 254


def addresses(text: str) -> tuple[str, ...]:
    found = tuple(a for a in re.split(r"[\s,;]+", text.strip()) if a)
    bad = [a for a in found if not is_address(a)]
    if bad:
        raise UsageError(f"Adresse invalide : « {bad[0][:80]} ».")
    if not found:
        raise UsageError("Il manque l'adresse du destinataire.")
    return found


def parse_compose(arguments: str, body: str) -> Draft:
    """``arguments``: what follows ``!courrier`` on its line; ``body``: the whole message."""
    match = _COMPOSE.match(arguments.split("\n", 1)[0])
    if match is None:
        raise UsageError("Écrivez « à <adresse> objet <objet> », puis le texte à la ligne.")
    lines = body.split("\n", 1)
    text = lines[1].strip() if len(lines) > 1 else ""
    if not text:
        raise UsageError("Le texte du courrier manque : écrivez-le sous la commande, à la ligne.")
    subject = match.group("subject").strip()[:250]
    to = match.group("to").strip()
    if "@" not in to:  # a name: completed from the directory
        return Draft((), subject, text, to_words=to)
    return Draft(addresses(to), subject, text)


def reply_text(content: Mapping[str, Any]) -> str:
    """A reply's own text: the plain body without its "> " quoted fallback lines."""
    body = content.get("body")
    if not isinstance(body, str):
        return ""
    lines = body.split("\n")
    if lines and lines[0].startswith("> "):
        while lines and lines[0].startswith(">"):
            lines.pop(0)
        while lines and not lines[0].strip():
            lines.pop(0)
    return "\n".join(lines).strip()


def replied_event(content: Mapping[str, Any]) -> str | None:
    relates = content.get("m.relates_to")
    if not isinstance(relates, Mapping):
        return None
    reply = relates.get("m.in_reply_to")
    if isinstance(reply, Mapping) and isinstance(reply.get("event_id"), str):
        return str(reply["event_id"])
    return None


def parse_connect(arguments: str) -> tuple[str, str]:
    parts = arguments.strip().split(None, 1)
    if len(parts) < 2:
        raise UsageError("Il faut l'adresse de la boîte puis son mot de passe.")
    address, password = parts[0], parts[1].strip()
    if not is_address(address):
        raise UsageError(f"Adresse invalide : « {address[:80]} ».")
    return address, password


def split_category(arguments: str, categories: Sequence[str], default: str) -> tuple[str, str]:
    """(patient words, category): the longest known category ending the line, or default."""
    text = " ".join(arguments.split())
    lowered = text.lower()
    for category in sorted(categories, key=len, reverse=True):
        if lowered.endswith(" " + category.lower()):
            return text[: -len(category) - 1].strip(), category
    return text, default
