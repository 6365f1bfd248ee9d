"""The bot's rooms over two accounts (``bot.shards``, bots/shards.py) seen from an Element-like
client (matrix-js-sdk, Rust crypto, "only signed devices" mode): a room asked of the front
that lives with ``cercle-bot-2``. Element shares its room keys only with devices signed by
their owner, so the second account's device must be cross-signed by its own keys, or it
could read no command; its answers must decrypt with no warning, once the front has left."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest

from tests.bots.conftest import room_id_in
from tests.bots.test_shards_with_bots import two_accounts

pytestmark = [pytest.mark.interop, pytest.mark.integration]


async def _get(synapse: Any, user: Any, path: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {user.access_token}"}
    url = f"{synapse.base_url}/_matrix/client/v3{path}"
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as resp:
        assert resp.status == 200, (path, resp.status)
        return dict(await resp.json())


async def test_element_user_in_a_room_living_with_the_second_account(
    synapse: Any, tmp_path: Any, js_client_factory: Any
) -> None:
    runners = await two_accounts(synapse, tmp_path)
    front, shard = (r.config.user_id for r in runners)
    try:
        apps = [await runner.start() for runner in runners]
        shard_device = apps[1].client.device_id
        js = await js_client_factory()
        user = js.test_user
        dm = (await js.call("createRoom", name="Cercle", invite=[front]))["roomId"]
        await js.call("waitJoined", roomId=dm, userId=front, timeoutMs=30000)

        # rooms until one lives with the second account (a hash of the command: one in two)
        room_id = None
        for i in range(16):
            await js.call("send", roomId=dm, body=f"!patient nouveau Interop {i}")
            notice = await js.decrypted(dm, front, f"« Interop {i} » créé", timeout_ms=45000)
            made = room_id_in(notice["content"]["body"])
            await js.call("waitInvite", roomId=made, timeoutMs=30000)
            await js.call("join", roomId=made)
            create = await _get(synapse, user, f"/rooms/{made}/state/m.room.create")
            if shard in create.get("additional_creators", []):
                room_id = made
                break
        assert room_id is not None, "aucun salon confié au second compte en 16 essais"

        # the second account in, the front gone: the room is the second account's alone
        deadline = time.monotonic() + 60
        while True:
            joined = await _get(synapse, user, f"/rooms/{room_id}/joined_members")
            if set(joined["joined"]) == {user.user_id, shard}:
                break
            assert time.monotonic() < deadline, joined
            await asyncio.sleep(0.5)
        status = await js.call("deviceStatus", userId=shard, deviceId=shard_device)
        assert status["signedByOwner"], status

        # a command only the second account can read (Element shares with signed devices)
        await js.call("send", roomId=room_id, body="!urgent pansement-interop-2")
        answer = await js.decrypted(room_id, shard, "pansement-interop-2", timeout_ms=45000)
        assert answer["content"]["msgtype"] == "m.notice"
        assert answer["senderDeviceId"] == shard_device
        assert answer["encryptionInfo"] == {"shieldColour": "NONE", "shieldReason": None}, answer
        for message in await js.call("messages", roomId=room_id):
            if message["sender"] in (front, shard):
                assert not message["decryptionFailure"], message
                assert message["encryptionInfo"]["shieldColour"] == "NONE", message
    finally:
        for runner in runners:
            await runner.stop()
