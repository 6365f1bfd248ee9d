"""Issue 11: who ``!inviter`` means — pure reading, then resolution against a small directory."""

from __future__ import annotations

import pytest

from bots.commands.invitee import exact_matches, read_invitee, resolve_invitee
from bots.commands.registry import UsageError, UserError

SERVER = "cercle.test"
ACCOUNTS = {
    "@ide.martin:cercle.test": "Claire Martin",
    "@dr.martin:cercle.test": "Claire  martin",
    "@kine.durand:cercle.test": "Paul Durand",
}


async def exists(user_id: str) -> bool:
    return user_id in ACCOUNTS


async def search(term: str) -> list[tuple[str, str | None]]:
    words = term.casefold().split()
    return [(u, n) for u, n in ACCOUNTS.items() if all(w in n.casefold() for w in words)]


def numbered(word: str) -> str:
    return {"1": "@kine.durand:cercle.test"}[word]


async def resolve(text: str) -> str:
    return await resolve_invitee(
        read_invitee(text), server_name=SERVER, exists=exists, search=search, numbered=numbered
    )


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("@ide.martin:cercle.test", "user_id"),
        ("ide.martin", "localpart"),
        ("@ide.martin", "localpart"),
        ("Paul Durand", "name"),
        ("Durand", "name"),
        ("3", "number"),
    ],
)
def test_reading(text: str, kind: str) -> None:
    assert read_invitee(text).kind == kind


def test_reading_refuses_a_broken_id_and_nothing() -> None:
    with pytest.raises(UsageError, match="identifiant Matrix valide"):
        read_invitee("@Ide Martin:cercle.test")
    with pytest.raises(UsageError, match="Indiquez qui inviter"):
        read_invitee("   ")


def test_exact_display_names_ignore_case_and_spaces() -> None:
    found = [("@a:s", "Paul  DURAND"), ("@b:s", "Paul Durandeau"), ("@c:s", None)]
    assert exact_matches("paul durand", found) == [("@a:s", "Paul  DURAND")]


async def test_every_form_resolves_to_one_account() -> None:
    assert await resolve("@kine.durand:cercle.test") == "@kine.durand:cercle.test"
    assert await resolve("kine.durand") == "@kine.durand:cercle.test"
    assert await resolve("Paul Durand") == "@kine.durand:cercle.test"
    assert await resolve("1") == "@kine.durand:cercle.test"


async def test_ambiguous_name_lists_the_candidates_and_unknown_says_so() -> None:
    with pytest.raises(UserError) as exc:
        await resolve("Claire Martin")
    text = str(exc.value)
    assert "Plusieurs comptes" in text
    assert "@ide.martin:cercle.test" in text and "@dr.martin:cercle.test" in text
    with pytest.raises(UserError, match="Aucun compte trouvé pour « Martin »"):
        await resolve("Martin")  # no display name is exactly "Martin"
    with pytest.raises(UserError, match="Aucun compte"):
        await resolve("personne.inconnue")
