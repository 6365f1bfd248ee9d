"""The dossier's side of the account gateway: what account approval and activation need
(:class:`dossier_service.directory.account_requests.HomeserverAdmin`), over the gateway's
Unix socket, without any Synapse credential."""

from __future__ import annotations

import json
from pathlib import Path
from types import TracebackType
from typing import Any

import aiohttp

from homeserver.admin_api import AdminApiError


class GatewayClient:
    def __init__(self, socket: Path, secret: str) -> None:
        self._socket = socket
        self._secret = secret
        self._http: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> GatewayClient:
        self._http = aiohttp.ClientSession(
            connector=aiohttp.UnixConnector(path=str(self._socket)),
            timeout=aiohttp.ClientTimeout(total=20),
        )
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._http is not None:
            await self._http.close()

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        assert self._http is not None, "async with GatewayClient(...)"
        try:
            async with self._http.post(
                f"http://passerelle{path}",
                json=body,
                headers={"Authorization": f"Bearer {self._secret}"},
            ) as resp:
                try:
                    data = json.loads(await resp.read() or b"{}")
                except ValueError:
                    data = {}
                data = data if isinstance(data, dict) else {}
                if resp.status >= 400:
                    errcode = str(data.get("errcode") or "M_UNKNOWN")
                    raise AdminApiError(errcode, resp.status, str(data.get("error", "")))
                return data
        except (aiohttp.ClientError, OSError) as exc:
            raise AdminApiError(
                "CERCLE_GATEWAY_UNREACHABLE",
                503,
                "passerelle des comptes injoignable (Cercle est-il démarré ?)",
            ) from exc

    async def get_user(self, user_id: str) -> dict[str, Any] | None:
        found = await self._post("/comptes/existe", {"user_id": user_id})
        return {"name": user_id} if found.get("exists") else None

    async def is_active(self, user_id: str) -> bool:
        """The account exists and is not deactivated."""
        return bool((await self._post("/comptes/existe", {"user_id": user_id})).get("active"))

    async def create_or_modify_user(self, user_id: str, **fields: Any) -> dict[str, Any]:
        return await self._post("/comptes/creer", {"user_id": user_id, "fields": fields})

    async def reset_password(
        self, user_id: str, new_password: str, *, logout_devices: bool = True
    ) -> None:
        await self._post(
            "/comptes/premier-mot-de-passe", {"user_id": user_id, "password": new_password}
        )
