"""Pure: what the room is told when a member of the circle is out of the conversation other
than by leaving it herself: removed in a client, her invitation declined or withdrawn."""

from __future__ import annotations

from bots.dossier_link.delivery import departure_notice

KINE = {"matrix_user_id": "@kine:x", "display_name": "Léa <Kiné>", "has_access": True}
ENDING = " : « !cercle retirer @kine:x » ici, ou la page Cercle de soins du dossier."


def test_removed_with_access_is_told_to_be_ended_by_the_command_that_does_it() -> None:
    plain, rich = departure_notice(KINE, by="Dr Coord", by_id="@coord:x", was_invited=False)
    assert plain == (
        "ℹ️ Léa <Kiné> a été retiré(e) de la conversation par Dr Coord. Léa <Kiné> reste "
        "habilité(e) sur le dossier du patient. Un coordinateur peut lui retirer l'accès" + ENDING
    )
    assert "Léa &lt;Kiné&gt;" in rich and "<Kiné>" not in rich
    assert '<a href="https://matrix.to/#/@coord:x">Dr Coord</a>.' in rich


def test_a_declined_invitation_names_nobody_else() -> None:
    plain, rich = departure_notice(KINE, by="", by_id=None, was_invited=True)
    assert plain == (
        "ℹ️ Léa <Kiné> a décliné l'invitation dans la conversation. Léa <Kiné> reste "
        "habilité(e) sur le dossier du patient. Un coordinateur peut lui retirer l'accès" + ENDING
    )
    assert "matrix.to" not in rich


def test_a_withdrawn_invitation_names_who_withdrew_it() -> None:
    plain, _ = departure_notice(KINE, by="Dr Coord", by_id="@coord:x", was_invited=True)
    assert plain.startswith(
        "ℹ️ L'invitation de Léa <Kiné> dans la conversation a été retirée par Dr Coord. "
    )


def test_a_member_without_access_is_said_to_stay_in_the_circle_only() -> None:
    plain, _ = departure_notice(
        {"matrix_user_id": "@fils:x", "display_name": "", "has_access": False},
        by="@coord:x",
        by_id="@coord:x",
        was_invited=False,
    )
    assert plain.startswith("ℹ️ @fils:x a été retiré(e)")
    assert (
        "@fils:x reste dans le cercle de soins (sans accès au dossier). Un coordinateur peut l'en retirer"
        in plain
    )


def test_leaving_of_her_own_accord_names_nobody_else() -> None:
    plain, rich = departure_notice(KINE, by="", by_id=None, was_invited=False)
    assert plain == (
        "ℹ️ Léa <Kiné> a quitté la conversation. Léa <Kiné> reste habilité(e) sur le dossier "
        "du patient. Un coordinateur peut lui retirer l'accès" + ENDING
    )
    assert "matrix.to" not in rich
