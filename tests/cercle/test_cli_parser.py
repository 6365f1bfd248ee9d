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
