"""The Courriers bridge as a process, until SIGTERM / SIGINT; ``python -m bridges.mail``
starts it through `deployment.startup` (``cercle up`` does when ``mail_bridge.enabled``)."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from secrets import token_urlsafe

from bots.main import serve, stop_on_signals
from bots.matrix.session import SessionError
from bridges.mail.account import (
    CROSS_SIGNING_SECRET,
    PASSWORD_SECRET,
    PICKLE_SECRET,
    bridge_secret,
)
from bridges.mail.app import MailBridge
from bridges.mail.config import MailBridgeConfig, bridge_enabled
from bridges.mail.control import SECRET_FILE as CONTROL_SECRET
from bridges.mail.vault import CredentialVault
from deployment.incidents import configure_logging
from deployment.processes import PRIVATE_UMASK
from deployment.profile import ProfileError, load_profile
from deployment.secrets import Secrets, read_or_create

log = logging.getLogger("bridges")


async def run() -> int:
    profile = load_profile()
    if not bridge_enabled(profile):
        raise ProfileError("le pont Courriers est désactivé (mail_bridge.enabled: false)")
    secrets = Secrets.load_or_create(profile.var_dir)
    config = MailBridgeConfig.from_profile(profile)
    stop = stop_on_signals()
    bridge = await MailBridge.create(
        config,
        password=bridge_secret(secrets, PASSWORD_SECRET),
        pickle_key=bridge_secret(secrets, PICKLE_SECRET),
        cross_signing_key=bridge_secret(secrets, CROSS_SIGNING_SECRET),
        vault=CredentialVault.from_secrets_dir(secrets.directory),
        dossier_token=secrets.dossier_service_token,
        control_secret=read_or_create(secrets.directory, CONTROL_SECRET, lambda: token_urlsafe(32)),
    )
    await serve(bridge, stop, lambda: log.info("pont Courriers démarré : %s", config.user_id))
    log.info("pont Courriers arrêté")
    return 0


def main() -> int:
    os.umask(PRIVATE_UMASK)  # its vault, crypto store and mail state: the service user's alone
    configure_logging(root="WARNING", levels={"bots": "INFO", "bridges": "INFO"})
    try:
        return asyncio.run(run())
    except (ProfileError, SessionError) as exc:
        print(f"cercle-courrier : {exc}", file=sys.stderr)
        return 1
