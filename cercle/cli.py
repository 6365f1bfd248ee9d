"""`cercle`: the operator's front door. Thin: it composes the components."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from cercle import commands_admin, commands_annuaire, commands_backup, commands_run
from cercle.errors import CliError
from deployment.profile import ProfileError
from homeserver.admin_api import AdminApiError

# Each family of subcommands lives in its own module exposing register(subparsers).
COMMAND_MODULES = (commands_run, commands_admin, commands_annuaire, commands_backup)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cercle", description="Administration de Cercle")
    parser.add_argument(
        "--config", type=Path, default=None, help="fichier de configuration en plus"
    )
    sub = parser.add_subparsers(dest="command", metavar="commande")
    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    parser = build_parser()
    args = parser.parse_args(argv)
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
        return 1
    except ProfileError as exc:
        print(f"erreur : {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
