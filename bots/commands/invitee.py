"""Who ``!inviter`` means (issue 11): a full Matrix id, a bare localpart of this server, a
display name that matches exactly one account, or the number of a result of the sender's
last ``!trouver``. An ambiguous name lists the candidates; nothing is guessed."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from bots.commands.registry import UsageError, UserError
from deployment.conventions import MATRIX_USER_ID

LOCALPART = re.compile(r"^@?[a-z0-9._=\-/+]+$")
MAX_CANDIDATES = 8


@dataclass(frozen=True)
class Wanted:
    """Pure reading of the argument: what kind of reference it is."""

    kind: str  # "number" | "user_id" | "localpart" | "name"
    text: str


def read_invitee(text: str) -> Wanted:
    words = text.strip()
    if not words:
        raise UsageError(
            "Indiquez qui inviter : @nom:serveur, nom d'utilisateur, nom affiché ou n."
        )
    if words.isdigit():
        return Wanted("number", words)
    if MATRIX_USER_ID.match(words):
        return Wanted("user_id", words)
    if words.startswith("@") and ":" in words:
        raise UsageError(
            f"« {words[:60]} » n'est pas un identifiant Matrix valide (forme @nom:serveur)."
        )
    if LOCALPART.match(words.lower()) and words == words.lower():
        return Wanted("localpart", words.lstrip("@"))
    return Wanted("name", words)


def exact_matches(name: str, found: Sequence[tuple[str, str | None]]) -> list[tuple[str, str]]:
    """Pure: the (user id, display name) whose display name is ``name`` (case and spaces
    ignored)."""
    wanted = " ".join(name.split()).casefold()
    return [
        (user_id, display)
        for user_id, display in found
        if display and " ".join(display.split()).casefold() == wanted
    ]


def candidates_text(name: str, matches: Sequence[tuple[str, str]]) -> str:
    lines = [f"Plusieurs comptes s'appellent « {name[:60]} » ; précisez l'identifiant :"]
    lines += [f"• {display} — {user_id}" for user_id, display in matches[:MAX_CANDIDATES]]
    return "\n".join(lines)


async def resolve_invitee(
    wanted: Wanted,
    *,
    server_name: str,
    exists: Callable[[str], Awaitable[bool]],
    search: Callable[[str], Awaitable[list[tuple[str, str | None]]]],
    numbered: Callable[[str], str],
) -> str:
    """The Matrix id meant by ``wanted`` (UserError, in French, when none or several)."""
    if wanted.kind == "number":
        return numbered(wanted.text)
    if wanted.kind == "user_id":
        return wanted.text
    if wanted.kind == "localpart":
        user_id = f"@{wanted.text}:{server_name}"
        if await exists(user_id):
            return user_id
    matches = exact_matches(wanted.text, await search(wanted.text))
    if len(matches) == 1:
        return matches[0][0]
    if matches:
        raise UserError(candidates_text(wanted.text, matches))
    raise UserError(
        f"Aucun compte trouvé pour « {wanted.text[:60]} » (identifiant, nom d'utilisateur ou "
        "nom affiché exact) ; !trouver cherche dans l'annuaire."
    )
