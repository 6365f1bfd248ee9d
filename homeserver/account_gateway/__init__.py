"""The account gateway: the only Cercle process that holds the Synapse admin token.

The dossier serves the internet (directory, account requests, activation links); it must
not hold a credential that gives the whole homeserver. Approving a request and activating
the account go through this small local service instead, on a Unix socket under
``var/run`` (no network, 0700 directory), authenticated with its own secret, and it does
only three things, each narrowed by a pure rule:

- say whether an account exists and is active (nothing else about it: the dossier ends
  the sessions of a deactivated account);
- create a new, approved, non-admin account (display name, e-mail, RPPS external id) —
  never modify an existing one;
- set the first password of an account that was never used (no device), non-admin and
  active — never change a password in use.

A compromised dossier can therefore, at worst, create ordinary accounts or activate one
that nobody uses yet; it cannot make an admin, read rooms, take over an account in use or
deactivate anyone.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aiohttp import web

from deployment.local_requests import user_request
from homeserver.admin_api import AdminApi, AdminApiError

log = logging.getLogger(__name__)

SECRET_FILE = "account_gateway_secret"
CREATE_FIELDS = frozenset({"displayname", "approved", "threepids", "external_ids"})


def socket_path(var_dir: Path) -> Path:
    return var_dir / "run" / "account-gateway.sock"


# --- the rules (pure) ----------------------------------------------------------------------
def creation_refusal(existing: Mapping[str, Any] | None, fields: Mapping[str, Any]) -> str | None:
    """Why creating this account is refused, or None."""
    if existing is not None:
        return "ce compte existe déjà : la passerelle ne modifie pas un compte"
    unknown = sorted(set(fields) - CREATE_FIELDS)
    if unknown:
        return f"champ non permis : {', '.join(unknown)}"
    if fields.get("approved") is not True:
        return "un compte créé par la passerelle est validé"
    return None


def password_refusal(user: Mapping[str, Any] | None, devices: list[Any]) -> str | None:
    """Why setting this account's password is refused (only a first password), or None."""
    if user is None:
        return "compte inconnu"
    if user.get("admin"):
        return "compte administrateur : hors de portée de la passerelle"
    if user.get("deactivated"):
        return "compte désactivé"
    if devices:
        return "compte déjà utilisé : son mot de passe ne se change pas ici"
    return None


# --- the service ---------------------------------------------------------------------------
ADMIN_KEY = web.AppKey("gateway_admin", AdminApi)
SECRET_KEY = web.AppKey("gateway_secret", str)
SERVER_KEY = web.AppKey("gateway_server_name", str)


def _refuse(status: int, errcode: str, message: str) -> web.Response:
    return web.json_response({"errcode": errcode, "error": message}, status=status)


async def _body(request: web.Request) -> tuple[str, dict[str, Any]]:
    return await user_request(
        request,
        secret=request.app[SECRET_KEY],
        server_name=request.app[SERVER_KEY],
        user_key="user_id",
    )


async def exists(request: web.Request) -> web.Response:
    user_id, _ = await _body(request)
    user = await request.app[ADMIN_KEY].get_user(user_id)
    active = user is not None and not user.get("deactivated")
    return web.json_response({"exists": user is not None, "active": active})


async def create(request: web.Request) -> web.Response:
    user_id, body = await _body(request)
    fields = body.get("fields")
    if not isinstance(fields, dict):
        raise web.HTTPBadRequest()
    api = request.app[ADMIN_KEY]
    refusal = creation_refusal(await api.get_user(user_id), fields)
    if refusal:
        log.warning("passerelle : création refusée (%s)", refusal)
        return _refuse(403, "M_FORBIDDEN", refusal)
    try:
        await api.create_or_modify_user(user_id, **fields)
    except AdminApiError as exc:
        return _refuse(
            exc.status if 400 <= exc.status < 500 else 502, exc.errcode, "refus du serveur"
        )
    log.info("passerelle : compte créé")
    return web.json_response({})


async def first_password(request: web.Request) -> web.Response:
    user_id, body = await _body(request)
    password = body.get("password")
    if not isinstance(password, str) or not password:
        raise web.HTTPBadRequest()
    api = request.app[ADMIN_KEY]
    user = await api.get_user(user_id)
    refusal = password_refusal(user, await api.devices(user_id) if user else [])
    if refusal:
        log.warning("passerelle : mot de passe refusé (%s)", refusal)
        return _refuse(403, "M_FORBIDDEN", refusal)
    try:
        await api.reset_password(user_id, password, logout_devices=True)
    except AdminApiError as exc:
        return _refuse(
            exc.status if 400 <= exc.status < 500 else 502, exc.errcode, "refus du serveur"
        )
    return web.json_response({})


def create_gateway_app(admin: AdminApi, *, secret: str, server_name: str) -> web.Application:
    app = web.Application(client_max_size=64 * 1024)
    app[ADMIN_KEY] = admin
    app[SECRET_KEY] = secret
    app[SERVER_KEY] = server_name
    app.router.add_post("/comptes/existe", exists)
    app.router.add_post("/comptes/creer", create)
    app.router.add_post("/comptes/premier-mot-de-passe", first_password)
    return app
