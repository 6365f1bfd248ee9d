"""`cercle admin sso icone <psc|portail> <image>`: the logo Element shows beside a provider.

The image is uploaded to the media repository as the admin; its ``mxc://`` URI is recorded
in ``var/sso_icons.json`` and rendered into ``oidc_providers[].idp_icon`` at the next start.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cercle.context import load_context
from cercle.errors import CliError
from homeserver import sso
from homeserver.admin_api import AdminApi


def register_sso(admin_sub: Any) -> None:
    family = admin_sub.add_parser("sso", help="connexion unique (Pro Santé Connect, portail)")
    sub = family.add_subparsers(dest="sso_command", metavar="action", required=True)
    icon = sub.add_parser("icone", help="logo affiché par Element à côté du fournisseur")
    icon.add_argument("fournisseur", choices=sso.PROVIDER_IDS)
    icon.add_argument("fichier", type=Path, help="image PNG ou JPEG (moins de 1 Mo)")
    icon.set_defaults(handler=cmd_sso_icon)


_IMAGE_TYPES = {b"\x89PNG\r\n\x1a\n": "image/png", b"\xff\xd8\xff": "image/jpeg"}
MAX_ICON_BYTES = 1024 * 1024


async def cmd_sso_icon(args: argparse.Namespace, out: Any = print) -> int:
    ctx = load_context(args.config)
    path: Path = args.fichier
    if not path.is_file():
        raise CliError(f"fichier introuvable : {path}")
    content = path.read_bytes()
    if len(content) > MAX_ICON_BYTES:
        raise CliError(f"image trop lourde ({len(content)} octets, 1 Mo au plus)")
    kind = next((t for magic, t in _IMAGE_TYPES.items() if content.startswith(magic)), None)
    if kind is None:
        raise CliError("format non reconnu : une image PNG ou JPEG est attendue")
    async with AdminApi(ctx.profile.admin_url, ctx.admin_token) as api:
        mxc = await api.upload_media(content, kind, path.name)
    sso.save_icon(ctx.profile, args.fournisseur, mxc)
    out(f"Logo de {args.fournisseur} : {mxc}")
    out("Redémarrez Cercle (« cercle down » puis « cercle up ») pour qu'Element l'affiche.")
    return 0
