"""Typed client of Synapse's Admin API: the one place that knows its paths and errors.

Every failure becomes an :class:`AdminApiError` whose ``message_fr`` can be shown to an
operator as is, or :class:`HomeserverUnreachable` when nothing answers.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import quote

import aiohttp

_MESSAGES_FR = {
    "M_USER_IN_USE": "cet identifiant est déjà utilisé",
    "M_NOT_FOUND": "utilisateur ou ressource introuvable",
    "M_FORBIDDEN": "accès refusé par le serveur Matrix",
    "M_UNKNOWN_TOKEN": "jeton d'administration invalide ou expiré",
    "M_MISSING_TOKEN": "jeton d'administration manquant",
    "M_INVALID_USERNAME": "identifiant invalide (lettres minuscules, chiffres, . _ = - / uniquement)",
    "M_INVALID_PARAM": "paramètre invalide",
    "M_BAD_JSON": "requête mal formée",
    "M_LIMIT_EXCEEDED": "trop de requêtes, réessayez dans un instant",
    "M_USER_AWAITING_APPROVAL": "compte en attente de validation",
    "ORG.MATRIX.MSC3866_USER_AWAITING_APPROVAL": "compte en attente de validation",
    "M_UNKNOWN": "erreur du serveur Matrix",
}


class AdminApiError(Exception):
    def __init__(self, errcode: str, status: int, message_fr: str) -> None:
        super().__init__(f"{errcode} ({status})")
        self.errcode = errcode
        self.status = status
        self.message_fr = message_fr


class HomeserverUnreachable(AdminApiError):
    def __init__(self, base_url: str) -> None:
        super().__init__(
            "C_UNREACHABLE",
            0,
            f"le serveur Matrix ne répond pas à {base_url} (est-il démarré ? « cercle up »)",
        )


def shared_secret_mac(secret: str, nonce: str, user: str, password: str, admin: bool) -> str:
    """HMAC-SHA1 of the shared-secret registration API (Synapse's documented recipe)."""
    message = b"\x00".join(
        part.encode() for part in (nonce, user, password, "admin" if admin else "notadmin")
    )
    return hmac.new(secret.encode(), message, digestmod=hashlib.sha1).hexdigest()


@dataclass(frozen=True)
class RegisteredUser:
    user_id: str
    access_token: str = field(repr=False)
    device_id: str


def user_path(user_id: str) -> str:
    return quote(user_id, safe="")


class AdminApi:
    """``async with AdminApi(base_url, token) as api: await api.get_user(...)``."""

    def __init__(
        self,
        base_url: str,
        access_token: str | None = None,
        session: aiohttp.ClientSession | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = access_token
        self._own_session = session is None
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def __aenter__(self) -> AdminApi:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    # --- transport ----------------------------------------------------------------
    async def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, str] | None = None,
        auth: bool = True,
        data: bytes | None = None,
        content_type: str | None = None,
    ) -> Any:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        headers = {"Authorization": f"Bearer {self._token}"} if auth and self._token else {}
        if content_type:
            headers["Content-Type"] = content_type
        try:
            async with self._session.request(
                method,
                f"{self.base_url}{path}",
                json=json,
                params=params,
                headers=headers,
                data=data,
            ) as resp:
                try:
                    body = await resp.json(content_type=None)
                except ValueError:
                    body = None
                if resp.status >= 400:
                    errcode = (
                        (body or {}).get("errcode", "M_UNKNOWN")
                        if isinstance(body, dict)
                        else "M_UNKNOWN"
                    )
                    raise AdminApiError(
                        errcode, resp.status, _MESSAGES_FR.get(errcode, _MESSAGES_FR["M_UNKNOWN"])
                    )
                return body
        except (aiohttp.ClientConnectionError, TimeoutError) as exc:
            raise HomeserverUnreachable(self.base_url) from exc

    # --- registration (no token: shared secret) -----------------------------------
    async def register(
        self,
        shared_secret: str,
        localpart: str,
        password: str,
        *,
        admin: bool = False,
        displayname: str | None = None,
    ) -> str:
        """Create an approved account; returns its user id. No device is created (account
        approval is on, so Synapse does not log the account in): log in afterwards."""
        path = "/_synapse/admin/v1/register"
        nonce = (await self._request("GET", path, auth=False))["nonce"]
        body: dict[str, Any] = {
            "nonce": nonce,
            "username": localpart,
            "password": password,
            "admin": admin,
            "mac": shared_secret_mac(shared_secret, nonce, localpart, password, admin),
        }
        if displayname:
            body["displayname"] = displayname
        body["inhibit_login"] = True
        out = await self._request("POST", path, json=body, auth=False)
        return str(out["user_id"])

    async def login(
        self, user_id: str, password: str, device_id: str | None = None
    ) -> RegisteredUser:
        body: dict[str, Any] = {
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": user_id},
            "password": password,
        }
        if device_id:
            body["device_id"] = device_id
        out = await self._request("POST", "/_matrix/client/v3/login", json=body, auth=False)
        return RegisteredUser(out["user_id"], out["access_token"], out["device_id"])

    async def logout(self) -> None:
        """Log out the device of this client's own access token."""
        await self._request("POST", "/_matrix/client/v3/logout", json={})

    # --- users ----------------------------------------------------------------------
    async def whoami(self) -> str:
        return str((await self._request("GET", "/_matrix/client/v3/account/whoami"))["user_id"])

    async def devices(self, user_id: str) -> list[dict[str, Any]]:
        """GET /_synapse/admin/v2/users/<id>/devices (an account never used has none)."""
        body = await self._request("GET", f"/_synapse/admin/v2/users/{user_path(user_id)}/devices")
        return list(body.get("devices") or [])

    async def get_user(self, user_id: str) -> dict[str, Any] | None:
        try:
            return dict(
                await self._request("GET", f"/_synapse/admin/v2/users/{user_path(user_id)}")
            )
        except AdminApiError as exc:
            if exc.errcode == "M_NOT_FOUND" or exc.status == 404:
                return None
            raise

    async def list_users(
        self,
        *,
        approved: bool | None = None,
        deactivated: bool = False,
        limit: int = 100,
        start: str = "0",
    ) -> tuple[list[dict[str, Any]], str | None]:
        params = {
            "from": start,
            "limit": str(limit),
            "guests": "false",
            "deactivated": "true" if deactivated else "false",
        }
        if approved is not None:
            params["approved"] = "true" if approved else "false"
        out = await self._request("GET", "/_synapse/admin/v2/users", params=params)
        return list(out.get("users", [])), out.get("next_token")

    async def all_users(self, **filters: Any) -> list[dict[str, Any]]:
        users: list[dict[str, Any]] = []
        token: str | None = "0"
        while token is not None:
            page, token = await self.list_users(start=token, **filters)
            users.extend(page)
        return users

    async def create_or_modify_user(self, user_id: str, **fields: Any) -> dict[str, Any]:
        """PUT /_synapse/admin/v2/users/<id>: fields such as password, admin, displayname,
        approved, deactivated, external_ids, logout_devices."""
        body = {k: v for k, v in fields.items() if v is not None}
        return dict(
            await self._request("PUT", f"/_synapse/admin/v2/users/{user_path(user_id)}", json=body)
        )

    async def deactivate_user(self, user_id: str, *, erase: bool = False) -> None:
        await self._request(
            "POST", f"/_synapse/admin/v1/deactivate/{user_path(user_id)}", json={"erase": erase}
        )

    async def reset_password(
        self, user_id: str, new_password: str, *, logout_devices: bool = True
    ) -> None:
        await self._request(
            "POST",
            f"/_synapse/admin/v1/reset_password/{user_path(user_id)}",
            json={"new_password": new_password, "logout_devices": logout_devices},
        )

    async def set_approved(self, user_id: str, approved: bool = True) -> None:
        await self.create_or_modify_user(user_id, approved=approved)

    async def upload_media(self, content: bytes, content_type: str, filename: str) -> str:
        """Upload a file to the media repository as the admin; returns its ``mxc://`` URI."""
        body = await self._request(
            "POST",
            "/_matrix/media/v3/upload",
            params={"filename": filename},
            data=content,
            content_type=content_type,
        )
        return str(body["content_uri"])

    async def set_displayname(self, user_id: str, displayname: str) -> None:
        await self.create_or_modify_user(user_id, displayname=displayname)

    async def override_ratelimit(
        self, user_id: str, messages_per_second: int = 0, burst_count: int = 0
    ) -> None:
        """0/0 lifts the message rate limit entirely for this user."""
        await self._request(
            "POST",
            f"/_synapse/admin/v1/users/{user_path(user_id)}/override_ratelimit",
            json={"messages_per_second": messages_per_second, "burst_count": burst_count},
        )

    async def login_as(self, user_id: str) -> str:
        out = await self._request(
            "POST", f"/_synapse/admin/v1/users/{user_path(user_id)}/login", json={}
        )
        return str(out["access_token"])

    # --- rooms ----------------------------------------------------------------------
    async def room_details(self, room_id: str) -> dict[str, Any] | None:
        try:
            return dict(
                await self._request("GET", f"/_synapse/admin/v1/rooms/{quote(room_id, safe='')}")
            )
        except AdminApiError as exc:
            if exc.status == 404:
                return None
            raise

    async def room_state(self, room_id: str) -> list[dict[str, Any]]:
        out = await self._request(
            "GET", f"/_synapse/admin/v1/rooms/{quote(room_id, safe='')}/state"
        )
        return list(out.get("state", []))

    # --- retention (issue 19): Synapse's own room deletion with purge -------------------
    async def delete_room(self, room_id: str) -> str:
        """Start purging a room (history, media references, state); returns the delete id."""
        out = await self._request(
            "DELETE",
            f"/_synapse/admin/v2/rooms/{quote(room_id, safe='')}",
            json={"purge": True, "block": False, "force_purge": True},
        )
        return str(out["delete_id"])

    async def delete_status(self, delete_id: str) -> dict[str, Any]:
        return dict(
            await self._request(
                "GET", f"/_synapse/admin/v2/rooms/delete_status/{quote(delete_id, safe='')}"
            )
        )
