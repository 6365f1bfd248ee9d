"""Test support: start a real Synapse from the deployment's own rendering code.

The Synapse is rendered by the same code as `make up` (homeserver.render), in a temporary
directory on a free port, so the tests exercise the real configuration.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import shutil
import socket
import time
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from nio import (
    AsyncClient,
    DownloadResponse,
    MegolmEvent,
    RoomMessageText,
    RoomSendResponse,
    SyncResponse,
)
from nio.crypto.attachments import decrypt_attachment

from cercle.bot_instances import bot_accounts
from deployment.processes import port_is_free
from deployment.profile import Profile, load_profile
from deployment.secrets import Secrets
from homeserver.accounts import ensure_service_accounts
from homeserver.admin_api import shared_secret_mac
from homeserver.process import SynapseProcess
from homeserver.render import render

# Headless Chromium for the browser tests (installed by `make test`).
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
BROWSER_MARKS = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason="chromium absent (installé par make test)"
    ),
]
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


# The shared sample of the public RPPS extract (beside the checkout, or the machine's copy).
RPPS_SAMPLE = (
    Path(__file__).resolve().parents[2]
    / "shared"
    / "data"
    / "rpps"
    / ("PS_LibreAcces_Personne_activite_sample.txt")
)
if not RPPS_SAMPLE.exists():
    RPPS_SAMPLE = Path("/work/shared/data/rpps") / RPPS_SAMPLE.name


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# Only for tests: many users log in from 127.0.0.1 within seconds. Everything else is the
# deployment's real configuration.
TEST_OVERRIDES: dict[str, Any] = {
    "homeserver": {
        "rate_limits": {
            "login_per_second": 100,
            "login_burst": 1000,
            "login_failed_per_second": 100,
            "login_failed_burst": 1000,
            "registration_per_second": 100,
            "registration_burst": 1000,
        },
        # Test users do not accept the Documents juridiques one by one; the consent tests
        # (tests/homeserver/test_legal_consent.py) turn them on.
        "legal": {"enabled": False},
    }
}


def free_region_base() -> int:
    """A base port whose region offsets are all free: the workers and the dossier processes
    from +0, Synapse's and the dossier's public ports at +60 and +61. Below the kernel's
    ephemeral range (32768 up): a port there, free when picked, can be taken by any outgoing
    connection before `cercle up` binds it (seen by bench/region_load.py: « le port 44220 est
    déjà occupé » minutes after the pick)."""
    for _ in range(200):
        base = 20000 + secrets.randbelow(127) * 100  # at most 32600 + 61
        if all(port_is_free("127.0.0.1", base + i) for i in range(62)):
            return base
    raise RuntimeError("aucune plage de ports libre")


def _merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def make_test_profile(
    var_dir: Path, port: int | None = None, extra: dict[str, Any] | None = None
) -> Profile:
    """A deployment profile for tests: its own var dir and free ports."""
    base = {
        "var_dir": str(var_dir),
        "homeserver": {"port": port or free_port()},
        "dossier": {"port": free_port()},
    }
    return load_profile(env={}, extra=_merge(_merge(base, TEST_OVERRIDES), extra or {}))


def password_login_body(user_id: str, password: str) -> dict[str, Any]:
    """The body of a Matrix password login (``POST /_matrix/client/v3/login``)."""
    return {
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": user_id},
        "password": password,
    }


async def password_login(
    http: aiohttp.ClientSession, base_url: str, user_id: str, password: str
) -> tuple[int, dict[str, Any]]:
    """A password login: the status and the answer (a session, or the refusal)."""
    async with http.post(
        f"{base_url}/_matrix/client/v3/login", json=password_login_body(user_id, password)
    ) as resp:
        return resp.status, await resp.json()


def _http_json(method: str, url: str, body: Any = None, token: str | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read() or b"{}")


def create_direct_room(base_url: str, host: TestUser, guest: TestUser) -> str:
    """The id of a direct chat ``host`` opens with ``guest`` invited (a private chat, as a
    client opens one)."""
    created = _http_json(
        "POST",
        f"{base_url}/_matrix/client/v3/createRoom",
        {"preset": "private_chat", "invite": [guest.user_id], "is_direct": True},
        token=host.access_token,
    )
    return str(created["room_id"])


@dataclass
class SynapseUnderTest:
    profile: Profile
    secrets: Secrets
    process: SynapseProcess
    admin_token: str
    bot_user_id: str

    @property
    def base_url(self) -> str:
        return self.profile.homeserver_url

    @property
    def server_name(self) -> str:
        return self.profile.server_name

    @property
    def var_dir(self) -> Path:
        return self.profile.var_dir

    @property
    def db_path(self) -> Path:
        return self.process.rendered.sqlite_path

    @property
    def bot_password(self) -> str:
        return self.secrets.bot_password

    @property
    def log_text(self) -> str:
        """The homeserver's log so far."""
        return (self.process.rendered.data_dir / "homeserver.log").read_text(
            encoding="utf-8", errors="replace"
        )

    def start(self) -> None:
        self.process.start()

    def stop(self) -> None:
        self.process.stop()

    def restart(self) -> None:
        self.process.stop()
        self.process.start()

    def register(
        self, localpart: str, password: str, *, admin: bool = False, displayname: str | None = None
    ) -> dict[str, Any]:
        """Shared-secret registration, then a login (a new device), message rate limit lifted.
        Returns the login answer (user_id, access_token, device_id)."""
        url = f"{self.base_url}/_synapse/admin/v1/register"
        nonce = _http_json("GET", url)["nonce"]
        body = {
            "nonce": nonce,
            "username": localpart,
            "password": password,
            "admin": admin,
            "mac": shared_secret_mac(
                self.secrets.registration_shared_secret, nonce, localpart, password, admin
            ),
        }
        if displayname:
            body["displayname"] = displayname
        body["inhibit_login"] = True
        user_id = _http_json("POST", url, body)["user_id"]
        out = _http_json(
            "POST",
            f"{self.base_url}/_matrix/client/v3/login",
            password_login_body(user_id, password),
        )
        path = urllib.parse.quote(out["user_id"], safe="")
        _http_json(
            "POST",
            f"{self.base_url}/_synapse/admin/v1/users/{path}/override_ratelimit",
            {"messages_per_second": 0, "burst_count": 0},
            token=self.admin_token,
        )
        return dict(out)


