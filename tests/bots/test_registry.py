"""The command registry's pure side: matching, typed arguments, usage lines, help, access."""

from __future__ import annotations

import pytest

from bots.commands.registry import (
    Choice,
    CommandContext,
    CommandRegistry,
    MatrixUser,
    ParseError,
    Power,
    PowerLevels,
    RoomFacts,
    SubcommandError,
    Text,
    UserError,
    Where,
    access_refusal,
)


async def _noop(ctx, **kw):
    return None


def make_registry() -> CommandRegistry:
    reg = CommandRegistry("!", PowerLevels(flag=0, admin=50))
    reg.command(
        "urgent",
        aliases=("urgence",),
        args=(Text("motif", optional=True, max_length=10, label="le motif"),),
        help="urgence",
    )(_noop)
    reg.command(
        "atraiter",
        aliases=("todo",),
        args=(
            MatrixUser("qui", optional=True),
            Text("motif", optional=True, max_length=50, label="le motif"),
        ),
        help="à traiter",
    )(_noop)
    reg.command(
        "fait",
        aliases=("done",),
        args=(
            Choice(
                "quoi",
                optional=True,
                choices={"urgent": "urgent", "urgence": "urgent", "demande": "demande"},
            ),
        ),
        help="lever",
    )(_noop)
    reg.command(
        "patient",
        subcommand="nouveau",
        sub_aliases=("new",),
        args=(Text("libellé", max_length=20, label="le libellé"),),
        help="créer",
    )(_noop)
    reg.command("inviter", aliases=("invite",), args=(MatrixUser("utilisateur"),), help="inviter")(
        _noop
    )
    return reg


def test_exact_first_word_matching_with_aliases():
    reg = make_registry()
    assert reg.parse("!urgent").command.name == "urgent"
    assert reg.parse("!urgence chute").values == {"motif": "chute"}
    assert reg.parse("!URGENT").command.name == "urgent"  # phones capitalise
    assert reg.parse("!urgentissime") is None
    assert reg.parse("!urg") is None
    assert reg.parse("urgent") is None
    assert reg.parse("! urgent") is None


def test_optional_user_then_text():
    reg = make_registry()
    assert reg.parse("!todo @bob:ex.org appeler").values == {
        "qui": "@bob:ex.org",
        "motif": "appeler",
    }
    assert reg.parse("!atraiter appeler le médecin").values == {
        "qui": None,
        "motif": "appeler le médecin",
    }
    with pytest.raises(ParseError, match="n'est pas un identifiant Matrix valide"):
        reg.parse("!atraiter @bob appeler")


def test_precise_errors_name_the_problem():
    reg = make_registry()
    with pytest.raises(ParseError, match=r"Le motif est trop long : 11 caractères \(maximum 10\)"):
        reg.parse("!urgent " + "x" * 11)
    with pytest.raises(ParseError, match="Il manque le libellé"):
        reg.parse("!patient nouveau")
    with pytest.raises(ParseError, match="Il manque l'identifiant"):
        reg.parse("!inviter")
    with pytest.raises(ParseError, match="Argument en trop : « @c:d »"):
        reg.parse("!inviter @a:b @c:d")
    with pytest.raises(ParseError, match="valeur inconnue ; attendu : demande ou urgent"):
        reg.parse("!fait bientôt")
    with pytest.raises(SubcommandError) as exc:
        reg.parse("!patient supprimer x")
    assert exc.value.usages == ["!patient nouveau <libellé>"]


def test_subcommand_aliases():
    reg = make_registry()
    assert reg.parse("!patient new Plaie").values == {"libellé": "Plaie"}
    assert reg.parse("!patient Nouveau Plaie talon").values == {"libellé": "Plaie talon"}


def test_usage_line_and_generated_help():
    reg = make_registry()
    plain, html = reg.usage_reply(reg.parse("!urgent").command, "Problème.")
    assert plain == "Problème.\nUsage : !urgent [motif]"
    assert "<code>!urgent [motif]</code>" in html
    text, html = reg.help_text()
    assert "• !atraiter [@qui] [motif] — à traiter (en anglais : !todo)" in text
    assert "• !patient nouveau <libellé> — créer (en anglais : !patient new)" in text
    assert "<li><code>!inviter &lt;@utilisateur&gt;</code>" in html
    one, _ = reg.help_text("!done")
    assert one.startswith("• !fait [quoi]")
    unknown, _ = reg.help_text("zzz")
    assert "Commande inconnue" in unknown


def test_duplicate_names_are_refused():
    reg = make_registry()
    with pytest.raises(ValueError):
        reg.command("todo", help="x")(_noop)


def facts(member=True, pl=0, direct=False, patient=True) -> RoomFacts:
    return RoomFacts(
        sender_is_member=member, sender_power_level=pl, is_direct=direct, is_patient_room=patient
    )


