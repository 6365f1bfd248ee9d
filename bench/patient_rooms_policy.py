"""Cost of the patient-room policy on every event Synapse creates.

`check_event_allowed` runs for each new event with the room state before it; the module
filters that state down to the four types it reads, then applies the pure rules. This
prints the time per event for rooms of growing membership, with real Synapse events.

    .venv/bin/python bench/patient_rooms_policy.py
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any
from unittest.mock import Mock

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from synapse.module_api import EventBase, ModuleApi

from homeserver.modules.patient_rooms import PatientRoomsModule
from homeserver.modules.patient_rooms.config import MEGOLM
from tests.homeserver.modules.synapse_events import ev as event


def patient_room(members: int) -> dict[tuple[str, str], EventBase]:
    events = [
        event("m.room.create", {}, ""),
        event("m.room.join_rules", {"join_rule": "invite"}, ""),
        event("m.room.history_visibility", {"history_visibility": "shared"}, ""),
        event("m.room.encryption", {"algorithm": MEGOLM}, ""),
        event("fr.cercle.patient", {"id": "P-BENCH"}, ""),
    ]
    events += [
        event("m.room.member", {"membership": "join"}, f"@pro{i}:cercle.test")
        for i in range(members)
    ]
    return {(e.type, e.get_state_key() or ""): e for e in events}


async def per_call_us(check: Any, new_event: EventBase, state: Any, rounds: int) -> float:
    start = time.perf_counter()
    for _ in range(rounds):
        await check(new_event, state)
    return (time.perf_counter() - start) / rounds * 1e6


async def main() -> None:
    api = Mock(spec=ModuleApi)
    PatientRoomsModule(PatientRoomsModule.parse_config({}), api)
    check = api.register_third_party_rules_callbacks.call_args.kwargs["check_event_allowed"]
    encrypted = event(
        "m.room.encrypted",
        {"algorithm": MEGOLM, "ciphertext": "AwgA", "session_id": "s", "sender_key": "k"},
    )
    plaintext = event("m.room.message", {"msgtype": "m.text", "body": "x"})
    join_rules = event("m.room.join_rules", {"join_rule": "public"}, "")
    print("patient-room policy, time per event (check_event_allowed, real Synapse events)")
    print(f"{'members':>8}  {'encrypted msg':>14}  {'plaintext msg':>14}  {'join_rules':>11}")
    for members in (5, 50, 500, 5000):
        state = patient_room(members)
        rounds = max(200, 200_000 // (members + 5))
        figures = [
            await per_call_us(check, e, state, rounds) for e in (encrypted, plaintext, join_rules)
        ]
        print(f"{members:>8}  " + "  ".join(f"{f:>11.1f} µs" for f in figures))


if __name__ == "__main__":
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    asyncio.run(main())
