"""`cercle annuaire …`: the directory of professionals.

cercle annuaire importer <fichier> [--json]   import an RPPS extract (progress on stderr)
cercle annuaire importer-finess <fichier> [--json]
                                              import the FINESS establishments extract
cercle annuaire chercher <requête> [--json] [--page N] [--type professionnels|structures]
cercle annuaire lier                          link Matrix accounts (RPPS id / e-mail) and
                                              set their display names
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from cercle.context import load_context
from cercle.errors import CliError

MAX_REJECTS_SHOWN = 20


class ProgressBar:
    """``[#######.............]  35 %  262 Mo / 760 Mo`` on stderr, redrawn in place."""

    def __init__(self, stream: TextIO, width: int = 30) -> None:
        self.stream = stream
        self.width = width
        self.last = -1.0
        self.drawn = 0.0
        self.started = time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        share = done / total if total else 1.0
        now = time.monotonic()
        if done < total and (share - self.last < 0.005 or now - self.drawn < 0.2):
            return
        self.last = share
        self.drawn = now
        filled = int(share * self.width)
        elapsed = time.monotonic() - self.started
        self.stream.write(
            f"\r[{'#' * filled}{'.' * (self.width - filled)}] {share * 100:5.1f} %  "
            f"{done / 1e6:,.1f} Mo / {total / 1e6:,.1f} Mo  {elapsed:5.0f} s"
        )
        if done >= total:
            self.stream.write("\n")
        self.stream.flush()


def cmd_import(args: argparse.Namespace) -> int:
    from dossier_service.config import database_url_of
    from dossier_service.directory.importer import import_extract
    from dossier_service.directory.rpps_format import FormatError

    ctx = load_context(args.config)
    report = _import_file(
        args,
        ctx,
        lambda conn, path, progress: import_extract(
            conn, path, progress=progress, parallel=args.parallel
        ),
        FormatError,
    )
    refreshed = asyncio.run(refresh_memberships(database_url_of(ctx.profile)))
    if args.json:
        print(
            json.dumps(
                {**report.as_dict(), "membres_des_structures": refreshed.as_dict()},
                ensure_ascii=False,
                indent=2,
            )
        )
        return 0
    _print_report(report, as_json=False)
    print(
        f"Membres des structures (RPPS) : {len(refreshed.added)} ajouté(s), "
        f"{len(refreshed.ended)} retiré(s), sur {refreshed.structures} structure(s)."
    )
    return 0


async def refresh_memberships(url: str) -> Any:
    """After an RPPS import: the structures' members from the professionals' activities
    (``structure_refresh``), with the dossier's own database layer."""
    from dossier_service.db import build_database
    from dossier_service.services.structure_refresh import refresh_after_import

    database = build_database(url)
    try:
        return await refresh_after_import(database)
    finally:
        await database.dispose()


def cmd_import_finess(args: argparse.Namespace) -> int:
    from dossier_service.directory.finess_format import FormatError
    from dossier_service.directory.structures import import_finess

    report = _import_file(
        args,
        load_context(args.config),
        lambda conn, path, progress: import_finess(conn, path, progress=progress),
        FormatError,
    )
    return _print_report(report, as_json=args.json)


def _import_file(
    args: argparse.Namespace,
    ctx: Any,
    run: Callable[[Any, Path, ProgressBar | None], Any],
    format_error: type[Exception],
) -> Any:
    """One extract (``args.file``) imported into the directory by ``run``, a progress bar on
    a terminal unless ``--json``; a file that is not such an extract (``format_error``) is
    refused as a CLI error. The import's report."""
    from dossier_service.directory.store import connect

    path = Path(args.file)
    if not path.is_file():
        raise CliError(f"Fichier introuvable : {path}")
    conn = connect(ctx.directory_database)
    progress = (
        None
        if args.json or (not sys.stderr.isatty() and not args.progress)
        else ProgressBar(sys.stderr)
    )
    try:
        return run(conn, path, progress)
    except format_error as exc:
        raise CliError(str(exc)) from exc
    finally:
        conn.close()


def _print_report(report: Any, *, as_json: bool) -> int:
    if as_json:
        print(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
        return 0
    print(f"Import de {report.file_name} : {report.lines} lignes en {report.seconds:.0f} s")
    print(
        f"  ajoutés : {report.added}  mis à jour : {report.updated}  inchangés : "
        f"{report.unchanged}  désactivés : {report.deactivated}  lignes rejetées : "
        f"{report.rejected}"
    )
    for rej in report.rejects[:MAX_REJECTS_SHOWN]:
        print(f"  ligne {rej.number} rejetée : {rej.reason}")
    if report.rejected > MAX_REJECTS_SHOWN:
        print(f"  … et {report.rejected - MAX_REJECTS_SHOWN} autres (--json pour la liste)")
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from dossier_service.directory.search import Directory
    from dossier_service.directory.store import connect

    ctx = load_context(args.config)
    conn = connect(ctx.directory_database)
    if args.type == "structures":
        from dossier_service.directory.structures import search_structures

        try:
            found = search_structures(conn, args.query, page=args.page)
        finally:
            conn.close()
        if args.json:
            print(json.dumps(found.as_json(), ensure_ascii=False, indent=2))
            return 0
        print(f"{found.total} structure(s), page {found.page}")
        for s in found.hits:
            print(f"  {s.finess}  {s.name} — {s.category}, {s.postcode} {s.city}")
        return 0
    try:
        result = Directory(conn).search(args.query, page=args.page)
    finally:
        conn.close()
    if args.json:
        print(json.dumps(result.as_json(), ensure_ascii=False, indent=2))
        return 0
    total = f"plus de {result.total}" if result.more else str(result.total)
    print(f"{total} résultat(s), page {result.page}/{result.pages}")
    for hit in result.hits:
        account = f"  [{hit.mxid}]" if hit.mxid else ""
        print(f"  {hit.national_id}  {hit.display_name}{account}")
    return 0


async def cmd_link(args: argparse.Namespace) -> int:
    from dossier_service.directory.accounts import link_accounts
    from dossier_service.directory.search import Directory
    from dossier_service.directory.store import connect

    ctx = load_context(args.config)
    conn = connect(ctx.directory_database)
    try:
        async with ctx.admin_api() as api:
            report = await link_accounts(conn, Directory(conn), api, actor="cli")
    finally:
        conn.close()
    print(
        f"{len(report.linked)} compte(s) lié(s), {len(report.renamed)} nom(s) affiché(s) "
        f"mis à jour, {report.unmatched} compte(s) sans correspondance."
    )
    for mxid, national_id in report.linked:
        print(f"  {mxid} ↔ {national_id}")
    return 0


def register(subparsers: Any) -> None:
    annuaire = subparsers.add_parser(
        "annuaire", help="annuaire des professionnels (RPPS) et des structures (FINESS)"
    )
    sub = annuaire.add_subparsers(dest="annuaire_command", metavar="action", required=True)
    imp = _import_command(
        sub, "importer", "importe un extrait PS_LibreAcces_Personne_activite", cmd_import
    )
    imp.add_argument(
        "--parallele",
        dest="parallel",
        action="store_true",
        help="lecture dans un second processus (machine peu chargée)",
    )
    _import_command(
        sub,
        "importer-finess",
        "importe l'extraction FINESS des établissements (etalab)",
        cmd_import_finess,
    )
    find = sub.add_parser("chercher", help="recherche dans l'annuaire")
    find.add_argument("query", metavar="requête")
    find.add_argument("--json", action="store_true")
    find.add_argument("--page", type=int, default=1)
    find.add_argument("--type", choices=("professionnels", "structures"), default="professionnels")
    find.set_defaults(handler=cmd_search)
    link = sub.add_parser("lier", help="lie les comptes Matrix aux professionnels de l'annuaire")
    link.set_defaults(handler=cmd_link)


def _import_command(sub: Any, name: str, help_: str, handler: Any) -> Any:
    """An import of an extract file: its report in JSON on demand, its progress bar."""
    command = sub.add_parser(name, help=help_)
    command.add_argument("file", metavar="fichier")
    command.add_argument("--json", action="store_true", help="rapport en JSON")
    command.add_argument(
        "--progress", action="store_true", help="barre de progression même hors terminal"
    )
    command.set_defaults(handler=handler)
    return command
