"""The coordination bot as a process (logging, signals, exit status), until SIGTERM /
SIGINT; ``python -m bots`` starts it through `deployment.startup`. `serve` and
`stop_on_signals` serve the mail bridge's process too."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable
from typing import Protocol

from bots.app import BotApp
from bots.config import BotConfig
from bots.matrix.session import SessionError
from deployment.incidents import configure_logging
from deployment.processes import PRIVATE_UMASK
from deployment.profile import ProfileError, load_profile
from deployment.secrets import Secrets

log = logging.getLogger("bots")


class Service(Protocol):
    async def start(self) -> None: ...

    async def wait(self) -> None: ...

    async def stop(self) -> None: ...


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGTERM / SIGINT (installed before anything starts)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def serve(app: Service, stop: asyncio.Event, started: Callable[[], None]) -> None:
    """Start ``app``; run it until ``stop`` is set or it fails; stop it in every case
    (the bot and the mail bridge)."""
    try:
        await app.start()
        started()
        running = asyncio.create_task(app.wait())
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait([running, stopping], return_when=asyncio.FIRST_COMPLETED)
        if running.done():
            running.result()
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
    finally:
        await app.stop()


async def run() -> int:
    profile = load_profile()
    secrets = Secrets.load_or_create(profile.var_dir)
    config = BotConfig.from_profile(profile)
    stop = stop_on_signals()
    app = await BotApp.create(
        config,
        password=secrets.bot_password,
        pickle_key=secrets.bot_pickle_key,
        cross_signing_key=secrets.bot_cross_signing_key,
    )

    def started() -> None:  # after the first sync is handled: the readiness signal
        config.ready_file.write_text(str(os.getpid()), encoding="utf-8")
        log.info("bot démarré : %s (appareil %s)", config.user_id, app.client.device_id)

    config.ready_file.unlink(missing_ok=True)
    try:
        await serve(app, stop, started)
    finally:
        config.ready_file.unlink(missing_ok=True)
    log.info("bot arrêté")
    return 0


def main() -> int:
    os.umask(PRIVATE_UMASK)  # its crypto store, outbox and spool: the service user's alone
    configure_logging(root="WARNING", levels={"bots": "INFO"})
    try:
        return asyncio.run(run())
    except (ProfileError, SessionError) as exc:
        print(f"cercle-bot : {exc}", file=sys.stderr)
        return 1
