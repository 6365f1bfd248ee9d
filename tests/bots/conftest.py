"""Fixtures for the bot's integration tests: the bot running in-process on the test's event
loop against the session's real Synapse, and professionals as real E2EE nio clients."""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from nio import (
    AsyncClient,
    InviteMemberEvent,
    MatrixRoom,
    MegolmEvent,
    RoomCreateResponse,
    RoomSendResponse,
    SyncResponse,
)
from support import encrypted_room_state, send_message

from bots.app import BotApp
from bots.config import BotConfig, EscalationConfig


def make_bot_config(synapse: Any, data_dir: Path, **overrides: Any) -> BotConfig:
    # one device per data directory: a new crypto store never reuses a device id
    device = "CERCLEBOT" + secrets.token_hex(3).upper()
    base: dict[str, Any] = {
        "data_dir": data_dir,
        "device_id": device,
        "sync_timeout_ms": 5_000,
        "backoff_max_seconds": 2.0,
        # one bot identity for the whole test session (as `cercle up` keeps)
        "cross_signing_key_path": synapse.var_dir / "bot" / "cross_signing.enc",
    }
    base.update(overrides)
    return BotConfig.from_profile(synapse.profile, **base)


@dataclass
class BotRunner:
    synapse: Any
    config: BotConfig
    app: BotApp | None = None

    async def start(self) -> BotApp:
        account = self.synapse.secrets.bot_account(self.config.shard)  # the front's: bot_*
        self.app = await BotApp.create(
            self.config,
            password=account.password,
            pickle_key=account.pickle_key,
            cross_signing_key=account.cross_signing_key,
        )
        await self.app.start()
        return self.app

    async def stop(self) -> None:
        if self.app is not None:
            app, self.app = self.app, None
            await app.stop()

    async def kill(self) -> None:
        """Stop abruptly: no draining (a crash in the middle of handling)."""
        if self.app is not None:
            app, self.app = self.app, None
            await app.close()


@pytest.fixture
def bot_data_dir(tmp_path: Path) -> Path:
    return tmp_path / "bot"


@pytest.fixture
async def bot_factory(synapse: Any, bot_data_dir: Path) -> AsyncIterator[Callable[..., BotRunner]]:
    runners: list[BotRunner] = []

    def make(data_dir: Path | None = None, **overrides: Any) -> BotRunner:
        runner = BotRunner(synapse, make_bot_config(synapse, data_dir or bot_data_dir, **overrides))
        runners.append(runner)
        return runner

    yield make
    for runner in runners:
        await runner.stop()


@pytest.fixture
async def bot(bot_factory: Callable[..., BotRunner]) -> AsyncIterator[BotRunner]:
    runner = bot_factory(escalation=EscalationConfig(interval_minutes=10, max_reminders=6))
    await runner.start()
    yield runner


WELCOME = "Bonjour, je suis le bot Cercle."  # bots.handlers.welcome_text
_TIMELINE_FILTER = {"room": {"timeline": {"limit": 200}}}


