#!/usr/bin/env python3
"""Benchmark of the crypto extensions nio lacks (no server: real nio Olm machines in memory).

    .venv/bin/python bench/shared_history.py [--recipients 200] [--sessions 2000]

Prints, each beside its physical limit measured in the same run:
* sharing one Megolm session with N devices through the patched ``Olm._olm_encrypt``
  (shared-history flag + ``sender_device_keys``) vs nio's original method;
* building an MSC4268 bundle of S sessions (export at first known index, JSON, AES-CTR
  attachment encryption) vs bare ``export_session`` of the same sessions;
* canonical-JSON signing of a device-keys object (cross-signing) per call.
Goal: the patched key sharing <= 1.2x nio's own; a 2,000-session bundle in < 1 s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nio.crypto import Olm
from nio.crypto.attachments import encrypt_attachment
from nio.crypto.device import OlmDevice
from nio.store import SqliteMemoryStore

from bots.matrix.cross_signing import CrossSigningKeys, sign_device_keys
from bots.matrix.history import SessionLedger, SharedHistory
from bots.matrix.history_bundles import build_bundle, room_sessions

ROOM = "!bench:cercle.test"
BOT = "@cercle-bot:cercle.test"


def machine(user_id: str, device_id: str) -> Olm:
    return Olm(user_id, device_id, SqliteMemoryStore(user_id, device_id, "bench"))


def bot_with_recipients(n: int) -> tuple[Olm, list[str]]:
    bot = machine(BOT, "BOTDEV")
    users = []
    for i in range(n):
        peer = machine(f"@pro{i}:cercle.test", f"DEV{i}")
        peer.account.generate_one_time_keys(1)
        otk = next(iter(peer.account.one_time_keys["curve25519"].values()))
        keys = peer.account.identity_keys
        device = OlmDevice(
            peer.user_id,
            peer.device_id,
            {"ed25519": keys["ed25519"], "curve25519": keys["curve25519"]},
        )
        bot.device_store.add(device)
        bot.store.save_device_keys({device.user_id: {device.device_id: device}})
        bot.create_session(otk, device.curve25519)
        users.append(peer.user_id)
    return bot, users


def time_share(bot: Olm, users: list[str], rounds: int) -> list[float]:
    out = []
    for _ in range(rounds):
        bot.create_outbound_group_session(ROOM)
        start = time.perf_counter()
        bot.share_group_session(ROOM, users, ignore_unverified_devices=True)
        out.append(time.perf_counter() - start)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--recipients", type=int, default=200)
    parser.add_argument("--sessions", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()

    bot, users = bot_with_recipients(args.recipients)
    bot._maxToDeviceMessagesPerRequest = args.recipients + 1  # one batch, like a big room
    nio_times = time_share(bot, users, args.rounds)
    state = SharedHistory(bot, {ROOM: "shared"}.get, SessionLedger(None)).install()
    state.sender_device_keys = {"user_id": BOT, "device_id": "BOTDEV", "keys": {}, "signatures": {}}
    patched_times = time_share(bot, users, args.rounds)
    nio_med, patched_med = statistics.median(nio_times), statistics.median(patched_times)
    print(f"partage d'une clé Megolm avec {args.recipients} appareils (médiane de {args.rounds}) :")
    print(f"  nio d'origine          {nio_med * 1000:8.2f} ms")
    print(f"  avec drapeau + MSC4147 {patched_med * 1000:8.2f} ms  (x{patched_med / nio_med:.2f})")

    for _ in range(args.sessions - args.rounds):
        bot.create_outbound_group_session(ROOM)
        state.settle_current_session(ROOM)
    sessions = room_sessions(bot, ROOM)
    for session in sessions:
        if state.ledger.get(session.id) is None:
            state.ledger.record(session.id, ROOM, True)
    start = time.perf_counter()
    for session in sessions:
        session.export_session(session.first_known_index)
    bare = time.perf_counter() - start
    start = time.perf_counter()
    bundle = build_bundle(sessions, room_id=ROOM, own_device_id="BOTDEV", ledger=state.ledger)
    blob = json.dumps(bundle).encode()
    ciphertext, _ = encrypt_attachment(blob)
    full = time.perf_counter() - start
    print(f"lot MSC4268 de {len(sessions)} sessions ({len(ciphertext) / 1024:.0f} Kio chiffrés) :")
    print(f"  export_session seul    {bare * 1000:8.1f} ms")
    print(f"  lot complet chiffré    {full * 1000:8.1f} ms  (x{full / bare:.2f})")

    keys = CrossSigningKeys.generate()
    device = {
        "user_id": BOT,
        "device_id": "BOTDEV",
        "algorithms": ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
        "keys": {"curve25519:BOTDEV": "x" * 43, "ed25519:BOTDEV": "y" * 43},
    }
    n = 2000
    start = time.perf_counter()
    for _ in range(n):
        sign_device_keys(device, BOT, keys)
    print(
        f"signature JSON canonique d'un appareil : {(time.perf_counter() - start) / n * 1e6:.0f} µs"
    )


if __name__ == "__main__":
    main()
