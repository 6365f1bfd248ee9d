"""`cercle admin demandes …`: account requests from the public page.

    cercle admin demandes [--json] [--statut en_attente|approuvee|refusee|activee]
    cercle admin demandes approuver <id>
    cercle admin demandes refuser <id> --motif "…"

Registered under the shared `admin` command by :func:`register_admin`.
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from typing import Any

from cercle.context import CliContext, load_context
from cercle.errors import CliError
from deployment.conventions import PARIS
from dossier_service.directory.mail import smtp_from_section

ACTOR = "cli"


def _requests(ctx: CliContext) -> Any:
    from dossier_service.directory.account_requests import AccountRequests
    from dossier_service.directory.search import Directory
    from dossier_service.directory.settings import settings_from_section
    from dossier_service.directory.store import connect

    settings = settings_from_section(ctx.profile.settings.annuaire, ctx.profile.var_dir)
    conn = connect(ctx.directory_database)
    return AccountRequests(
        conn,
        Directory(conn),
        server_name=ctx.profile.server_name,
        activation_hours=settings.activation_hours,
    )


def _paris(stamp: str | None) -> str:
    if not stamp:
        return ""
    return datetime.fromisoformat(stamp).astimezone(PARIS).strftime("%d/%m/%Y %H:%M")


def cmd_list(args: argparse.Namespace) -> int:
    ctx = load_context(args.config)
    requests = _requests(ctx)
    try:
        rows = requests.list(args.statut)
    finally:
        requests.conn.close()
    if args.json:
        print(json.dumps([r.as_json() for r in rows], ensure_ascii=False, indent=2))
        return 0
    if not rows:
        print("Aucune demande.")
    for r in rows:
        print(
            f"{r.id:>5}  {_paris(r.created_at)}  {r.status:<10}  {r.last_name.upper()} "
            f"{r.first_name} — {r.profession} ({r.identifier})  annuaire : {r.match}"
            + (f"  compte : {r.mxid}" if r.mxid else "")
            + (f"  motif : {r.refusal_reason}" if r.refusal_reason else "")
        )
    return 0


async def cmd_approve(args: argparse.Namespace) -> int:
    from dossier_service.directory.account_requests import RequestError

    ctx = load_context(args.config)
    requests = _requests(ctx)
    try:
        async with ctx.admin_api() as api:
            approval = await requests.approve(args.id, actor=ACTOR, api=api)
    except RequestError as exc:
        raise CliError(exc.message) from exc
    finally:
        requests.conn.close()
    print(
        f"Demande {approval.request_id} approuvée : compte {approval.mxid} "
        f"(« {approval.display_name} »)."
    )
    print(
        "Lien d'activation (une seule utilisation, valable jusqu'au "
        f"{approval.expires_at.astimezone(PARIS).strftime('%d/%m/%Y %H:%M')}) :"
    )
    print(approval.activation_url(str(ctx.profile.dossier_url)))
    smtp = smtp_from_section((ctx.profile.section("annuaire") or {}).get("smtp"))
    if smtp is not None:
        requests = _requests(ctx)
        try:
            to = requests.email_activation(
                approval, smtp=smtp, public_url=str(ctx.profile.dossier_url), actor=ACTOR
            )
            print(f"Lien envoyé par e-mail à {to}.")
        except OSError as exc:
            raise CliError(
                "Envoi de l'e-mail impossible : transmettez le lien ci-dessus "
                f"({type(exc).__name__})."
            ) from exc
        finally:
            requests.conn.close()
    return 0


def cmd_refuse(args: argparse.Namespace) -> int:
    from dossier_service.directory.account_requests import RequestError

    ctx = load_context(args.config)
    requests = _requests(ctx)
    try:
        requests.refuse(args.id, reason=args.motif, actor=ACTOR)
    except RequestError as exc:
        raise CliError(exc.message) from exc
    finally:
        requests.conn.close()
    print(f"Demande {args.id} refusée.")
    return 0


def register_admin(admin_subparsers: Any) -> None:
    """Attach `demandes` to the shared `cercle admin` sub-command."""
    demandes = admin_subparsers.add_parser("demandes", help="demandes de création de compte")
    demandes.add_argument("--json", action="store_true")
    demandes.add_argument("--statut", choices=["en_attente", "approuvee", "refusee", "activee"])
    demandes.set_defaults(handler=cmd_list)
    sub = demandes.add_subparsers(dest="demandes_command", metavar="action")
    approve = sub.add_parser("approuver", help="crée le compte et donne le lien d'activation")
    approve.add_argument("id", type=int)
    approve.set_defaults(handler=cmd_approve)
    refuse = sub.add_parser("refuser", help="refuse la demande (motif obligatoire)")
    refuse.add_argument("id", type=int)
    refuse.add_argument("--motif", required=True)
    refuse.set_defaults(handler=cmd_refuse)
