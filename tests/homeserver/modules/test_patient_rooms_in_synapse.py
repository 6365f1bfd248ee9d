"""The patient-room module loaded in the real Synapse (the `synapse` session fixture,
rendered like `make up`): forbidden changes get 403 M_FORBIDDEN, E2EE messages pass."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from support import make_test_profile, send_and_decrypt

from deployment.secrets import Secrets
from homeserver.process import HomeserverStartError, SynapseProcess
from homeserver.render import render

pytestmark = pytest.mark.integration

MEGOLM = "m.megolm.v1.aes-sha2"
MARKER = {"type": "fr.cercle.patient", "state_key": "", "content": {"id": "P-TEST"}}
_txn = itertools.count(1)


class Client:
    """Just enough of the client-server API, with the raw status and body."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, token: str) -> None:
        self._session = session
        self._base = f"{base_url}/_matrix/client/v3"
        self._headers = {"Authorization": f"Bearer {token}"}

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, dict[str, Any]]:
        async with self._session.request(
            method, self._base + path, json=body, headers=self._headers
        ) as resp:
            return resp.status, await resp.json()

    async def create_room(self, **body: Any) -> tuple[int, dict[str, Any]]:
        return await self.call("POST", "/createRoom", body)

    async def patient_room(self) -> str:
        status, body = await self.create_room(preset="private_chat", initial_state=[MARKER])
        assert status == 200, body
        return str(body["room_id"])

    async def put_state(
        self, room_id: str, event_type: str, content: dict[str, Any], state_key: str = ""
    ) -> tuple[int, dict[str, Any]]:
        path = f"/rooms/{quote(room_id)}/state/{event_type}/{quote(state_key)}"
        return await self.call("PUT", path, content)

    async def get_state(self, room_id: str, event_type: str) -> tuple[int, dict[str, Any]]:
        return await self.call("GET", f"/rooms/{quote(room_id)}/state/{event_type}/")

    async def send(
        self, room_id: str, event_type: str, content: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        path = f"/rooms/{quote(room_id)}/send/{event_type}/t{next(_txn)}"
        return await self.call("PUT", path, content)


@pytest.fixture
async def client_factory(synapse: Any, user_factory: Callable[..., Any]) -> AsyncIterator[Any]:
    async with aiohttp.ClientSession() as session:

        def make(user: Any = None) -> Client:
            user = user or user_factory()
            return Client(session, synapse.base_url, user.access_token)

        yield make


def forbidden(answer: tuple[int, dict[str, Any]]) -> bool:
    status, body = answer
    return status == 403 and body.get("errcode") == "M_FORBIDDEN"


async def test_patient_room_is_created_encrypted_and_invite_only(client_factory: Any) -> None:
    client = client_factory()
    room_id = await client.patient_room()
    assert await client.get_state(room_id, "m.room.encryption") == (200, {"algorithm": MEGOLM})
    assert await client.get_state(room_id, "m.room.join_rules") == (200, {"join_rule": "invite"})
    status, marker = await client.get_state(room_id, "fr.cercle.patient")
    assert (status, marker) == (200, {"id": "P-TEST"})


@pytest.mark.parametrize(
    ("event_type", "content"),
    [
        ("m.room.encryption", {}),
        ("m.room.encryption", {"algorithm": ""}),
        ("m.room.encryption", {"algorithm": "m.olm.v1.curve25519-aes-sha2"}),
        ("m.room.join_rules", {"join_rule": "public"}),
        ("m.room.join_rules", {"join_rule": "knock"}),
        ("m.room.join_rules", {"join_rule": "knock_restricted", "allow": []}),
        ("m.room.history_visibility", {"history_visibility": "world_readable"}),
    ],
)
async def test_opening_a_patient_room_is_forbidden(
    client_factory: Any, event_type: str, content: dict[str, Any]
) -> None:
    client = client_factory()
    room_id = await client.patient_room()
    assert forbidden(await client.put_state(room_id, event_type, content))
    # Nothing changed.
    assert (await client.get_state(room_id, "m.room.encryption"))[1] == {"algorithm": MEGOLM}
    assert (await client.get_state(room_id, "m.room.join_rules"))[1] == {"join_rule": "invite"}


async def test_allowed_changes_in_a_patient_room_go_through(client_factory: Any) -> None:
    client = client_factory()
    room_id = await client.patient_room()
    status, _ = await client.put_state(
        room_id, "m.room.history_visibility", {"history_visibility": "invited"}
    )
    assert status == 200
    status, _ = await client.put_state(room_id, "m.room.name", {"name": "Suivi plaie"})
    assert status == 200
    status, _ = await client.put_state(room_id, "fr.cercle.patient", {"id": "P-TEST-2"})
    assert status == 200


async def test_patient_room_never_published_in_the_directory(client_factory: Any) -> None:
    client = client_factory()
    room_id = await client.patient_room()
    answer = await client.call(
        "PUT", f"/directory/list/room/{quote(room_id)}", {"visibility": "public"}
    )
    assert forbidden(answer)
    assert (await client.call("GET", f"/directory/list/room/{quote(room_id)}"))[1] == {
        "visibility": "private"
    }


async def test_ordinary_rooms_are_left_to_the_deployment_config(client_factory: Any) -> None:
    """The rendered config denies every publication (room_list_publication_rules), with
    Synapse's own M_UNKNOWN answer: the module's M_FORBIDDEN above is the module's doing."""
    client = client_factory()
    status, body = await client.create_room(preset="private_chat")
    assert status == 200
    status, answer = await client.call(
        "PUT", f"/directory/list/room/{quote(body['room_id'])}", {"visibility": "public"}
    )
    assert (status, answer["errcode"]) == (403, "M_UNKNOWN")


@pytest.mark.parametrize(
    "request_body",
    [
        {"visibility": "public", "preset": "private_chat"},
        {"preset": "public_chat"},
        {
            "preset": "private_chat",
            "initial_state": [
                {
                    "type": "m.room.history_visibility",
                    "content": {"history_visibility": "world_readable"},
                }
            ],
        },
    ],
)
async def test_an_open_patient_room_cannot_be_created(
    client_factory: Any, request_body: dict[str, Any]
) -> None:
    client = client_factory()
    body = dict(request_body)
    body["initial_state"] = [*body.get("initial_state", []), MARKER]
    assert forbidden(await client.create_room(**body))


async def test_a_public_room_cannot_be_marked_as_patient_room(client_factory: Any) -> None:
    client = client_factory()
    status, body = await client.create_room(preset="public_chat")
    assert status == 200
    assert forbidden(await client.put_state(body["room_id"], "fr.cercle.patient", {"id": "P"}))


async def test_plaintext_message_refused_in_a_patient_room(client_factory: Any) -> None:
    client = client_factory()
    room_id = await client.patient_room()
    assert forbidden(
        await client.send(room_id, "m.room.message", {"msgtype": "m.text", "body": "x"})
    )
    assert forbidden(await client.send(room_id, "m.sticker", {"body": "x", "url": "mxc://a/b"}))


async def test_plaintext_message_refused_in_any_encrypted_room(client_factory: Any) -> None:
    client = client_factory()
    status, body = await client.create_room(preset="private_chat")  # encrypted by default
    assert status == 200
    answer = await client.send(
        body["room_id"], "m.room.message", {"msgtype": "m.text", "body": "x"}
    )
    assert forbidden(answer)


async def test_reactions_and_redactions_stay_allowed(client_factory: Any) -> None:
    client = client_factory()
    room_id = await client.patient_room()
    status, name = await client.put_state(room_id, "m.room.topic", {"topic": "t"})
    assert status == 200
    relates = {
        "m.relates_to": {"rel_type": "m.annotation", "event_id": name["event_id"], "key": "👍"}
    }
    status, reaction = await client.send(room_id, "m.reaction", relates)
    assert status == 200
    path = f"/rooms/{quote(room_id)}/redact/{quote(reaction['event_id'])}/r{next(_txn)}"
    assert (await client.call("PUT", path, {}))[0] == 200


async def test_redacting_the_encryption_event_is_forbidden(client_factory: Any) -> None:
    client = client_factory()
    room_id = await client.patient_room()
    status, state = await client.call("GET", f"/rooms/{quote(room_id)}/state")
    assert status == 200
    encryption = next(e for e in state if e["type"] == "m.room.encryption")  # type: ignore[union-attr]
    path = f"/rooms/{quote(room_id)}/redact/{quote(encryption['event_id'])}/r{next(_txn)}"
    assert forbidden(await client.call("PUT", path, {}))


async def test_encrypted_messages_go_through_a_patient_room(nio_client_factory: Any) -> None:
    alice = await nio_client_factory()
    bob = await nio_client_factory()
    created = await alice.room_create(invite=[bob.user_id], initial_state=[MARKER])
    room_id = created.room_id
    await bob.sync(timeout=0)
    await bob.join(room_id)
    await alice.sync(timeout=0)
    assert alice.rooms[room_id].encrypted

    text = "pansement refait, cicatrisation correcte"
    assert await send_and_decrypt(alice, bob, room_id, text) == [text]


def test_synapse_refuses_to_start_with_a_bad_module_config(tmp_path: Any) -> None:
    """parse_config's ConfigError stops Synapse with a message naming the bad key."""
    module = {
        "module": "homeserver.modules.patient_rooms.PatientRoomsModule",
        "config": {"allowed_join_rules": ["invite", "public"]},
    }
    profile = make_test_profile(tmp_path / "var", extra={"homeserver": {"modules": [module]}})
    process = SynapseProcess(render(profile, Secrets.load_or_create(profile.var_dir)))
    try:
        with pytest.raises(HomeserverStartError) as raised:
            process.start(timeout=60)
    finally:
        process.stop()
    log = raised.value.log_path.read_text(encoding="utf-8")
    assert "Error in configuration at 'modules.<item 0>.config.allowed_join_rules'" in log
    assert "une salle patient ne peut pas être « public » (invitation seulement)" in log
