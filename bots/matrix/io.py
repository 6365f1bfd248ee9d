"""Everything the bot sends to the homeserver, with Matrix errors turned into exceptions.

Notices are ``m.notice``, French, HTML with a plain-text body, with ``m.mentions`` for the
people concerned. Sends take a transaction id derived from the event being handled, so a
command replayed after a crash produces the same transaction and the server drops the
duplicate (idempotent replies and reactions).
"""

from __future__ import annotations

import asyncio
import hashlib
import html as _html
import json
import logging
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nio import (
    AsyncClient,
    ErrorResponse,
    JoinedMembersError,
    OlmUnverifiedDeviceError,
    ProfileGetError,
    RoomCreateResponse,
    RoomGetStateEventError,
    RoomGetStateEventResponse,
    RoomPutStateResponse,
    RoomSendResponse,
    UploadResponse,
)
from nio.crypto.attachments import encrypt_attachment, encrypted_attachment_generator
from nio.exceptions import GroupEncryptionError

from bots.matrix.events import fetch_content
from bots.matrix.timing import waiting_for_server
from bots.matrix.trust import MemberDeviceTrust

log = logging.getLogger(__name__)

FILE_CHUNK = 256 * 1024  # bytes encrypted, written and uploaded at a time
ENCRYPT_IN_THREAD = 1024 * 1024  # a larger attachment is encrypted off the event loop


class MatrixRequestError(Exception):
    """A request the homeserver refused. ``errcode`` is Matrix's (M_FORBIDDEN, …)."""

    def __init__(self, operation: str, errcode: str | None, status: int | None = None) -> None:
        super().__init__(f"{operation}: {errcode} ({status})")
        self.operation = operation
        self.errcode = errcode or "M_UNKNOWN"
        self.status = status


class UploadTooLarge(Exception):
    """A file over the homeserver's upload limit (``m.upload.size``), not sent: the server
    cuts such a request off without an answer, and nio, taking that for a timeout, would
    try again for ever (an export was found hanging so; issue 15)."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"{size} > {limit}")
        self.size = size
        self.limit = limit


def txn_for(event_id: str, purpose: str) -> str:
    """A transaction id that is the same every time the same event is handled."""
    digest = hashlib.sha256(f"{event_id}|{purpose}".encode()).hexdigest()[:32]
    return f"cercle.{digest}"


def _check(resp: Any, operation: str, ok: type | tuple[type, ...]) -> Any:
    if isinstance(resp, ok):
        return resp
    if isinstance(resp, ErrorResponse):
        status = (
            getattr(resp.transport_response, "status", None) if resp.transport_response else None
        )
        raise MatrixRequestError(operation, resp.status_code, status)
    raise MatrixRequestError(operation, None)


def edit_content(target: str, new_content: Mapping[str, Any]) -> dict[str, Any]:
    """Pure: the content of an ``m.replace`` edit of ``target`` (clients without edits show
    the ``* …`` fallback)."""
    edit = {**new_content, "m.new_content": dict(new_content)}
    edit["body"] = f"* {new_content.get('body', '')}"
    if "formatted_body" in new_content:
        edit["formatted_body"] = f"* {new_content['formatted_body']}"
    edit["m.relates_to"] = {"rel_type": "m.replace", "event_id": target}
    return edit


def mention_html(user_id: str, name: str | None = None) -> str:
    return (
        f'<a href="https://matrix.to/#/{_html.escape(user_id)}">{_html.escape(name or user_id)}</a>'
    )


def member_name(client: AsyncClient, room_id: str, user: str) -> str:
    """How the room shows ``user`` (their Matrix id when nio does not know them there)."""
    room = client.rooms.get(room_id)
    return (room.user_name(user) if room and user in room.users else None) or user


def room_link(room_id: str, server_name: str) -> str:
    return f"https://matrix.to/#/{room_id}?via={server_name}"


def encrypt_file(source: Path, target: Path) -> dict[str, Any]:
    """`source` encrypted into `target` as a Matrix encrypted attachment, chunk by chunk.

    nio's own `encrypted_attachment_generator` (what `encrypt_attachment` joins in memory)
    fed with the file's chunks: the same cipher and decryption info, the file never whole.
    """
    keys: dict[str, Any] = {}
    with open(source, "rb") as plain, open(target, "wb") as out:
        for value in encrypted_attachment_generator(iter(lambda: plain.read(FILE_CHUNK), b"")):
            if isinstance(value, dict):  # the last value: the decryption info
                keys = value
            else:
                out.write(value)
    return keys


async def _chunks_of(path: Path) -> AsyncIterator[bytes]:
    with open(path, "rb") as file:
        while chunk := await asyncio.to_thread(file.read, FILE_CHUNK):
            yield chunk


@dataclass(frozen=True)
class UploadedFile:
    """An encrypted attachment on the homeserver, not yet posted: where it is, its keys, the
    size of the plain file."""

    url: str
    keys: Mapping[str, Any] = field(repr=False)  # the file's decryption key among them
    size: int


def _file_message(
    url: str,
    keys: Mapping[str, Any],
    filename: str,
    mimetype: str,
    size: int,
    body: str | None,
    msgtype: str = "m.file",
    info: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``m.file`` (or ``m.image`` …) content of an encrypted attachment; ``info`` adds to
    its mimetype and size (``w``/``h`` of an image)."""
    return {
        "msgtype": msgtype,
        "body": body or filename,
        "filename": filename,
        "info": {"mimetype": mimetype, "size": size, **(info or {})},
        "file": {
            "url": url,
            "key": keys["key"],
            "iv": keys["iv"],
            "hashes": keys["hashes"],
            "v": keys["v"],
            "mimetype": mimetype,
        },
    }


