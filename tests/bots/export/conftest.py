"""Helpers for the export tests: an encrypted room between nio clients on the real Synapse."""

from __future__ import annotations

import io
from typing import Any

import pytest
from nio import AsyncClient, RoomCreateResponse, UploadResponse
from support import send_message


async def create_room(owner: AsyncClient, *members: AsyncClient, name: str = "Suivi Mme D.") -> str:
    created = await owner.room_create(name=name, invite=[m.user_id for m in members])
    assert isinstance(created, RoomCreateResponse), created
    for member in members:
        await member.sync(timeout=0)
        joined = await member.join(created.room_id)
        assert getattr(joined, "room_id", None) == created.room_id, joined
    for client in (owner, *members):
        await client.sync(timeout=0)
    return created.room_id


async def join(room_id: str, owner: AsyncClient, member: AsyncClient) -> None:
    await owner.room_invite(room_id, member.user_id)
    await member.sync(timeout=0)
    joined = await member.join(room_id)
    assert getattr(joined, "room_id", None) == room_id, joined
    await owner.sync(timeout=0)
    await member.sync(timeout=0)


async def send(client: AsyncClient, room_id: str, content: dict[str, Any]) -> str:
    await client.sync(timeout=0)
    return await send_message(client, room_id, content)


async def text(client: AsyncClient, room_id: str, body: str, **extra: Any) -> str:
    return await send(client, room_id, {"msgtype": "m.text", "body": body, **extra})


async def upload_encrypted(
    client: AsyncClient,
    room_id: str,
    data: bytes,
    name: str,
    mimetype: str,
    msgtype: str,
    info: dict[str, Any] | None = None,
) -> str:
    response, keys = await client.upload(
        lambda *_: io.BytesIO(data),
        content_type=mimetype,
        filename=name,
        encrypt=True,
        filesize=len(data),
    )
    assert isinstance(response, UploadResponse), response
    file = {
        "url": response.content_uri,
        "key": keys["key"],
        "iv": keys["iv"],
        "hashes": keys["hashes"],
        "v": keys["v"],
    }
    content = {
        "msgtype": msgtype,
        "body": name,
        "file": file,
        "info": {"mimetype": mimetype, "size": len(data), **(info or {})},
    }
    return await send(client, room_id, content)


class Rooms:
    """The helpers above, handed to tests as the `rooms` fixture."""

    create = staticmethod(create_room)
    join = staticmethod(join)
    send = staticmethod(send)
    text = staticmethod(text)
    upload_encrypted = staticmethod(upload_encrypted)


@pytest.fixture
def rooms() -> type[Rooms]:
    return Rooms
