"""Fixtures of the mail bridge's tests: real Dovecot + submission relay (TLS, a CA made by
the test), the session's real Synapse, the bridge running in-process on the test's loop."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from mail_servers import MailServers, dovecot_available, start_mail_servers

from bridges.mail.account import (
    CROSS_SIGNING_SECRET,
    PASSWORD_SECRET,
    PICKLE_SECRET,
    bridge_secret,
    ensure_bridge_account,
)
from bridges.mail.app import MailBridge
from bridges.mail.config import MailBridgeConfig
from bridges.mail.vault import CredentialVault
from tests.dossier_link.conftest import dossier_server, dossier_template

BRIDGE_LOCALPART = "cercle-courrier"
__all__ = ["dossier_server", "dossier_template"]  # the real dossier, for !classer


@pytest.fixture(scope="session")
def mail_servers() -> Iterator[MailServers]:
    if not dovecot_available():
        pytest.skip("dovecot absent : « make test » en root l'installe (dovecot-imapd)")
    servers = start_mail_servers()
    try:
        yield servers
    finally:
        servers.stop()


@pytest.fixture(scope="session")
def bridge_account(synapse: Any) -> str:
    user_id = f"@{BRIDGE_LOCALPART}:{synapse.server_name}"
    asyncio.run(
        ensure_bridge_account(
            synapse.base_url,
            synapse.admin_token,
            synapse.secrets,
            user_id=user_id,
            display_name="Courriers",
        )
    )
    return user_id


_mailbox_counter = iter(range(1, 10_000))


@pytest.fixture
def mailbox_factory(mail_servers: MailServers) -> Callable[[], tuple[str, str]]:
    def make() -> tuple[str, str]:
        address = f"pro{next(_mailbox_counter)}-{secrets.token_hex(3)}@mss.test"
        password = secrets.token_urlsafe(12)
        mail_servers.add_mailbox(address, password)
        return address, password

    return make


@dataclass
class BridgeRunner:
    synapse: Any
    config: MailBridgeConfig
    bridge: MailBridge | None = None

    async def start(self) -> MailBridge:
        secrets_ = self.synapse.secrets
        self.bridge = await MailBridge.create(
            self.config,
            password=bridge_secret(secrets_, PASSWORD_SECRET),
            pickle_key=bridge_secret(secrets_, PICKLE_SECRET),
            cross_signing_key=bridge_secret(secrets_, CROSS_SIGNING_SECRET),
            vault=CredentialVault.from_secrets_dir(secrets_.directory),
            dossier_token=getattr(self, "dossier_token", None),
            control_secret=getattr(self, "control_secret", None),
        )
        await self.bridge.start()
        return self.bridge

    async def stop(self) -> None:
        if self.bridge is not None:
            bridge, self.bridge = self.bridge, None
            await bridge.stop()

    async def kill(self) -> None:
        """Abruptly: every task cancelled where it stands, nothing drained or recorded."""
        if self.bridge is not None:
            bridge, self.bridge = self.bridge, None
            if bridge._control_runner is not None:
                await bridge._control_runner.cleanup()
            bridge.sync_loop.stop()
            watchers = list(bridge.mailboxes.watchers.values())
            for task in [*watchers, *bridge._tasks]:  # all at once: none finishes its work
                task.cancel()
            await asyncio.gather(*watchers, return_exceptions=True)
            await bridge.close()


def make_bridge_config(
    synapse: Any, servers: MailServers, data_dir: Path, **overrides: Any
) -> MailBridgeConfig:
    base: dict[str, Any] = dict(
        homeserver_url=synapse.base_url,
        server_name=synapse.server_name,
        user_id=f"@{BRIDGE_LOCALPART}:{synapse.server_name}",
        # one device per data directory: a new crypto store never reuses a device id
        device_id="COURRIER" + secrets.token_hex(3).upper(),
        display_name="Courriers",
        data_dir=data_dir,
        imap_host="127.0.0.1",
        imap_port=servers.imap_port,
        smtp_host="127.0.0.1",
        smtp_port=servers.smtp_port,
        ca_file=servers.ca_file,
        backfill=0,
        sync_timeout_ms=5_000,
        backoff_max_seconds=2.0,
        # one bridge identity for the whole test session (as `cercle up` keeps)
        cross_signing_key_path=synapse.var_dir / "mail" / "cross_signing.enc",
    )
    base.update(overrides)
    return MailBridgeConfig(**base)


@pytest.fixture
async def bridge_factory(
    synapse: Any, bridge_account: str, mail_servers: MailServers, tmp_path: Path
) -> AsyncIterator[Callable[..., BridgeRunner]]:
    runners: list[BridgeRunner] = []

    def make(data_dir: Path | None = None, **overrides: Any) -> BridgeRunner:
        config = make_bridge_config(
            synapse, mail_servers, data_dir or tmp_path / "mail", **overrides
        )
        runner = BridgeRunner(synapse, config)
        runners.append(runner)
        return runner

    yield make
    for runner in runners:
        await runner.stop()
