"""The dossier's side of the bridge's control socket (``bridges.mail.control``): aiohttp and
JSON only, so the dossier imports nothing else of the bridge (as it imports only the
account gateway's client)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiohttp

from deployment.conventions import ToldError

SECRET_FILE = "mail_bridge_control_secret"  # under var/secrets, shared by both ends


def control_socket_path(var_dir: Path) -> Path:
    return var_dir / "run" / "mail-bridge.sock"


def bridge_enabled(profile: Any) -> bool:
    """Whether the profile turns the bridge on (``mail_bridge.enabled: true``)."""
    section = profile.data.get("mail_bridge")
    return isinstance(section, Mapping) and section.get("enabled") is True


class CourriersRefused(ToldError):
    """The bridge refused (French message for the professional)."""


class CourriersUnavailable(ToldError):
    """The bridge cannot be reached (not started, or an internal error: a reference)."""


class MailBridgeClient:
    def __init__(self, socket: Path, secret: str, *, timeout: float = 120.0) -> None:
        self._socket = socket
        self._secret = secret
        self._timeout = timeout

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            async with (
                aiohttp.ClientSession(
                    connector=aiohttp.UnixConnector(path=str(self._socket)),
                    timeout=aiohttp.ClientTimeout(total=self._timeout),
                ) as http,
                http.post(
                    f"http://courriers{path}",
                    json=body,
                    headers={"Authorization": f"Bearer {self._secret}"},
                ) as resp,
            ):
                try:
                    data = json.loads(await resp.read() or b"{}")
                except ValueError:
                    data = {}
                data = data if isinstance(data, dict) else {}
                if resp.status == 409:
                    raise CourriersRefused(str(data.get("error") or "Demande refusée."))
                if resp.status >= 400:
                    raise CourriersUnavailable(
                        str(data.get("error") or "")
                        or f"Le pont Courriers a refusé ({resp.status})."
                    )
                return data
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise CourriersUnavailable(
                "Le pont Courriers ne répond pas (est-il démarré ?). Réessayez dans un instant."
            ) from exc

    async def mailbox(self, owner: str) -> dict[str, Any]:
        return await self._post("/boite", {"owner": owner})

    async def connect(
        self, owner: str, address: str, password: str, servers: dict[str, Any] | None = None
    ) -> str:
        """``servers``: imap_host, imap_port, smtp_host, smtp_port, smtp_security (her own,
        among those the operator allows), or None for the operator's."""
        body: dict[str, Any] = {"owner": owner, "address": address, "password": password}
        if servers is not None:
            body["servers"] = servers
        return str((await self._post("/boite/connecter", body)).get("room_id", ""))

    async def disconnect(self, owner: str) -> bool:
        return bool((await self._post("/boite/deconnecter", {"owner": owner})).get("disconnected"))

    async def recent(self, owner: str, limit: int = 20) -> list[dict[str, Any]]:
        mails = (await self._post("/courriers", {"owner": owner, "limit": limit})).get("mails")
        return [m for m in mails if isinstance(m, dict)] if isinstance(mails, list) else []

    async def file(
        self, owner: str, *, event_id: str, patient: str, category: str, key: str
    ) -> dict[str, Any]:
        return await self._post(
            "/courriers/classer",
            {
                "owner": owner,
                "event_id": event_id,
                "patient": patient,
                "category": category,
                "key": key,
            },
        )
