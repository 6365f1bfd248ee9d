"""`cercle admin user …`: accounts of the professionals, through Synapse's Admin API.

    cercle admin user create <identifiant> [--password P | --generate-password] [--admin]
                                           [--display-name "NOM Prénom"]
    cercle admin user list [--json] [--all]
    cercle admin user deactivate <mxid> [--erase]
    cercle admin user reset-password <mxid> [--password P]
    cercle admin user approve <mxid>
    cercle admin user show <mxid> | export <mxid>     (commands_rgpd: consent, RGPD)
    cercle admin legal publish <version>               (commands_rgpd)

Every call goes through `homeserver.admin_api.AdminApi` with the operator's admin token
(kept under var/secrets by `cercle up`). Expected failures are one French line (CliError).
"""

from __future__ import annotations

import argparse
import getpass
import json
import re
import secrets
import sys
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import aiohttp

from cercle.commands_demandes import register_admin as register_demandes
from cercle.context import CliContext, load_context
from cercle.errors import CliError
from deployment.conventions import PARIS
from homeserver.accounts import ADMIN_LOCALPART
from homeserver.admin_api import AdminApi, AdminApiError

# Synapse's rule for new user ids (synapse.types.contains_invalid_mxid_characters).
_LOCALPART = re.compile(r"[a-z0-9._=\-/+]+")
_MAX_USER_ID_LENGTH = 255
# Unambiguous characters (no 0/O, 1/l/I) for passwords read aloud or typed on a phone.
_PASSWORD_ALPHABET = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"

Out = Callable[[str], None]


# --- pure helpers -----------------------------------------------------------------------


def generate_password(groups: int = 4, group_size: int = 5) -> str:
    """E.g. ``k7dQ2-mf9xR-…``: 20 random characters (about 115 bits) in groups of five."""
    return "-".join(
        "".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(group_size))
        for _ in range(groups)
    )


def parse_localpart(value: str, server_name: str) -> str:
    """The localpart of a new account, from ``prenom.nom`` or ``@prenom.nom:serveur``."""
    localpart = value.strip()
    if localpart.startswith("@"):
        localpart, _, server = localpart[1:].partition(":")
        if server != server_name:
            raise CliError(f"identifiant « {value} » : le serveur doit être {server_name}")
    if not localpart:
        raise CliError("identifiant vide")
    if not _LOCALPART.fullmatch(localpart):
        hint = " (en minuscules)" if localpart.lower() != localpart else ""
        raise CliError(
            f"identifiant invalide « {localpart} »{hint} : lettres minuscules, chiffres "
            "et . _ = - / + seulement"
        )
    if len(f"@{localpart}:{server_name}") > _MAX_USER_ID_LENGTH:
        raise CliError(f"identifiant trop long « {localpart} »")
    return localpart


def parse_user_id(value: str, server_name: str) -> str:
    """A full user id from ``@prenom.nom:serveur`` or just ``prenom.nom``."""
    text = value.strip()
    if text.startswith("@"):
        localpart, sep, server = text[1:].partition(":")
        if not localpart or not sep or not server:
            raise CliError(
                f"identifiant Matrix invalide « {value} » (forme @prenom.nom:{server_name})"
            )
        return text
    if not text or ":" in text:
        raise CliError(f"identifiant Matrix invalide « {value} » (forme @prenom.nom:{server_name})")
    return f"@{text}:{server_name}"


def format_timestamp(ms: object) -> str:
    """Synapse's creation_ts (milliseconds, UTC) shown in Europe/Paris."""
    if not isinstance(ms, int) or ms <= 0:
        return "—"
    return datetime.fromtimestamp(ms / 1000, UTC).astimezone(PARIS).strftime("%d/%m/%Y %H:%M")


