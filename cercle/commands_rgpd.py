"""`cercle admin user show|export` and `cercle admin legal publish`: a person's account,
the Documents juridiques they accepted, their data (RGPD), and the current version.

    cercle admin user show <mxid> [--json]
    cercle admin user export <mxid> [--sortie FICHIER.zip]
    cercle admin legal publish <version>
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cercle import rgpd
from cercle.commands_admin import (
    existing_user,
    format_timestamp,
    parse_user_id,
    user_summary,
)
from cercle.commands_demandes import ACTOR
from cercle.context import CliContext, load_context
from cercle.errors import CliError
from deployment.conventions import PARIS
from deployment.profile import ProfileError
from dossier_service.config import config_from_profile
from homeserver import legal
from homeserver.admin_api import AdminApi
from homeserver.render import homeserver_dir


def register_user_commands(user_sub: Any) -> None:
    show = user_sub.add_parser("show", help="fiche d'un compte (documents juridiques acceptés…)")
    show.add_argument("user_id", metavar="mxid")
    show.add_argument("--json", action="store_true", help="un objet JSON")
    show.set_defaults(handler=cmd_show)
    export = user_sub.add_parser("export", help="archive des données de la personne (RGPD)")
    export.add_argument("user_id", metavar="mxid")
    export.add_argument("--sortie", type=Path, default=None, help="fichier .zip à écrire")
    export.set_defaults(handler=cmd_export)


def register_legal(admin_sub: Any) -> None:
    family = admin_sub.add_parser(
        "legal", help="documents juridiques (conditions, confidentialité)"
    )
    sub = family.add_subparsers(dest="legal_command", metavar="action", required=True)
    publish = sub.add_parser("publish", help="rend une version de config/legal/ en vigueur")
    publish.add_argument("version", help="ex. 1.1 (config/legal/1.1.html)")
    publish.set_defaults(handler=cmd_publish)


def consent_of(user: dict[str, Any], current: str) -> dict[str, Any]:
    """What the person accepted (Synapse's consent_version / consent_ts, UTC ms)."""
    ts = user.get("consent_ts")
    return {
        "version_acceptee": user.get("consent_version"),
        "acceptee_le": datetime.fromtimestamp(ts / 1000, UTC).isoformat()
        if isinstance(ts, int) and ts > 0
        else None,
        "version_en_vigueur": current,
    }


def consent_line(consent: dict[str, Any], user: dict[str, Any]) -> str:
    version, current = consent["version_acceptee"], consent["version_en_vigueur"]
    if user.get("user_type") in ("bot", "support"):
        return "dispensé (compte de service)"
    if not version:
        return f"non acceptés (version en vigueur : {current})"
    when = format_timestamp(user.get("consent_ts"))
    late = "" if version == current else f" — à accepter de nouveau (en vigueur : {current})"
    return f"version {version} acceptée le {when} (Paris){late}"


async def _user(ctx: CliContext, user_id: str) -> dict[str, Any]:
    async with AdminApi(ctx.profile.admin_url, ctx.admin_token) as api:
        return await existing_user(api, user_id)


async def cmd_show(args: argparse.Namespace, out: Any = print) -> int:
    ctx = load_context(args.config)
    user_id = parse_user_id(args.user_id, ctx.profile.server_name)
    user = await _user(ctx, user_id)
    consent = consent_of(user, legal.current_version(ctx.profile))
    links = rgpd.directory_rows(ctx.directory_database, user_id).get("lien", [])
    summary = {
        **user_summary(user),
        "documents_juridiques": consent,
        "identifiants_externes": user.get("external_ids") or [],
        "annuaire": links[0]["national_id"] if links else None,
    }
    if args.json:
        out(json.dumps(summary, ensure_ascii=False, indent=2))
        return 0
    state = (
        "désactivé"
        if summary["deactivated"]
        else ("actif" if summary["approved"] else "en attente de validation")
    )
    sso = ", ".join(f"{e['auth_provider']}" for e in summary["identifiants_externes"]) or "—"
    out(f"Compte : {user_id}")
    out(f"Nom affiché : {summary['display_name'] or '—'}")
    out(f"État : {state}{' (admin)' if summary['admin'] else ''}")
    out(f"Créé le : {format_timestamp(user.get('creation_ts'))} (Paris)")
    out(f"Connexion unique : {sso}")
    out(f"Annuaire : {summary['annuaire'] or 'non lié'}")
    out(f"Documents juridiques : {consent_line(consent, user)}")
    return 0


async def cmd_export(args: argparse.Namespace, out: Any = print) -> int:
    ctx = load_context(args.config)
    user_id = parse_user_id(args.user_id, ctx.profile.server_name)
    user = await _user(ctx, user_id)
    now = datetime.now(UTC)
    stamp = now.astimezone(PARIS).strftime("%Y%m%d-%H%M%S")
    target = args.sortie or (
        ctx.profile.var_dir / "rgpd" / f"{user_id[1:].split(':')[0]}-{stamp}.zip"
    )
    dossier_config = config_from_profile(ctx.profile, ctx.secrets)
    directory = ctx.directory_database
    try:
        path = rgpd.build_archive(
            target,
            user_id=user_id,
            actor=ACTOR,
            synapse_config=homeserver_dir(ctx.profile) / "homeserver.yaml",
            dossier=await rgpd.dossier_rows(dossier_config.database_url, user_id),
            directory=rgpd.directory_rows(directory, user_id),
            consent=consent_of(user, legal.current_version(ctx.profile)),
            now=now,
        )
    except rgpd.ExportError as exc:
        raise CliError(str(exc)) from exc
    rgpd.record(
        directory, action="rgpd.export", user_id=user_id, actor=ACTOR, detail={"archive": path.name}
    )
    out(f"Archive des données de {user_id} : {path}")
    out("Elle contient des données personnelles : remettez-la à la personne, puis supprimez-la.")
    return 0


def cmd_publish(args: argparse.Namespace, out: Any = print) -> int:
    ctx = load_context(args.config)
    try:
        published = legal.publish(ctx.profile, args.version, actor=ACTOR)
    except ProfileError as exc:
        raise CliError(str(exc)) from exc
    out(f"Documents juridiques : version {published.version} en vigueur.")
    out(
        "Redémarrez Cercle (« cercle down » puis « cercle up ») pour l'appliquer : chacun "
        "devra l'accepter avant d'écrire de nouveau."
    )
    return 0
