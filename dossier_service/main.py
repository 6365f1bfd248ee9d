"""The dossier service as a process; ``python -m dossier_service`` starts it (through
`deployment.startup`) from the deployment profile.

Reads ``deployment.profile.load_profile()`` and the secrets under ``var/secrets``, applies
the Alembic migrations (``upgrade head``), then serves on ``dossier.bind_address:port``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path
from secrets import token_urlsafe
from typing import Any

from aiohttp import web

from bridges.mail.control_client import SECRET_FILE as CONTROL_SECRET
from bridges.mail.control_client import MailBridgeClient, bridge_enabled, control_socket_path
from deployment.incidents import configure_logging
from deployment.processes import PRIVATE_UMASK
from deployment.profile import ProfileError, load_profile
from deployment.secrets import read_or_create
from dossier_service import memory
from dossier_service.app import Extension, create_app
from dossier_service.config import DossierConfig, config_from_profile
from dossier_service.directory import web as directory_web
from dossier_service.directory.legacy import LegacyError, import_legacy_database
from dossier_service.migrate import upgrade
from dossier_service.web import courriers

log = logging.getLogger("dossier_service")


async def _serve(config_root: Path | None) -> None:
    from deployment.secrets import Secrets

    profile = load_profile(root=config_root)
    secrets = Secrets.load_or_create(profile.var_dir)
    config = config_from_profile(profile, secrets)
    await upgrade(config.database_url)
    # a directory of before issue 14 (its own annuaire.db) is copied in once
    await asyncio.to_thread(
        import_legacy_database, config.database_url, config.directory.legacy_database
    )
    config.documents_dir.mkdir(parents=True, exist_ok=True)
    app = create_app(
        config, extensions=_extensions(profile, secrets, config, region=profile.is_region)
    )
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    memory.settle_after_startup()
    site = web.TCPSite(runner, config.bind_address, config.port)
    await site.start()
    log.info("dossier prêt sur %s", config.public_url)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def _extensions(
    profile: Any, secrets: Any, config: DossierConfig, *, region: bool = False
) -> list[Extension]:
    """The professional directory (issue 7) lives in the same process and database; the
    Courriers page (issue 16) when the mail bridge is enabled."""

    def mount_directory(app: web.Application) -> None:
        directory_web.setup(app, config)

    extensions: list[Extension] = [mount_directory]
    if bridge_enabled(profile):  # the Courriers page talks to the bridge's control socket
        client = MailBridgeClient(
            control_socket_path(profile.var_dir),
            read_or_create(secrets.directory, CONTROL_SECRET, lambda: token_urlsafe(32)),
        )
        extensions.append(lambda app: courriers.setup(app, client))
    else:
        extensions.append(courriers.setup_off)
    return extensions


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dossier_service", description="Service dossier de Cercle"
    )
    parser.add_argument("--root", type=Path, default=None, help="racine du projet (config/, var/)")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    os.umask(PRIVATE_UMASK)  # its database, documents and logs: the service user's alone
    configure_logging(root=args.log_level, levels={"aiohttp.access": "WARNING"})
    try:
        asyncio.run(_serve(args.root))
    except ProfileError as exc:
        print(f"configuration invalide : {exc}", file=sys.stderr)
        return 1
    except LegacyError as exc:
        print(f"annuaire : {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0
