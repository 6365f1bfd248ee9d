"""Cross-signing against the real Synapse: published keys, device signature, idempotence."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from nio import AsyncClient, AsyncClientConfig

from bots.matrix.cross_signing import (
    CrossSigningError,
    cross_sign,
    ensure_cross_signed,
    load_or_create_keys,
    published_key,
    verify_signature,
)

pytestmark = pytest.mark.integration
SECRET = "clé-de-test"


def keys_query(base_url: str, token: str, user_id: str) -> dict[str, Any]:
    req = urllib.request.Request(
        f"{base_url}/_matrix/client/v3/keys/query",
        data=json.dumps({"device_keys": {user_id: []}}).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        return dict(json.loads(resp.read()))


@asynccontextmanager
async def second_device(synapse: Any, user: Any, store: Path) -> AsyncIterator[AsyncClient]:
    """Log the same account in again: a new device with its own store (closed after)."""
    store.mkdir(parents=True, exist_ok=True)
    client = AsyncClient(
        synapse.base_url,
        user.user_id,
        store_path=str(store),
        config=AsyncClientConfig(encryption_enabled=True),
    )
    try:
        await client.login(user.password, device_name="second")
        await client.keys_upload()
        yield client
    finally:
        await client.close()


@asynccontextmanager
async def same_device_again(
    synapse: Any, user: Any, client: AsyncClient
) -> AsyncIterator[AsyncClient]:
    """A new client object on ``client``'s device and store, as after a restart (closed
    after)."""
    restarted = AsyncClient(
        synapse.base_url,
        user.user_id,
        device_id=client.device_id,
        store_path=client.store_path,
        config=AsyncClientConfig(encryption_enabled=True),
    )
    restarted.restore_login(user.user_id, client.device_id, client.access_token)
    try:
        yield restarted
    finally:
        await restarted.close()


async def test_device_ends_up_signed_and_visible_to_others(
    synapse, user_factory, nio_client_factory, tmp_path
) -> None:
    owner = user_factory()
    observer = user_factory()
    client = await nio_client_factory(owner)
    key_file = tmp_path / "var" / "bot" / "cross_signing.json"

    first = await cross_sign(client, key_file=key_file, encryption_key=SECRET, password="x")
    assert (first.uploaded_keys, first.signed_device, first.created_key_file) == (
        True,
        True,
        True,
    )
    assert key_file.stat().st_mode & 0o777 == 0o600

    keys, _ = load_or_create_keys(key_file, user_id=owner.user_id, encryption_key=SECRET)
    seen = keys_query(synapse.base_url, observer.access_token, owner.user_id)
    master = seen["master_keys"][owner.user_id]
    self_signing = seen["self_signing_keys"][owner.user_id]
    assert published_key(master) == keys.master_public
    assert published_key(self_signing) == keys.self_signing_public
    assert verify_signature(self_signing, owner.user_id, keys.master_public, keys.master_public)
    device = seen["device_keys"][owner.user_id][client.device_id]
    ssk = keys.self_signing_public
    assert verify_signature(device, owner.user_id, ssk, ssk)
    # the device's own signature is still there and valid
    ed = device["keys"][f"ed25519:{client.device_id}"]
    assert verify_signature(device, owner.user_id, client.device_id, ed)

    # second call with the same file: nothing to do
    again = await cross_sign(client, key_file=key_file, encryption_key=SECRET, password="x")
    assert (again.uploaded_keys, again.signed_device, again.created_key_file) == (
        False,
        False,
        False,
    )

    # restart: a new client object on the same device and store reuses the keys
    async with same_device_again(synapse, owner, client) as restarted:
        await ensure_cross_signed(restarted, key_file=key_file, encryption_key=SECRET, password="x")
        after = keys_query(synapse.base_url, observer.access_token, owner.user_id)
        assert after["master_keys"] == seen["master_keys"]
        assert after["self_signing_keys"] == seen["self_signing_keys"]


async def test_new_device_of_the_same_account_is_signed_with_the_same_keys(
    synapse, user_factory, nio_client_factory, tmp_path
) -> None:
    owner = user_factory()
    client = await nio_client_factory(owner)
    key_file = tmp_path / "xs.json"
    await ensure_cross_signed(client, key_file=key_file, encryption_key=SECRET, password="x")
    async with second_device(synapse, owner, tmp_path / "second") as other:
        outcome = await cross_sign(other, key_file=key_file, encryption_key=SECRET, password="x")
        assert (outcome.uploaded_keys, outcome.signed_device) == (False, True)
        keys, _ = load_or_create_keys(key_file, user_id=owner.user_id, encryption_key=SECRET)
        seen = keys_query(synapse.base_url, owner.access_token, owner.user_id)
        ssk = keys.self_signing_public
        for device_id in (client.device_id, other.device_id):
            assert verify_signature(
                seen["device_keys"][owner.user_id][device_id], owner.user_id, ssk, ssk
            )


async def test_other_master_key_on_the_server_fails_loudly(
    user_factory, nio_client_factory, tmp_path, caplog
) -> None:
    owner = user_factory()
    client = await nio_client_factory(owner)
    await ensure_cross_signed(
        client, key_file=tmp_path / "a.json", encryption_key=SECRET, password="x"
    )
    with pytest.raises(CrossSigningError, match="autre clé maîtresse"):
        await ensure_cross_signed(
            client, key_file=tmp_path / "b.json", encryption_key=SECRET, password="x"
        )
    assert "autre clé maîtresse" in caplog.text
    # a wrong secret never silently creates new keys either
    with pytest.raises(CrossSigningError):
        await ensure_cross_signed(
            client, key_file=tmp_path / "a.json", encryption_key="mauvaise", password="x"
        )