class MatrixIO:
    def __init__(self, client: AsyncClient, trust: MemberDeviceTrust) -> None:
        self.client = client
        self.trust = trust

    # -- timeline --
    async def send(
        self, room_id: str, event_type: str, content: Mapping[str, Any], txn_id: str | None = None
    ) -> str:
        txn_id = txn_id or f"cercle.{uuid.uuid4().hex}"
        for attempt in range(4):
            await self.trust.prepare_room(room_id)
            try:
                resp = await waiting_for_server(
                    self.client.room_send(room_id, event_type, dict(content), tx_id=txn_id)
                )
                break
            except (OlmUnverifiedDeviceError, KeyError, GroupEncryptionError):
                # Membership moved while the room key was being shared (nio drops the outbound
                # session on member changes, or a new device appeared): nothing was sent yet,
                # apply the policy and share again.
                if attempt == 3:
                    raise
                log.info("clé de salon à repartager room=%s (essai %d)", room_id, attempt + 2)
        return str(_check(resp, "room_send", RoomSendResponse).event_id)

    async def send_notice(
        self,
        room_id: str,
        plain: str,
        html_body: str | None = None,
        *,
        mentions: Sequence[str] = (),
        txn_id: str | None = None,
        reply_to: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> str:
        content: dict[str, Any] = {
            **(extra or {}),
            "msgtype": "m.notice",
            "body": plain,
            "m.mentions": {"user_ids": sorted(set(mentions))} if mentions else {},
        }
        if html_body is not None:
            content["format"] = "org.matrix.custom.html"
            content["formatted_body"] = html_body
        if reply_to:
            content["m.relates_to"] = {"m.in_reply_to": {"event_id": reply_to}}
        return await self.send(room_id, "m.room.message", content, txn_id)

    async def event_content(self, room_id: str, event_id: str) -> dict[str, Any] | None:
        """The (decrypted) content of one event of the room, or None."""
        return await fetch_content(self.client, room_id, event_id, wait_for_server=True)

    async def send_reaction(self, room_id: str, event_id: str, key: str, txn_id: str) -> str:
        content = {"m.relates_to": {"rel_type": "m.annotation", "event_id": event_id, "key": key}}
        return await self.send(room_id, "m.reaction", content, txn_id)

    # An attachment is posted in two steps, uploaded (from memory or from disk) then posted
    # with `send_uploaded`: a caller may upload while it sends something else.
    async def upload_encrypted(self, data: bytes) -> UploadedFile:
        """``data`` encrypted (AES-CTR attachment) and uploaded, not posted."""
        if len(data) > ENCRYPT_IN_THREAD:
            ciphertext, keys = await asyncio.to_thread(encrypt_attachment, data)
        else:
            ciphertext, keys = encrypt_attachment(data)
        url = await self._upload(lambda *_: ciphertext, len(ciphertext))
        return UploadedFile(url, keys, len(data))

    async def upload_encrypted_file(self, path: Path) -> UploadedFile:
        """The file at ``path`` encrypted and uploaded, not posted, never whole in memory:
        encrypted chunk by chunk (in a thread) into a 0600 temp file beside it, uploaded from
        there, then removed."""
        size = path.stat().st_size
        limit = await self.upload_limit()
        if limit is not None and size > limit:  # AES-CTR: the ciphertext is as long
            raise UploadTooLarge(size, limit)
        handle, name = tempfile.mkstemp(prefix=".envoi-", suffix=".chiffre", dir=path.parent)
        os.close(handle)
        encrypted = Path(name)
        try:
            keys = await asyncio.to_thread(encrypt_file, path, encrypted)
            # the provider is called again from the start on a retry; AES-CTR: the
            # ciphertext is as long as the file
            url = await self._upload(lambda *_: _chunks_of(encrypted), size)
        finally:
            encrypted.unlink(missing_ok=True)
        return UploadedFile(url, keys, size)

    async def send_uploaded(
        self,
        room_id: str,
        uploaded: UploadedFile,
        *,
        filename: str,
        mimetype: str,
        txn_id: str | None = None,
        body: str | None = None,
        msgtype: str = "m.file",
        info: Mapping[str, Any] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> str:
        """Post an uploaded attachment (``msgtype`` ``m.image`` with ``info`` ``w``/``h``:
        clients show it inline; ``extra``: more keys of the content)."""
        content = _file_message(
            uploaded.url, uploaded.keys, filename, mimetype, uploaded.size, body, msgtype, info
        )
        return await self.send(room_id, "m.room.message", {**content, **(extra or {})}, txn_id)

    async def send_edit(
        self, room_id: str, target: str, new_content: Mapping[str, Any], txn_id: str | None = None
    ) -> str:
        """Replace the bot's own message ``target`` by ``new_content`` (an ``m.replace`` edit)."""
        return await self.send(room_id, "m.room.message", edit_content(target, new_content), txn_id)

    async def upload_limit(self) -> int | None:
        """The homeserver's upload limit in bytes (``m.upload.size`` of its media
        configuration), None when it does not say."""
        for path in ("/_matrix/client/v1/media/config", "/_matrix/media/v3/config"):
            response = await waiting_for_server(
                self.client.send(
                    "GET", path, headers={"Authorization": f"Bearer {self.client.access_token}"}
                )
            )
            async with response:
                if response.status != 200:
                    continue
                config = await response.json(content_type=None)
            size = config.get("m.upload.size") if isinstance(config, dict) else None
            return size if isinstance(size, int) and size > 0 else None
        return None

    async def _upload(self, provider: Callable[..., Any], size: int) -> str:
        """An encrypted attachment's ciphertext uploaded; its mxc:// address."""
        resp, _ = await waiting_for_server(
            self.client.upload(
                provider, content_type="application/octet-stream", filename=None, filesize=size
            )
        )
        return str(_check(resp, "upload", UploadResponse).content_uri)

    # -- state --
    async def get_state(
        self, room_id: str, event_type: str, state_key: str = ""
    ) -> dict[str, Any] | None:
        resp = await waiting_for_server(
            self.client.room_get_state_event(room_id, event_type, state_key)
        )
        if isinstance(resp, RoomGetStateEventError) and resp.status_code == "M_NOT_FOUND":
            return None
        return dict(_check(resp, "get_state", RoomGetStateEventResponse).content)

    async def put_state(
        self, room_id: str, event_type: str, content: Mapping[str, Any], state_key: str = ""
    ) -> str:
        resp = await waiting_for_server(
            self.client.room_put_state(room_id, event_type, dict(content), state_key)
        )
        return str(_check(resp, "put_state", RoomPutStateResponse).event_id)

    async def set_room_name(self, room_id: str, name: str) -> None:
        await self.put_state(room_id, "m.room.name", {"name": name})

    # -- rooms and members --
    async def create_room(
        self, *, creation_content: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> str:
        """nio's ``room_create``; with ``creation_content`` (which nio does not pass on,
        e.g. MSC4289's ``additional_creators``) the same request is made directly."""
        if creation_content is None:
            resp = await waiting_for_server(self.client.room_create(**kwargs))
            return str(_check(resp, "room_create", RoomCreateResponse).room_id)
        body = {
            "visibility": "private",
            "creation_content": {"m.federate": True, **creation_content},
            "is_direct": bool(kwargs.pop("is_direct", False)),
            "invite": list(kwargs.pop("invite", ())),
            "initial_state": list(kwargs.pop("initial_state", ())),
        }
        renamed = {
            "alias": "room_alias_name",
            "power_level_override": "power_level_content_override",
        }
        for key in ("alias", "name", "topic", "room_version", "power_level_override", "preset"):
            if kwargs.get(key) is not None:
                body[renamed.get(key, key)] = kwargs.pop(key)
        if kwargs:
            raise TypeError(f"create_room: {sorted(kwargs)}")
        answer = await self._client_api("POST", "/createRoom", body, "room_create")
        return str(answer["room_id"])

    async def join(self, room_id: str) -> None:
        resp = await waiting_for_server(self.client.join(room_id))
        if isinstance(resp, ErrorResponse):
            _check(resp, "join", ())

    async def leave(self, room_id: str) -> None:
        """Leave ``room_id`` and forget it (nio keeps a left room among ``client.rooms``,
        where the components would take it for one of theirs); already out of it is not an
        error (a replay after a kill)."""
        resp = await waiting_for_server(self.client.room_leave(room_id))
        if isinstance(resp, ErrorResponse):
            membership = await self.membership(room_id, str(self.client.user_id))
            if membership not in (None, "leave"):
                _check(resp, "leave", ())
        forgot = await waiting_for_server(self.client.room_forget(room_id))
        if isinstance(forgot, ErrorResponse):
            log.info("salon quitté mais non oublié room=%s (%s)", room_id, forgot.status_code)
            self.client.rooms.pop(room_id, None)

    async def membership(self, room_id: str, user_id: str) -> str | None:
        """``user_id``'s membership of ``room_id`` as the server has it now; None when it has
        none, or when this account may not read it (it was never in the room)."""
        try:
            content = await self.get_state(room_id, "m.room.member", user_id)
        except MatrixRequestError as exc:
            if exc.errcode == "M_FORBIDDEN":
                return None
            raise
        value = (content or {}).get("membership")
        return value if isinstance(value, str) else None

    async def _client_api(
        self, method: str, path: str, body: Mapping[str, Any], operation: str
    ) -> dict[str, Any]:
        """One request of the client-server API that nio does not make; its refusal as a
        `MatrixRequestError` (the homeserver's errcode and status)."""
        response = await self.client.send(
            method,
            f"/_matrix/client/v3{path}",
            data=json.dumps(body),
            headers={
                "Authorization": f"Bearer {self.client.access_token}",
                "Content-Type": "application/json",
            },
        )
        async with response:
            try:
                answer = await response.json(content_type=None)
            except ValueError:
                answer = None
            if response.status != 200 or not isinstance(answer, dict):
                errcode = answer.get("errcode") if isinstance(answer, dict) else None
                raise MatrixRequestError(operation, errcode, response.status)
        return answer

    async def invite(self, room_id: str, user_id: str) -> None:
        resp = await waiting_for_server(self.client.room_invite(room_id, user_id))
        if isinstance(resp, ErrorResponse):
            _check(resp, "invite", ())

    async def user_exists(self, user_id: str) -> bool:
        """Synapse accepts invitations to local accounts that do not exist: ask the profile."""
        resp = await waiting_for_server(self.client.get_profile(user_id))
        if isinstance(resp, ProfileGetError):
            http = getattr(resp.transport_response, "status", None)
            if resp.status_code == "M_NOT_FOUND" or http == 404:  # Synapse: 404 M_UNKNOWN
                return False
            _check(resp, "get_profile", ())
        return True

    async def search_users(self, term: str, limit: int = 20) -> list[tuple[str, str | None]]:
        """The server's user directory (``search_all_users``): (user id, display name)."""
        from bots.matrix.cross_signing import _api

        status, answer = await _api(
            self.client,
            "POST",
            "/_matrix/client/v3/user_directory/search",
            {"search_term": term, "limit": limit},
        )
        if status != 200:
            raise MatrixRequestError("user_directory", str(answer.get("errcode")), status)
        return [
            (
                str(r["user_id"]),
                r.get("display_name") if isinstance(r.get("display_name"), str) else None,
            )
            for r in answer.get("results") or []
            if isinstance(r, dict) and isinstance(r.get("user_id"), str)
        ]

    async def joined_members(self, room_id: str) -> list[str]:
        resp = await waiting_for_server(self.client.joined_members(room_id))
        if isinstance(resp, JoinedMembersError):
            _check(resp, "joined_members", ())
        return [m.user_id for m in resp.members]
