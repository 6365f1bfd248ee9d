#!/usr/bin/env python3
"""Issue 11: how long a newcomer waits for the earlier conversation, on a real Synapse with
the real bot, in a patient room of N messages (default 2,000).

    .venv/bin/python bench/newcomer_history.py [--messages 2000] [--grace 5]

A cross-signed nio nurse (shared-history flag set, as Element sets it) writes N messages;
then, with ``!inviter``, the bot brings in:

* a newcomer on Element's crypto (matrix-js-sdk 43, Rust crypto, strict mode), cross-signed:
  time from its join to the **last earlier message readable** (bundle path) — beside the
  physical limit measured in the same run: from the join to a **new** message, sent just
  after, readable (one room key over Olm plus one sync);
* a newcomer whose client never cross-signs: time from its join to the **transcript PDF**
  in its direct chat (fallback path), of which ``--grace`` seconds are the configured wait
  (``history_fallback_seconds``) — beside the bare fetch + render of the same history.

Needs Node and ``make tests/interop/node_modules/.installed``. Prints its figures only.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nio import AsyncClient, AsyncClientConfig  # noqa: E402

from bots.app import BotApp  # noqa: E402
from bots.config import BotConfig  # noqa: E402
from bots.matrix.cross_signing import ensure_cross_signed  # noqa: E402
from bots.matrix.history import install_shared_history  # noqa: E402
from tests.interop.jsdriver import JsClient, js_available  # noqa: E402
from tests.support import SynapseUnderTest, send_message, start_synapse  # noqa: E402


def register(hs: SynapseUnderTest, name: str) -> tuple[str, str, str, str]:
    password = secrets.token_urlsafe(12)
    out = hs.register(f"{name}-{secrets.token_hex(3)}", password)
    return out["user_id"], out["access_token"], out["device_id"], password


async def nurse_client(hs: SynapseUnderTest, store: Path) -> AsyncClient:
    user_id, token, device_id, _ = register(hs, "ide")
    store.mkdir(parents=True, exist_ok=True)
    client = AsyncClient(
        hs.base_url,
        user_id,
        device_id=device_id,
        store_path=str(store),
        config=AsyncClientConfig(encryption_enabled=True),
    )
    client.restore_login(user_id, device_id, token)
    await client.keys_upload()
    await ensure_cross_signed(client, key_file=store / "xs.json", encryption_key="k", password="-")
    install_shared_history(client)  # flags its room keys as shareable, as Element does
    await client.sync(timeout=0, full_state=True)
    return client


async def until(probe: Any, what: str, timeout: float = 120.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await probe()
        if value:
            return value
        await asyncio.sleep(0.1)
    raise TimeoutError(what)


async def say(nurse: AsyncClient, room_id: str, body: str) -> None:
    await send_message(nurse, room_id, {"msgtype": "m.text", "body": body})


async def js(hs: SynapseUnderTest, log: Path, *, cross_sign: bool) -> JsClient:
    user_id, token, device_id, password = register(hs, "nouveau")
    client = await JsClient.spawn(log)
    await client.start(
        hs.base_url, user_id, token, device_id, password, strict=cross_sign, cross_sign=cross_sign
    )
    return client


async def run(hs: SynapseUnderTest, tmp: Path, messages: int, grace: float) -> None:
    config = BotConfig.from_profile(
        hs.profile,
        data_dir=tmp / "bot",
        device_id="CERCLEBOT" + secrets.token_hex(3).upper(),
        sync_timeout_ms=5_000,
        history_fallback_seconds=grace,
    )
    app = await BotApp.create(
        config,
        password=hs.secrets.bot_password,
        pickle_key=hs.secrets.bot_pickle_key,
        cross_signing_key=hs.secrets.bot_cross_signing_key,
    )
    await app.start()
    nurse = await nurse_client(hs, tmp / "nurse")
    clients: list[JsClient] = []
    try:
        dm = (await nurse.room_create(invite=[hs.bot_user_id], is_direct=True)).room_id
        await until(lambda: _synced_member(nurse, dm, hs.bot_user_id), "bot dans la DM")
        await say(nurse, dm, "!patient nouveau Banc d'essai historique")
        room_id = await until(lambda: _first_invite(nurse), "salon patient")
        await nurse.join(room_id)
        await until(lambda: _synced_member(nurse, room_id, hs.bot_user_id), "salon rejoint")
        start = time.perf_counter()
        for n in range(1, messages + 1):
            await say(nurse, room_id, f"message {n} de l'historique")
        print(f"{messages} messages écrits en {time.perf_counter() - start:.1f} s")

        reader = await js(hs, tmp / "js-reader.log", cross_sign=True)
        blind = await js(hs, tmp / "js-blind.log", cross_sign=False)
        clients += [reader, blind]
        for newcomer in (reader, blind):
            await say(nurse, room_id, f"!inviter {newcomer.user_id}")
            await newcomer.call("waitInvite", roomId=room_id, timeoutMs=60000)

        joined = time.perf_counter()
        await reader.call("join", roomId=room_id)
        # the sender must see the join before sending, or the room key is not shared with
        # the newcomer (any client: keys go to the members it knows); part of the limit
        await until(lambda: _synced_member(nurse, room_id, reader.user_id), "arrivée vue")
        await say(nurse, room_id, "nouveau message après l'arrivée")
        await reader.call(
            "waitMessage", roomId=room_id, contains="après l'arrivée", timeoutMs=120000
        )
        fresh = time.perf_counter() - joined
        await reader.call(
            "waitMessage", roomId=room_id, contains=f"message {messages} de", timeoutMs=300000
        )
        bundle = time.perf_counter() - joined

        joined = time.perf_counter()
        await blind.call("join", roomId=room_id)
        direct = (await blind.call("waitInvite", timeoutMs=300000))["roomId"]
        await blind.call("join", roomId=direct)
        await blind.call(
            "waitMessage", roomId=direct, contains="Historique de la conversation", timeoutMs=600000
        )
        transcript = time.perf_counter() - joined

        bare = await _bare_transcript(app, room_id, tmp)
        print(f"salon de {messages} messages (machine : charge {_load()}) :")
        print(f"  arrivée → nouveau message lisible (limite physique)  {fresh:7.2f} s")
        print(
            f"  arrivée → historique lisible (lot MSC4268)           {bundle:7.2f} s"
            f"  (x{bundle / fresh:.1f})"
        )
        print(
            f"  arrivée → transcription PDF reçue (repli)            {transcript:7.2f} s"
            f"  dont {grace:g} s d'attente configurée"
        )
        print(
            f"  lecture + rendu seuls du même historique             {bare:7.2f} s"
            f"  (x{(transcript - grace) / bare:.1f} hors attente)"
        )
    finally:
        for client in clients:
            await client.close()
        await nurse.close()
        await app.stop()


async def _bare_transcript(app: BotApp, room_id: str, tmp: Path) -> float:
    """Fetch and render the room's history, without sending: the work the fallback needs."""
    from datetime import UTC, datetime

    import aiohttp

    from bots.export.history import HistoryRequest, fetch_history
    from bots.export.media import MediaFetcher
    from bots.export.pdf import render_transcript
    from bots.export.transcript import TranscriptHeader

    start = time.perf_counter()
    async with aiohttp.ClientSession() as session:
        media = MediaFetcher(session, app.config.homeserver_url, str(app.client.access_token), tmp)
        history = await fetch_history(app.client, HistoryRequest(room_id), media)
    header = TranscriptHeader(
        room_label="banc",
        period_label="tout",
        exported_by="banc",
        exported_at=datetime.now(UTC),
        participants=history.participants,
    )
    await asyncio.to_thread(render_transcript, header, history.entries, tmp / "banc.pdf")
    return time.perf_counter() - start


def _load() -> str:
    one, five, _ = Path("/proc/loadavg").read_text().split()[:3]
    return f"{one} (1 min), {five} (5 min)"


async def _synced_member(client: AsyncClient, room_id: str, user: str) -> bool:
    await client.sync(timeout=200)
    room = client.rooms.get(room_id)
    return bool(room and user in room.users and user not in room.invited_users)


async def _first_invite(client: AsyncClient) -> str | None:
    await client.sync(timeout=200)
    return next(iter(client.invited_rooms), None)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--grace", type=float, default=5.0)
    args = parser.parse_args()
    missing = js_available()
    if missing:
        sys.exit(f"banc impossible : {missing}")
    with tempfile.TemporaryDirectory(prefix="cercle-banc-arrivee-") as tmp:
        hs = start_synapse(Path(tmp) / "var")
        try:
            asyncio.run(run(hs, Path(tmp), args.messages, args.grace))
        finally:
            hs.stop()


if __name__ == "__main__":
    main()