def user_summary(user: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of a user the operator cares about (also the `--json` shape)."""
    return {
        "user_id": user.get("name"),
        "display_name": user.get("displayname"),
        "admin": bool(user.get("admin")),
        "approved": bool(user.get("approved", True)),
        "deactivated": bool(user.get("deactivated")),
        "created_at": _iso(user.get("creation_ts")),
    }


def _iso(ms: object) -> str | None:
    if not isinstance(ms, int) or ms <= 0:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def format_user_table(users: Iterable[Mapping[str, Any]]) -> str:
    rows = [("IDENTIFIANT", "NOM AFFICHÉ", "ÉTAT", "CRÉÉ LE (Paris)")]
    for user in users:
        summary = user_summary(user)
        state = []
        if summary["admin"]:
            state.append("admin")
        if summary["deactivated"]:
            state.append("désactivé")
        elif not summary["approved"]:
            state.append("en attente de validation")
        else:
            state.append("actif")
        rows.append(
            (
                str(summary["user_id"]),
                str(summary["display_name"] or "—"),
                ", ".join(state),
                format_timestamp(user.get("creation_ts")),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join(
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:3])) + "  " + row[3]
        for row in rows
    )


# --- argparse wiring --------------------------------------------------------------------


def register(subparsers: Any) -> None:
    admin = subparsers.add_parser("admin", help="administration des comptes")
    admin_sub = admin.add_subparsers(dest="admin_family", metavar="famille", required=True)
    register_demandes(admin_sub)  # cercle admin demandes … (account requests, directory)
    user = admin_sub.add_parser("user", help="comptes des professionnels")
    user_sub = user.add_subparsers(dest="user_command", metavar="action", required=True)

    create = user_sub.add_parser("create", help="crée un compte (validé d'office)")
    create.add_argument("localpart", metavar="identifiant", help="ex. prenom.nom")
    secret = create.add_mutually_exclusive_group()
    secret.add_argument("--password", help="mot de passe choisi")
    secret.add_argument(
        "--generate-password", action="store_true", help="génère et affiche un mot de passe"
    )
    create.add_argument("--admin", action="store_true", help="administrateur du serveur")
    create.add_argument("--display-name", help='nom affiché, ex. "DUPONT Marie"')
    create.set_defaults(handler=cmd_create)

    listing = user_sub.add_parser("list", help="liste les comptes")
    listing.add_argument("--json", action="store_true", help="un tableau JSON")
    listing.add_argument("--all", action="store_true", help="y compris les comptes désactivés")
    listing.set_defaults(handler=cmd_list)

    deactivate = user_sub.add_parser("deactivate", help="désactive un compte")
    deactivate.add_argument("user_id", metavar="mxid")
    deactivate.add_argument(
        "--erase", action="store_true", help="efface aussi le profil et les messages (RGPD)"
    )
    deactivate.set_defaults(handler=cmd_deactivate)

    reset = user_sub.add_parser("reset-password", help="nouveau mot de passe (déconnecte tout)")
    reset.add_argument("user_id", metavar="mxid")
    reset.add_argument("--password", help="mot de passe choisi (sinon généré et affiché)")
    reset.set_defaults(handler=cmd_reset_password)

    approve = user_sub.add_parser("approve", help="valide un compte en attente")
    approve.add_argument("user_id", metavar="mxid")
    approve.set_defaults(handler=cmd_approve)

    from cercle.commands_rgpd import register_legal, register_user_commands
    from cercle.commands_sso import register_sso

    register_user_commands(user_sub)  # show, export (RGPD)
    register_legal(admin_sub)  # cercle admin legal publish
    register_sso(admin_sub)  # cercle admin sso icone


def _out(text: str) -> None:
    print(text, flush=True)


def _service_accounts(ctx: CliContext) -> set[str]:
    """The admin account and every account of the bot (one per shard, ``bot.shards``)."""
    return {f"@{ADMIN_LOCALPART}:{ctx.profile.server_name}", *ctx.profile.bot_user_ids}


async def existing_user(api: AdminApi, user_id: str) -> dict[str, Any]:
    user = await api.get_user(user_id)
    if user is None:
        raise CliError(f"utilisateur inconnu : {user_id}")
    return user


# --- handlers ---------------------------------------------------------------------------


async def cmd_create(args: argparse.Namespace, out: Out = _out) -> int:
    ctx = load_context(args.config)
    localpart = parse_localpart(args.localpart, ctx.profile.server_name)
    user_id = f"@{localpart}:{ctx.profile.server_name}"
    password, generated = _password_for_new_account(args)
    async with AdminApi(ctx.profile.admin_url) as api:
        try:
            created = await api.register(
                ctx.secrets.registration_shared_secret,
                localpart,
                password,
                admin=args.admin,
                displayname=args.display_name,
            )
        except AdminApiError as exc:
            if exc.errcode == "M_USER_IN_USE":
                raise CliError(f"l'utilisateur {user_id} existe déjà") from exc
            if exc.errcode == "M_INVALID_USERNAME":
                raise CliError(f"identifiant refusé par le serveur : {localpart}") from exc
            raise
    role = "administrateur" if args.admin else "professionnel"
    out(f"Compte créé ({role}) : {created}")
    if generated:
        out(f"Mot de passe : {password}")
    out(f"Serveur Matrix à indiquer dans Element : {ctx.profile.public_baseurl}")
    return 0


def _password_for_new_account(args: argparse.Namespace) -> tuple[str, bool]:
    """(password, generated): given, generated, or typed twice at the terminal."""
    if args.password is not None:
        if not args.password:
            raise CliError("mot de passe vide")
        return args.password, False
    if args.generate_password:
        return generate_password(), True
    if not sys.stdin.isatty():
        raise CliError("indiquez --password MOT_DE_PASSE ou --generate-password")
    first = getpass.getpass("Mot de passe : ")
    if not first:
        raise CliError("mot de passe vide")
    if first != getpass.getpass("Encore une fois : "):
        raise CliError("les deux mots de passe diffèrent")
    return first, False


async def cmd_list(args: argparse.Namespace, out: Out = _out) -> int:
    ctx = load_context(args.config)
    async with AdminApi(ctx.profile.admin_url, ctx.admin_token) as api:
        # Synapse lists only approved accounts unless asked: fetch both and merge.
        users = await api.all_users(approved=True, deactivated=args.all)
        users += await api.all_users(approved=False, deactivated=args.all)
    users.sort(key=lambda u: str(u.get("name")))
    if args.json:
        out(json.dumps([user_summary(u) for u in users], ensure_ascii=False, indent=2))
    else:
        out(format_user_table(users))
    return 0


async def cmd_deactivate(args: argparse.Namespace, out: Out = _out) -> int:
    ctx = load_context(args.config)
    user_id = parse_user_id(args.user_id, ctx.profile.server_name)
    if user_id in _service_accounts(ctx):
        raise CliError(f"{user_id} est un compte de service de Cercle : il ne se désactive pas")
    async with AdminApi(ctx.profile.admin_url, ctx.admin_token) as api:
        user = await existing_user(api, user_id)
        if user.get("deactivated") and not args.erase:
            out(f"Compte déjà désactivé : {user_id}")
            return 0
        await api.deactivate_user(user_id, erase=args.erase)
    if args.erase:  # RGPD erasure: recorded, and the directory link goes with the account
        from cercle.rgpd import record_erasure

        record_erasure(ctx.directory_database, user_id=user_id, actor="cli")
    out(f"Compte désactivé{' et effacé' if args.erase else ''} : {user_id}")
    if not await end_dossier_sessions(ctx, user_id):
        out(
            "Attention : le dossier est injoignable, ses sessions ouvertes par ce compte "
            "n'ont pas pu être fermées ; relancez cette commande quand Cercle est démarré."
        )
        return 1
    return 0


async def end_dossier_sessions(ctx: CliContext, user_id: str) -> bool:
    """The dossier's sessions end with the Matrix account (False: the dossier is down)."""
    url = f"{ctx.profile.dossier_url}/api/v1/sessions/revoke"
    headers = {"Authorization": f"Bearer {ctx.secrets.dossier_service_token}"}
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                url,
                json={"user_id": user_id},
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=10),
            ) as resp,
        ):
            return resp.status == 200
    except (aiohttp.ClientError, TimeoutError, OSError):
        return False


