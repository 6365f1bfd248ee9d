"""The flags' pure model: state round trip without motif, transitions, room-name markers."""

from __future__ import annotations

import pytest

from bots.commands.text import command_text, is_edit
from bots.flags.model import (
    Flag,
    FlagError,
    FlagKind,
    RoomFlags,
    format_paris,
    name_with_markers,
    strip_markers,
)

T0 = 1_764_090_000_000  # 2025-11-25 17:00 UTC


def test_state_round_trip_holds_who_and_when_only():
    flags = (
        RoomFlags.empty()
        .raise_flag(Flag(FlagKind.URGENT, "@a:s", T0))
        .with_notice(FlagKind.URGENT, "$n")
    )
    flags = flags.raise_flag(Flag(FlagKind.TODO, "@a:s", T0 + 1, assignee="@b:s"))
    state = flags.to_state()
    assert state == {
        "flags": {
            "urgent": {"by": "@a:s", "at": T0, "notice": "$n"},
            "atraiter": {"by": "@a:s", "at": T0 + 1, "assignee": "@b:s"},
        }
    }
    assert RoomFlags.from_state(state) == flags


def test_malformed_state_is_tolerated():
    assert RoomFlags.from_state(None).kinds == ()
    assert RoomFlags.from_state({"flags": {"urgent": {"by": 3}, "other": {}}}).kinds == ()


def test_raise_twice_clear_twice():
    flags = RoomFlags.empty().raise_flag(Flag(FlagKind.REQUEST, "@a:s", T0))
    with pytest.raises(FlagError, match="déjà signalé « demande »"):
        flags.raise_flag(Flag(FlagKind.REQUEST, "@b:s", T0))
    flags, cleared = flags.clear(None)
    assert cleared.kind is FlagKind.REQUEST and flags.kinds == ()
    with pytest.raises(FlagError, match="Aucun signalement en cours"):
        flags.clear(None)
    with pytest.raises(FlagError, match="Aucun signalement « urgence »"):
        flags.clear(FlagKind.URGENT)


def test_clear_without_kind_is_ambiguous_with_two_flags():
    flags = (
        RoomFlags.empty()
        .raise_flag(Flag(FlagKind.REQUEST, "@a:s", T0))
        .raise_flag(Flag(FlagKind.TODO, "@a:s", T0))
    )
    with pytest.raises(FlagError, match=r"Plusieurs signalements en cours \(demande, atraiter\)"):
        flags.clear(None)


def test_acknowledge_by_another_member_once():
    flags = RoomFlags.empty().raise_flag(Flag(FlagKind.URGENT, "@a:s", T0))
    with pytest.raises(FlagError, match="autre membre"):
        flags.acknowledge("@a:s", T0 + 5)
    flags, flag = flags.acknowledge("@b:s", T0 + 5)
    assert (flag.acknowledged_by, flag.acknowledged_at_ms) == ("@b:s", T0 + 5)
    with pytest.raises(FlagError, match="déjà prise en compte par @b:s"):
        flags.acknowledge("@c:s", T0 + 6)
    assert RoomFlags.from_state(flags.to_state()) == flags


def test_markers_are_added_and_removed_without_losing_the_name():
    urgent = RoomFlags.empty().raise_flag(Flag(FlagKind.URGENT, "@a:s", T0))
    both = urgent.raise_flag(Flag(FlagKind.TODO, "@a:s", T0))
    assert name_with_markers("Suivi M. D", urgent) == "🔴 Suivi M. D"
    assert name_with_markers("🔴 Suivi M. D", both) == "🔴 📌 Suivi M. D"
    assert name_with_markers("📌 🔴 Suivi M. D", RoomFlags.empty()) == "Suivi M. D"
    assert strip_markers("🔴Suivi") == "Suivi"  # a marker whose space was deleted by hand
    assert strip_markers("Suivi 🔴") == "Suivi 🔴"  # only leading markers are ours


def test_times_are_shown_in_paris():
    assert format_paris(T0) == "25/11/2025 à 18:00"
    assert format_paris(1_751_374_800_000) == "01/07/2025 à 15:00"  # summer time: UTC+2


def test_command_text_turns_pills_into_user_ids():
    content = {
        "body": "!todo Bob appeler",
        "format": "org.matrix.custom.html",
        "formatted_body": '!todo <a href="https://matrix.to/#/@bob:ex.org">Bob</a> appeler &amp; noter',
    }
    assert command_text(content) == "!todo @bob:ex.org appeler & noter"
    assert command_text({"body": "> <@a:s> avant\n\n!aide"}) == "!aide"
    assert command_text({"body": 3}) == ""
    assert is_edit({"m.relates_to": {"rel_type": "m.replace", "event_id": "$x"}})
    assert not is_edit({"m.relates_to": {"m.in_reply_to": {"event_id": "$x"}}})
