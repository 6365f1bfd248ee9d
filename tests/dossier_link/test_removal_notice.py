"""Pure: what the room is told when a member of the circle is removed from it in a client."""

from __future__ import annotations

from bots.dossier_link.delivery import removal_notice


def test_a_member_with_access_is_told_to_be_ended_by_the_command_that_does_it() -> None:
    member = {"matrix_user_id": "@kine:x", "display_name": "Léa <Kiné>", "has_access": True}
    plain, rich = removal_notice(member, by="Dr Coord", by_id="@coord:x")
    assert plain == (
        "ℹ️ Léa <Kiné> a été retiré(e) de la conversation par Dr Coord, mais reste habilité(e) "
        "sur le dossier du patient. Pour lui retirer l'accès : « !cercle retirer @kine:x », "
        "ou la page Cercle de soins du dossier."
    )
    assert "Léa &lt;Kiné&gt;" in rich and 'href="https://matrix.to/#/@coord:x"' in rich


def test_a_member_without_access_is_said_to_stay_in_the_circle_only() -> None:
    plain, _ = removal_notice(
        {"matrix_user_id": "@fils:x", "display_name": "", "has_access": False},
        by="@coord:x",
        by_id="@coord:x",
    )
    assert plain.startswith("ℹ️ @fils:x a été retiré(e)")
    assert "reste dans le cercle de soins (sans accès au dossier). Pour l'en retirer" in plain
