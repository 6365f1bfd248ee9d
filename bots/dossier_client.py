"""The bot's only door to the dossier service: a typed async client.

It authenticates with the bot's service token (``Secrets.dossier_service_token``), says on
whose behalf it acts (the Matrix user who typed the command) and sends an idempotency key
with every write, so a write repeated after a crash or a retry is applied once.

Failures are Matrix-shaped: the dossier answers ``{"errcode", "error"}``; a refusal (4xx)
raises ``Refused(errcode, error, status)``, an unreachable or failing dossier (network
error, timeout, 5xx, 429) raises ``Unavailable`` — the outbox retries those.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp

from bots.outbox import Refused, Unavailable

log = logging.getLogger(__name__)

ON_BEHALF_HEADER = "X-Cercle-On-Behalf-Of"
IDEMPOTENCY_HEADER = "Idempotency-Key"
SOURCE_HEADER = "X-Cercle-Source"  # "matrix": the write relays a conversation event


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    total: int | None = None


class DossierClient:
    """One aiohttp session; ``close()`` when done. Paths are the dossier's ``/api/v1``."""

    def __init__(
        self,
        base_url: str,
        service_token: str,
        *,
        timeout_seconds: float = 15.0,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = service_token
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._session = session
        self._own_session = session is None

    async def close(self) -> None:
        if self._session is not None and self._own_session:
            await self._session.close()
        self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
            self._own_session = True
        return self._session

    def patient_page_url(self, patient_id: str) -> str:
        """The file's page (what the notices link to): only the pseudonymous id in it."""
        return f"{self.base_url}/patients/{quote(patient_id, safe='')}"

    def widget_url(self, patient_id: str) -> str:
        """The file's page framed in Element (``$matrix_widget_id`` is filled in by Element)."""
        return f"{self.patient_page_url(patient_id)}?widget=1&widgetId=$matrix_widget_id"

    # -- transport --
    async def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        data: Any = None,
        actor: str | None = None,
        key: str | None = None,
        allow_404: bool = False,
        from_matrix: bool = False,
    ) -> Any:
        headers = {"Authorization": f"Bearer {self._token}", "Accept": "application/json"}
        if actor:
            headers[ON_BEHALF_HEADER] = actor
        if key:
            headers[IDEMPOTENCY_HEADER] = key
        if from_matrix:
            headers[SOURCE_HEADER] = "matrix"
        url = f"{self.base_url}/api/v1{path}"
        try:
            async with self._http().request(
                method,
                url,
                json=dict(json_body) if json_body is not None else None,
                params={k: str(v) for k, v in (params or {}).items() if v is not None},
                data=data,
                headers=headers,
                timeout=self._timeout,
            ) as resp:
                raw = await resp.read()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise Unavailable("CERCLE_DOSSIER_UNREACHABLE") from exc
        if status >= 500 or status == 429:
            raise Unavailable(f"CERCLE_DOSSIER_{status}")
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
        if status == 404 and allow_404:
            return None
        if status >= 400:
            errcode, error = "M_UNKNOWN", ""
            if isinstance(body, Mapping):
                errcode = str(body.get("errcode") or errcode)
                error = str(body.get("error") or "")
            raise Refused(errcode, error, status)
        return body

    # -- event feed --
    async def events(self, after: int, limit: int = 100) -> list[dict[str, Any]]:
        """Outbox events with ``seq > after``, oldest first."""
        body = await self.request("GET", "/events", params={"after": after, "limit": limit})
        return list(_items(body, "events"))

    # -- patients --
    async def create_patient(
        self,
        *,
        room_id: str | None,
        label: str,
        coordinator: str | None,
        coordinator_name: str | None = None,
        patient_id: str | None = None,
        key: str,
    ) -> dict[str, Any]:
        """Open a file; ``patient_id``: the pseudonymous id the room already carries."""
        body: dict[str, Any] = {"label": label}
        if patient_id:
            body["id"] = patient_id
        if room_id:
            body["room_id"] = room_id
        if coordinator:
            body["coordinator"] = coordinator
        if coordinator_name:
            body["coordinator_name"] = coordinator_name
        out = await self.request("POST", "/patients", json_body=body, actor=coordinator, key=key)
        return _unwrap(out, "patient") or {}

    async def get_file(self, patient_id: str) -> dict[str, Any] | None:
        """The whole file (``patient``, ``circle``, ``documents``, ``notebook``, ``tasks`` …)."""
        body = await self.request("GET", f"/patients/{_q(patient_id)}", allow_404=True)
        return dict(body) if isinstance(body, Mapping) else None

    async def get_patient(self, patient_id: str) -> dict[str, Any] | None:
        body = await self.get_file(patient_id)
        return _unwrap(body, "patient")

    async def patient_by_room(self, room_id: str) -> dict[str, Any] | None:
        body = await self.request("GET", "/patients", params={"room_id": room_id, "limit": 1})
        items = list(_items(body, "patients"))
        return items[0] if items else None

    async def link_room(
        self, patient_id: str, room_id: str, *, actor: str | None, key: str
    ) -> dict[str, Any]:
        body = await self.request(
            "PUT",
            f"/patients/{_q(patient_id)}/room",
            json_body={"room_id": room_id},
            actor=actor,
            key=key,
        )
        return dict(body or {})

    # -- care circle --
    async def circle(self, patient_id: str, *, include_ended: bool = False) -> list[dict[str, Any]]:
        params = {"include_ended": "true"} if include_ended else None
        body = await self.request("GET", f"/patients/{_q(patient_id)}/circle", params=params)
        return list(_items(body, "members"))

    async def add_circle_member(
        self, patient_id: str, member: Mapping[str, Any], *, actor: str | None, key: str
    ) -> dict[str, Any]:
        body = await self.request(
            "POST", f"/patients/{_q(patient_id)}/circle", json_body=member, actor=actor, key=key
        )
        return _unwrap(body, "member") or {}

    async def end_circle_member(
        self, patient_id: str, member_id: str, *, actor: str | None, key: str
    ) -> dict[str, Any]:
        body = await self.request(
            "POST",
            f"/patients/{_q(patient_id)}/circle/{_q(member_id)}/end",
            json_body={},
            actor=actor,
            key=key,
        )
        return _unwrap(body, "member") or {}

    async def mark_left_room(
        self,
        patient_id: str,
        user_id: str,
        *,
        removed_by: str | None = None,
        was_invited: bool = False,
        key: str,
    ) -> dict[str, Any]:
        """``{"member": …}``: her place in the circle (None when she has none)."""
        body = await self.request(
            "POST",
            f"/patients/{_q(patient_id)}/circle/left-room",
            json_body={
                "matrix_user_id": user_id,
                "removed_by": removed_by,
                "was_invited": was_invited,
            },
            key=key,
        )
        return dict(body or {})

    async def mark_back_in_room(self, patient_id: str, user_id: str, *, key: str) -> dict[str, Any]:
        body = await self.request(
            "POST",
            f"/patients/{_q(patient_id)}/circle/back-in-room",
            json_body={"matrix_user_id": user_id},
            key=key,
        )
        return dict(body or {})

    # -- liaison notebook --
    async def add_notebook_entry(
        self,
        patient_id: str,
        *,
        kind: str,
        text: str,
        actor: str | None,
        key: str,
        from_matrix: bool = True,
    ) -> dict[str, Any]:
        body = await self.request(
            "POST",
            f"/patients/{_q(patient_id)}/notebook",
            json_body={"kind": kind, "text": text},
            actor=actor,
            key=key,
            from_matrix=from_matrix,
        )
        return _unwrap(body, "entry") or {}

    async def notebook(self, patient_id: str, limit: int = 100) -> list[dict[str, Any]]:
        body = await self.request(
            "GET", f"/patients/{_q(patient_id)}/notebook", params={"limit": limit}
        )
        return list(_items(body, "entries"))

    # -- tasks --
    async def create_task(
        self,
        patient_id: str,
        *,
        label: str,
        type: str,
        assignees: Sequence[str],
        due_date: str | None,
        actor: str | None,
        key: str,
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "patient_id": patient_id,
            "type": type,
            "label": label,
            "assignees": [{"kind": "personne", "ref": a} for a in assignees],
        }
        if due_date:
            payload["due_date"] = due_date
        body = await self.request("POST", "/tasks", json_body=payload, actor=actor, key=key)
        return _unwrap(body, "task") or {}

    async def open_tasks(self, patient_id: str) -> list[dict[str, Any]]:
        body = await self.request("GET", "/tasks", params={"patient_id": patient_id, "limit": 200})
        tasks = list(_items(body, "tasks"))
        return [t for t in tasks if t.get("state") in ("à faire", "en cours")]

    async def overdue_tasks(self) -> list[dict[str, Any]]:
        body = await self.request("GET", "/tasks", params={"overdue": "true", "limit": 500})
        return [t for t in _items(body, "tasks") if t.get("overdue")]

    async def set_task_state(
        self, task_id: str, state: str, *, actor: str | None, key: str
    ) -> dict[str, Any]:
        body = await self.request(
            "PATCH", f"/tasks/{_q(task_id)}", json_body={"state": state}, actor=actor, key=key
        )
        return _unwrap(body, "task") or {}

    # -- documents --
    async def upload_document(
        self,
        patient_id: str,
        *,
        category: str,
        filename: str,
        data: bytes,
        actor: str | None,
        key: str,
    ) -> dict[str, Any]:
        # a fixed boundary: the same upload replayed is byte-identical
        boundary = "cercle-" + hashlib.sha256(key.encode()).hexdigest()[:32]
        form = aiohttp.MultipartWriter("form-data", boundary=boundary)
        part = form.append(category)
        part.set_content_disposition("form-data", name="category")
        part = form.append(data, {"Content-Type": "application/octet-stream"})
        part.set_content_disposition("form-data", name="file", filename=filename)
        body = await self.request(
            "POST", f"/patients/{_q(patient_id)}/documents", data=form, actor=actor, key=key
        )
        return _unwrap(body, "document") or {}

    async def documents(self, patient_id: str) -> list[dict[str, Any]]:
        body = await self.request("GET", f"/patients/{_q(patient_id)}/documents")
        return list(_items(body, "documents"))

    async def record_activity(self, payload: Mapping[str, Any], *, key: str) -> dict[str, Any]:
        """Counts and timestamps of a patient room (issue 18's activity extraction)."""
        body = await self.request("POST", "/activity", json_body=dict(payload), key=key)
        return body if isinstance(body, dict) else {}

    async def catalogue(self) -> Mapping[str, Any]:
        """The deployment's vocabularies (``/api/v1/catalogue``, dossier_service/api/meta.py)."""
        body = await self.request("GET", "/catalogue")
        return body if isinstance(body, Mapping) else {}

    async def document_categories(self) -> list[str]:
        cats = (await self.catalogue()).get("document_categories")
        return [str(c) for c in cats] if isinstance(cats, list) else []

    async def role_labels(self) -> dict[str, str]:
        """The care circle's roles, code → label, as the dossier names them."""
        roles = (await self.catalogue()).get("roles")
        if not isinstance(roles, list):
            return {}
        return {
            str(r["code"]): str(r["label"])
            for r in roles
            if isinstance(r, Mapping) and r.get("code") and r.get("label")
        }


def _q(value: str) -> str:
    return quote(value, safe="")


def _items(body: Any, name: str) -> list[dict[str, Any]]:
    """Lists come as ``{name: [...]}``, ``{"items": [...]}`` or a bare list."""
    if isinstance(body, list):
        return [dict(x) for x in body if isinstance(x, Mapping)]
    if isinstance(body, Mapping):
        for key in (name, "items", "results", "data"):
            value = body.get(key)
            if isinstance(value, list):
                return [dict(x) for x in value if isinstance(x, Mapping)]
    return []


def _unwrap(body: Any, name: str) -> dict[str, Any] | None:
    if not isinstance(body, Mapping):
        return None
    inner = body.get(name)
    if isinstance(inner, Mapping):
        return dict(inner)
    return dict(body)