def start_synapse(var_dir: Path, extra: dict[str, Any] | None = None) -> SynapseUnderTest:
    profile = make_test_profile(var_dir, extra=extra)
    secrets = Secrets.load_or_create(profile.var_dir)
    process = SynapseProcess(render(profile, secrets))
    process.start()
    accounts = asyncio.run(
        ensure_service_accounts(
            profile.homeserver_url,
            profile.server_name,
            secrets,
            bots=bot_accounts(profile, secrets),
        )
    )
    return SynapseUnderTest(profile, secrets, process, accounts.admin_token, accounts.bot_user_id)


@dataclass(frozen=True)
class TestUser:
    user_id: str
    localpart: str
    password: str
    access_token: str
    device_id: str


def die_after(target: Any, method: str, when: Callable[..., bool]) -> asyncio.Event:
    """Patch ``target.<method>``: the first call for which ``when(*args, **kwargs)`` holds is
    carried out, then its caller is cancelled, as if the process died right after it (a
    SIGKILL: nothing after that call runs). The event is set when that happens."""
    real = getattr(target, method)
    died = asyncio.Event()

    async def call_then_die(*args: Any, **kwargs: Any) -> Any:
        result = await real(*args, **kwargs)
        if not died.is_set() and when(*args, **kwargs):
            died.set()
            raise asyncio.CancelledError
        return result

    setattr(target, method, call_then_die)
    return died


async def eventually(
    probe: Callable[[], Awaitable[Any]],
    check: Callable[[Any], bool],
    timeout: float = 30.0,
    what: str = "état attendu",
    interval: float = 0.3,
) -> Any:
    """Poll ``probe`` until ``check`` holds; fail with the last value after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if check(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} non atteint : {str(value)[:800]}")
        await asyncio.sleep(interval)


def encrypted_room_state(history_visibility: str | None = "shared") -> list[dict[str, Any]]:
    """The initial state of an encrypted (Megolm) room, with this history visibility (None:
    the server's default), as a room_create call takes it."""
    state: list[dict[str, Any]] = [
        {
            "type": "m.room.encryption",
            "state_key": "",
            "content": {"algorithm": "m.megolm.v1.aes-sha2"},
        }
    ]
    if history_visibility is not None:
        state.append(
            {
                "type": "m.room.history_visibility",
                "state_key": "",
                "content": {"history_visibility": history_visibility},
            }
        )
    return state


async def send_message(client: Any, room_id: str, content: dict[str, Any]) -> str:
    """A nio client sends an ``m.room.message`` into an encrypted room, the members' devices
    queried first when its list is out of date; the event id (a refused send fails)."""
    if client.should_query_keys:
        await client.keys_query()
    sent = await client.room_send(
        room_id, "m.room.message", content, ignore_unverified_devices=True
    )
    assert isinstance(sent, RoomSendResponse), sent
    return str(sent.event_id)


async def send_and_decrypt(sender: Any, receiver: Any, room_id: str, body: str) -> list[str]:
    """`sender` sends `body` as an encrypted text into a room both nio clients joined; the
    texts `receiver` then decrypts there (at least one; an undecryptable event fails)."""
    await sender.keys_query()
    await send_message(sender, room_id, {"msgtype": "m.text", "body": body})
    bodies: list[str] = []

    async def received() -> list[str]:
        resp = await receiver.sync(timeout=500)
        joined = resp.rooms.join.get(room_id)
        for event in joined.timeline.events if joined else []:
            assert not isinstance(event, MegolmEvent), "undecryptable"
            if isinstance(event, RoomMessageText):
                bodies.append(event.body)
        return bodies

    return await eventually(received, bool, timeout=15, what="message reçu", interval=0.1)


async def download_media(client: AsyncClient, mxc: str) -> bytes:
    """What the server holds behind ``mxc`` (an encrypted file: its ciphertext), fetched by
    ``client`` through the authenticated media API."""
    resp = await client.download(mxc)
    assert isinstance(resp, DownloadResponse), resp
    return bytes(resp.body)


async def download_attachment(client: AsyncClient, content: Mapping[str, Any]) -> bytes:
    """A message's encrypted attachment (``content.file``), fetched by ``client`` and
    decrypted by nio's own function."""
    file = content["file"]
    ciphertext = await download_media(client, file["url"])
    key, sha256, iv = file["key"]["k"], file["hashes"]["sha256"], file["iv"]
    return bytes(decrypt_attachment(ciphertext, key, sha256, iv))


def one_room_sync(room_id: str, token: str, *timeline: dict[str, Any]) -> SyncResponse:
    """A /sync answer (nio's own parse) whose one joined room carries ``timeline``, no gap."""
    return SyncResponse.from_dict(
        {
            "next_batch": token,
            "rooms": {
                "join": {
                    room_id: {"timeline": {"events": list(timeline), "limited": False}, "state": {}}
                }
            },
        }
    )
