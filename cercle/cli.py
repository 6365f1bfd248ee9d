"""`cercle`: the operator's front door. Thin: it composes the components."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from cercle import commands_admin, commands_annuaire, commands_backup, commands_run
from cercle.errors import CliError
from deployment.profile import PROJECT_ROOT, ProfileError, load_profile
from homeserver.admin_api import AdminApiError
from homeserver.render import homeserver_dir

# Each family of subcommands lives in its own module exposing register(subparsers).
COMMAND_MODULES = (commands_run, commands_admin, commands_annuaire, commands_backup)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cercle", description="Administration de Cercle")
    parser.add_argument(
        "--config", type=Path, default=None, help="fichier de configuration en plus"
    )
    parser.add_argument("--profile", default=None, help="profil config/<nom>.yaml (ex. region)")
    sub = parser.add_subparsers(dest="command", metavar="commande")
    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


def _choose_profile(args: argparse.Namespace) -> None:
    """``--profile region`` is ``--config config/region.yaml``; either is handed to every
    child process through ``CERCLE_CONFIG`` (they load the same profile)."""
    profile = getattr(args, "profile", None) or getattr(args, "sub_profile", None)
    if profile:
        if not profile.replace("-", "").replace("_", "").isalnum():
            raise CliError(f"nom de profil invalide : {profile}")
        path = PROJECT_ROOT / "config" / f"{profile}.yaml"
        if not path.exists():
            raise CliError(f"profil inconnu : {profile} (pas de {path})")
        args.config = path
    if args.config is not None:
        os.environ["CERCLE_CONFIG"] = str(Path(args.config).resolve())


def _homeserver_logs() -> str:
    """Where Synapse writes its logs, in words for the operator (the chosen profile's)."""
    where = "les journaux du serveur Matrix"
    try:
        return f"{where} : {homeserver_dir(load_profile())}/*.log"
    except ProfileError:
        return where


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        _choose_profile(args)
    except CliError as exc:
        print(f"erreur : {exc.message}", file=sys.stderr)
        return exc.exit_code
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        result = handler(args)
        if asyncio.iscoroutine(result):
            result = asyncio.run(result)
        return int(result or 0)
    except CliError as exc:
        print(f"erreur : {exc.message}", file=sys.stderr)
        return exc.exit_code
    except AdminApiError as exc:
        print(f"erreur : {exc.message_fr}", file=sys.stderr)
        if exc.status >= 500:  # its cause (e.g. PostgreSQL refusing clients) is in its logs
            print(f"  (HTTP {exc.status}) la cause est dans {_homeserver_logs()}", file=sys.stderr)
        return 1
    except ProfileError as exc:
        print(f"erreur : {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
