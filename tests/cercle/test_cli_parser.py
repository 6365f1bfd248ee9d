"""Every family of subcommands is reachable from the real `cercle` front door."""

import pytest

from cercle.cli import build_parser, main


@pytest.mark.parametrize(
    "argv",
    [
        ["up", "--detach"],
        ["down"],
        ["status", "--json"],
        ["admin", "user", "list"],
        ["admin", "user", "create", "marie.dupont", "--generate-password", "--admin"],
        ["admin", "demandes", "--json"],
        ["admin", "demandes", "refuser", "3", "--motif", "hors région"],
        ["annuaire", "importer", "PS_LibreAcces_Personne_activite_202611250000.txt"],
    ],
)
def test_command_is_known(argv: list[str]) -> None:
    args = build_parser().parse_args(argv)
    assert callable(args.handler)


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "cercle" in capsys.readouterr().out


def test_up_says_only_what_to_do_next(monkeypatch: pytest.MonkeyPatch) -> None:
    """A newcomer reads the URL, how to create the first professional and how to open
    Element — not « Créer le premier administrateur » (the service admin exists)."""
    from types import SimpleNamespace

    monkeypatch.delenv("CERCLE_CONFIG", raising=False)  # the default profile's wording

    from cercle.commands_run import connection_help

    profile = SimpleNamespace(
        public_baseurl="http://127.0.0.1:8008/",
        server_name="cercle.localhost",
        bot_user_id="@cercle-bot:cercle.localhost",
        dossier_url="http://127.0.0.1:8090",
    )
    text = connection_help(SimpleNamespace(profile=profile))  # type: ignore[arg-type]
    assert "administrateur" not in text and "--admin" not in text
    assert "premier professionnel" in text and "Element" in text
    assert text.count("http://127.0.0.1:8008/") == 2 and "!aide" in text
    assert "documents juridiques" in text  # the first message is refused until accepted
    assert "Ctrl-C ici" in text
    # started with --detach the terminal is free: Ctrl-C there stops nothing
    detached = connection_help(SimpleNamespace(profile=profile), detached=True)  # type: ignore[arg-type]
    assert "Ctrl-C" not in detached and "cercle down" in detached