@dataclass
class Pro:
    """A professional's E2EE client that records every timeline event it sees."""

    client: AsyncClient
    events: dict[str, list[Any]] = field(default_factory=dict)

    @property
    def user_id(self) -> str:
        return str(self.client.user_id)

    async def sync_once(self, timeout_ms: int = 500) -> None:
        # a long timeline per sync: a burst of messages between two syncs (Synapse returns
        # a "limited" timeline of 10 by default) must not hide the earlier ones from the test
        resp = await self.client.sync(timeout=timeout_ms, sync_filter=_TIMELINE_FILTER)
        if not isinstance(resp, SyncResponse):
            return
        for room_id, info in resp.rooms.join.items():
            self.events.setdefault(room_id, []).extend(info.timeline.events)
        if resp.to_device_events:
            self._decrypt_late()
        for room_id, info in resp.rooms.invite.items():
            for ev in info.invite_state:
                if isinstance(ev, InviteMemberEvent) and ev.state_key == self.user_id:
                    await self.client.join(room_id)
        if self.client.should_query_keys:
            await self.client.keys_query()

    def _decrypt_late(self) -> None:
        """As Element does: a message whose room key came after it (a later to-device
        message) is decrypted then, in place, instead of staying unreadable."""
        for room_events in self.events.values():
            for i, ev in enumerate(room_events):
                if isinstance(ev, MegolmEvent):
                    try:
                        room_events[i] = self.client.decrypt_event(ev)
                    except Exception:  # EncryptionError: still no key for it
                        continue

    def seen(self, room_id: str, start: int = 0, last: int = 8) -> str:
        """What the room's timeline held, for a failure's message: each event's type, sender
        and notice or text start, the undecryptable ones counted."""
        events = self.events.get(room_id, [])[start:]
        lines = [
            f"{type(ev).__name__} {ev.sender} "
            + str(ev.source.get("content", {}).get("body", ""))[:80].replace("\n", " ")
            for ev in events[-last:]
        ]
        unreadable = sum(isinstance(ev, MegolmEvent) for ev in events)
        return f"{len(events)} événements, {unreadable} indéchiffrables ; derniers : " + " | ".join(
            lines
        )

    async def wait_for(
        self, room_id: str, predicate: Callable[[Any], bool], timeout: float = 45.0, start: int = 0
    ) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            for ev in self.events.get(room_id, [])[start:]:
                if predicate(ev):
                    return ev
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"événement attendu non reçu dans {room_id} ({self.seen(room_id, start)})"
                )
            await self.sync_once()

    async def wait_notice(
        self, room_id: str, contains: str, timeout: float = 45.0, start: int = 0
    ) -> Any:
        def is_notice(ev: Any) -> bool:
            content = ev.source.get("content", {})
            return content.get("msgtype") == "m.notice" and contains in content.get("body", "")

        return await self.wait_for(room_id, is_notice, timeout, start)

    async def bot_notices_so_far(self, room_id: str, bot_id: str) -> list[str]:
        """The bot's notices in the room (as ``notices``) once it has handled everything said
        there before this call. The bot handles a room's events one after the other, so its
        answer to a new command comes after every reply, wanted or duplicated, to the earlier
        ones: a barrier, where a fixed sleep only hoped the bot was done. The barrier's own
        command and answer are left out."""
        start = self.mark(room_id)
        barrier = await self.say(room_id, "!aide demande")

        def answers_barrier(ev: Any) -> bool:
            content = ev.source.get("content", {})
            return (
                content.get("m.relates_to", {}).get("m.in_reply_to", {}).get("event_id") == barrier
                and content.get("msgtype") == "m.notice"
            )

        answer = await self.wait_for(room_id, answers_barrier, start=start)
        return [
            body
            for ev in self.events.get(room_id, [])
            if ev is not answer and ev.sender == bot_id
            for body in [ev.source.get("content", {}).get("body", "")]
            if ev.source.get("content", {}).get("msgtype") == "m.notice"
            and not body.startswith(WELCOME)
        ]

    def mark(self, room_id: str) -> int:
        return len(self.events.get(room_id, []))

    def notices(self, room_id: str, sender: str | None = None) -> list[str]:
        """The notices seen in the room (the bot's greeting of a new direct chat aside)."""
        return [
            ev.source["content"]["body"]
            for ev in self.events.get(room_id, [])
            if ev.source.get("content", {}).get("msgtype") == "m.notice"
            and (sender is None or ev.sender == sender)
            and not ev.source["content"]["body"].startswith(WELCOME)
        ]

    async def create_room(
        self, *, invite: list[str], name: str | None = None, direct: bool = False
    ) -> str:
        resp = await self.client.room_create(
            name=name,
            invite=invite,
            is_direct=direct,
            initial_state=encrypted_room_state(),
        )
        assert isinstance(resp, RoomCreateResponse), resp
        await self.sync_once(0)
        return str(resp.room_id)

    async def wait_member(self, room_id: str, user_id: str, timeout: float = 45.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            room: MatrixRoom | None = self.client.rooms.get(room_id)
            if room is not None and user_id in room.users and user_id not in room.invited_users:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"{user_id} n'a pas rejoint {room_id}")
            await self.sync_once()

    async def say(self, room_id: str, body: str, content: dict[str, Any] | None = None) -> str:
        return await send_message(
            self.client, room_id, content or {"msgtype": "m.text", "body": body}
        )

    async def react(self, room_id: str, event_id: str, key: str = "👍") -> str:
        resp = await self.client.room_send(
            room_id,
            "m.reaction",
            {"m.relates_to": {"rel_type": "m.annotation", "event_id": event_id, "key": key}},
            ignore_unverified_devices=True,
        )
        assert isinstance(resp, RoomSendResponse), resp
        return str(resp.event_id)

    def undecrypted(self, room_id: str) -> list[Any]:
        return [ev for ev in self.events.get(room_id, []) if isinstance(ev, MegolmEvent)]


@pytest.fixture
async def pro_factory(nio_client_factory: Callable[..., Any]) -> Callable[..., Any]:
    async def make(user: Any = None) -> Pro:
        return Pro(await nio_client_factory(user))

    return make


async def dm_with_bot(pro: Pro, bot_user_id: str) -> str:
    """A direct chat between ``pro`` and the bot, the bot joined."""
    room_id = await pro.create_room(invite=[bot_user_id], direct=True)
    await pro.wait_member(room_id, bot_user_id)
    return room_id


def room_id_in(body: str) -> str:
    link = next(w for w in body.split() if w.startswith("https://matrix.to/#/!"))
    return link.split("#/")[1].split("?")[0]


async def patient_room_with(
    alice: Pro, others: list[Pro], bot_user_id: str, label: str = "Suivi test"
) -> str:
    """A patient room created by ``alice`` through the bot, ``others`` invited by `!inviter`."""
    dm = await dm_with_bot(alice, bot_user_id)
    await alice.say(dm, f"!patient nouveau {label}")
    notice = await alice.wait_notice(dm, f"Salon patient « {label} » créé")
    room_id = room_id_in(notice.source["content"]["body"])
    await alice.wait_member(room_id, alice.user_id)
    for other in others:
        start = alice.mark(room_id)
        await alice.say(room_id, f"!inviter {other.user_id}")
        await alice.wait_notice(room_id, "a été invité(e)", start=start)
        await other.wait_member(room_id, other.user_id)
        await alice.wait_member(room_id, other.user_id)
    return room_id
