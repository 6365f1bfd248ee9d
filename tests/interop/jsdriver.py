"""Drive ``jsclient.mjs`` (matrix-js-sdk + Rust crypto in Node) from an async test."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import shutil
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PREFIX = "@@CERCLE@@ "
# The MSC4268 key bundle's to-device event, both names js-sdk 43 accepts.
KEY_BUNDLE_TYPES = ["io.element.msc4268.room_key_bundle", "m.room_key_bundle"]


def js_available() -> str | None:
    """None when Node and the npm packages are there, else why not (French)."""
    if shutil.which("node") is None:
        return "node absent"
    if not (HERE / "node_modules" / "matrix-js-sdk").is_dir():
        return "matrix-js-sdk absent (lancez `make test` ou `npm ci` dans tests/interop)"
    return None


class JsClientError(RuntimeError):
    pass


class JsClient:
    """One Node process = one js-sdk client (one device)."""

    def __init__(self, process: asyncio.subprocess.Process, log_path: Path) -> None:
        self._process = process
        self._ids = itertools.count(1)
        self.log_path = log_path
        self.user_id = ""
        self.device_id = ""

    @classmethod
    async def spawn(cls, log_path: Path) -> JsClient:
        log = log_path.open("wb")
        process = await asyncio.create_subprocess_exec(
            "node",
            str(HERE / "jsclient.mjs"),
            cwd=str(HERE),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
            env={**os.environ, "JSCLIENT_LOG_LEVEL": os.environ.get("JSCLIENT_LOG_LEVEL", "info")},
            limit=16 * 1024 * 1024,
        )
        log.close()
        return cls(process, log_path)

    async def call(self, cmd: str, timeout: float = 90, **args: Any) -> Any:
        assert self._process.stdin and self._process.stdout
        msg_id = next(self._ids)
        self._process.stdin.write((json.dumps({"id": msg_id, "cmd": cmd, **args}) + "\n").encode())
        await self._process.stdin.drain()

        async def read_answer() -> Any:
            assert self._process.stdout
            while True:
                line = await self._process.stdout.readline()
                if not line:
                    raise JsClientError(f"node s'est arrêté pendant {cmd} (voir {self.log_path})")
                text = line.decode("utf-8", "replace")
                if not text.startswith(PREFIX):
                    continue
                answer = json.loads(text[len(PREFIX) :])
                if answer.get("id") != msg_id:
                    continue
                if not answer["ok"]:
                    raise JsClientError(f"{cmd}: {answer['error']}")
                return answer["result"]

        return await asyncio.wait_for(read_answer(), timeout)

    async def new_patient_room(self, bot_user: str, label: str) -> str:
        """``!patient nouveau <label>`` in a direct chat with the bot; the patient room the
        bot then invites this user to, joined."""
        dm = (await self.call("createRoom", name="Cercle", invite=[bot_user]))["roomId"]
        await self.call("waitJoined", roomId=dm, userId=bot_user, timeoutMs=30000)
        await self.call("send", roomId=dm, body=f"!patient nouveau {label}")
        room_id = str((await self.call("waitInvite", timeoutMs=30000))["roomId"])
        await self.call("join", roomId=room_id)
        return room_id

    async def message(
        self, room_id: str, sender: str, contains: str, timeout_ms: int = 30000
    ) -> Any:
        """The message of ``sender`` containing ``contains`` in the room, once it arrives."""
        return await self.call(
            "waitMessage", roomId=room_id, sender=sender, contains=contains, timeoutMs=timeout_ms
        )

    async def decrypted(
        self, room_id: str, sender: str, contains: str, timeout_ms: int = 30000
    ) -> Any:
        """The message of ``sender`` containing ``contains`` in the room, once it arrives: it
        must have come encrypted and been decrypted."""
        message = await self.message(room_id, sender, contains, timeout_ms)
        assert message["encrypted"] and not message["decryptionFailure"], message
        return message

    async def key_bundle(self, room_id: str, sender: str, timeout_ms: int = 30000) -> Any:
        """Wait until the MSC4268 key bundle of ``sender`` for the room has reached this
        device (to-device, decrypted): joining then imports it at once."""
        return await self.call(
            "waitToDevice",
            types=KEY_BUNDLE_TYPES,
            sender=sender,
            roomId=room_id,
            timeoutMs=timeout_ms,
        )

    async def start(
        self,
        base_url: str,
        user_id: str,
        access_token: str,
        device_id: str,
        password: str,
        *,
        strict: bool = True,
        cross_sign: bool = True,
        new_device: bool = False,
    ) -> Any:
        started = await self.call(
            "start",
            baseUrl=base_url,
            userId=user_id,
            accessToken=access_token,
            deviceId=device_id,
            password=password,
            strict=strict,
            crossSign=cross_sign,
            newDevice=new_device,
        )
        self.user_id, self.device_id = user_id, started["deviceId"]
        return started

    async def close(self) -> None:
        if self._process.returncode is None:
            with contextlib.suppress(
                JsClientError, TimeoutError, BrokenPipeError, ConnectionResetError
            ):
                await self.call("stop", timeout=10)
            try:
                await asyncio.wait_for(self._process.wait(), 5)
            except TimeoutError:
                self._process.kill()
                await self._process.wait()