def test_access_rules():
    levels = PowerLevels(flag=10, admin=50)
    assert (
        access_refusal(Where.ANYWHERE, Power.MEMBER, facts(member=False), levels)
        == "Commande réservée aux membres de ce salon."
    )
    assert (
        access_refusal(Where.SHARED_ROOM, Power.FLAG, facts(pl=9), levels)
        == "Droits insuffisants : niveau 10 requis dans ce salon."
    )
    assert access_refusal(Where.SHARED_ROOM, Power.FLAG, facts(pl=10), levels) is None
    assert "salon patient" in access_refusal(
        Where.PATIENT_ROOM, Power.ADMIN, facts(pl=100, patient=False), levels
    )
    assert "conversation directe" in access_refusal(Where.DIRECT, Power.MEMBER, facts(), levels)
    assert "pas dans la conversation directe" in access_refusal(
        Where.SHARED_ROOM, Power.FLAG, facts(direct=True, patient=False), levels
    )
    assert access_refusal(Where.PATIENT_ROOM, Power.ADMIN, facts(pl=49), levels) is not None


class Recorder:
    """Collects the replies (a real Replier, not a mock)."""

    def __init__(self) -> None:
        self.replies: list[tuple[str, str | None]] = []

    async def reply(self, plain, html_body=None, mentions=()):
        self.replies.append((plain, html_body))
        return "$reply"


def ctx_for(recorder: Recorder, **facts_kw) -> CommandContext:
    return CommandContext("!r:s", "@a:s", "$e", facts(**facts_kw), recorder)


def registry_failing_with(name: str, error: Exception) -> CommandRegistry:
    """The test registry and a command ``!name`` that raises ``error``."""
    reg = make_registry()

    @reg.command(name, help="x")
    async def fails(ctx):
        raise error

    return reg


async def test_internal_error_is_replied_with_a_reference_and_logged(caplog):
    reg = registry_failing_with("casse", RuntimeError("détail confidentiel"))
    rec = Recorder()
    assert await reg.execute("!casse", ctx_for(rec))
    ((plain, _),) = rec.replies
    assert plain.startswith("Erreur interne (réf. ") and "confidentiel" not in plain
    ref = plain.removeprefix("Erreur interne (réf. ").removesuffix(").")
    assert any(ref in r.getMessage() and r.exc_info for r in caplog.records)


async def test_user_errors_usage_errors_and_non_commands():
    reg = registry_failing_with("refuse", UserError("Pas maintenant."))
    rec = Recorder()
    assert await reg.execute("!refuse", ctx_for(rec))
    assert await reg.execute("!inviter", ctx_for(rec))
    assert await reg.execute("!inconnue", ctx_for(rec))
    assert await reg.execute("!inviter @b:s", ctx_for(rec, member=False))
    assert not await reg.execute("!!!", ctx_for(rec))
    assert not await reg.execute("bonjour", ctx_for(rec))
    assert [p for p, _ in rec.replies] == [
        "Pas maintenant.",
        "Il manque l'identifiant de la personne (forme @nom:serveur).\nUsage : !inviter <@utilisateur>",
        "Commande inconnue : « !inconnue ». Tapez !aide pour la liste.",
        "Commande réservée aux membres de ce salon.",
    ]


def test_help_of_the_real_families_spells_french_names_first():
    """!aide as a nurse reads it: accents in argument names, the French name first and the
    English one in brackets (it was « !flags … (en anglais : !dossiers) »)."""
    from bots.commands import directory as directory_commands
    from bots.commands import flags as flag_commands

    registry = CommandRegistry("!", PowerLevels(flag=0, admin=50))
    flag_commands.register(registry, None, motif_max_length=100)  # type: ignore[arg-type]
    directory_commands.register(registry, search=None)  # type: ignore[arg-type]
    plain, _ = registry.help_text()
    assert "• !trouver <requête> — " in plain and "requete" not in plain
    line = next(x for x in plain.splitlines() if "salons signalés" in x)
    assert line.startswith("• !dossiers — ") and line.endswith("(en anglais : !flags)")
    assert registry.parse("!flags") is not None  # the English name still works


async def test_another_bots_command_is_told_where_it_goes() -> None:
    """!courrier typed to Cercle's bot (a command of the mail bridge): where to type it, not
    « Commande inconnue »; other unknown words keep the usual reply."""
    rec = Recorder()
    reg = CommandRegistry("!", PowerLevels(flag=0, admin=50), elsewhere={"courrier": "ailleurs."})
    assert await reg.execute("!Courrier à x objet y", ctx_for(rec))
    assert await reg.execute("!inconnue", ctx_for(rec))
    assert [p for p, _ in rec.replies] == [
        "« !Courrier » : ailleurs.",
        "Commande inconnue : « !inconnue ». Tapez !aide pour la liste.",
    ]