async def cmd_reset_password(args: argparse.Namespace, out: Out = _out) -> int:
    ctx = load_context(args.config)
    user_id = parse_user_id(args.user_id, ctx.profile.server_name)
    if user_id in _service_accounts(ctx):
        raise CliError(
            f"{user_id} est un compte de service de Cercle : mot de passe géré par Cercle"
        )
    password = args.password if args.password is not None else generate_password()
    if not password:
        raise CliError("mot de passe vide")
    async with AdminApi(ctx.profile.admin_url, ctx.admin_token) as api:
        user = await existing_user(api, user_id)
        if user.get("deactivated"):
            raise CliError(f"compte désactivé : {user_id}")
        await api.reset_password(user_id, password, logout_devices=True)
    out(f"Mot de passe changé pour {user_id} (toutes ses sessions sont déconnectées)")
    if args.password is None:
        out(f"Nouveau mot de passe : {password}")
    return 0


async def cmd_approve(args: argparse.Namespace, out: Out = _out) -> int:
    ctx = load_context(args.config)
    user_id = parse_user_id(args.user_id, ctx.profile.server_name)
    async with AdminApi(ctx.profile.admin_url, ctx.admin_token) as api:
        user = await existing_user(api, user_id)
        if user.get("deactivated"):
            raise CliError(f"compte désactivé : {user_id}")
        if user.get("approved", True):
            out(f"Compte déjà validé : {user_id}")
            return 0
        await api.set_approved(user_id, True)
    out(f"Compte validé : {user_id} (il peut maintenant se connecter)")
    return 0
