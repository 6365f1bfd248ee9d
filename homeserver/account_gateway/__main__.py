"""``python -m homeserver.account_gateway``: the account gateway on its Unix socket
(started by ``cercle up`` like the other services)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets as _random
import signal
import sys

from aiohttp import web

from deployment.incidents import configure_logging
from deployment.processes import PRIVATE_UMASK
from deployment.profile import ProfileError, load_profile
from deployment.secrets import Secrets, read_or_create
from homeserver.account_gateway import SECRET_FILE, create_gateway_app, socket_path
from homeserver.accounts import ADMIN_TOKEN_FILE
from homeserver.admin_api import AdminApi


async def serve() -> None:
    profile = load_profile()
    secrets = Secrets.load_or_create(profile.var_dir)
    token_path = secrets.path_of(ADMIN_TOKEN_FILE)
    if not token_path.exists():
        raise ProfileError("jeton d'administration absent : lancez Cercle avec « cercle up »")
    secret = read_or_create(secrets.directory, SECRET_FILE, lambda: _random.token_urlsafe(32))
    path = socket_path(profile.var_dir)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    async with AdminApi(profile.admin_url, token_path.read_text().strip()) as admin:
        runner = web.AppRunner(
            create_gateway_app(admin, secret=secret, server_name=profile.server_name),
            access_log=None,
        )
        await runner.setup()
        await web.UnixSite(runner, str(path)).start()
        os.chmod(path, 0o600)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        logging.getLogger(__name__).info("passerelle des comptes prête")
        await stop.wait()
        await runner.cleanup()


def main() -> int:
    os.umask(PRIVATE_UMASK)
    configure_logging(root="INFO")
    try:
        asyncio.run(serve())
    except ProfileError as exc:
        print(f"passerelle des comptes : {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
