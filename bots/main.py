"""The coordination bot as a process (logging, signals, exit status), until SIGTERM /
SIGINT; ``python -m bots`` starts it through `deployment.startup`. `serve` and
`stop_on_signals` serve the mail bridge's process too.

One process per account of the bot (``bot.shards``, bots/shards.py): the supervisor tells
each its shard through ``CERCLE_BOT_SHARD`` (absent: 1, the front)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable, Mapping
from typing import Protocol

from bots.app import BotApp
from bots.config import BotConfig
from bots.matrix.session import SessionError
from deployment.conventions import BOT_SHARD_ENV
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


def shard_from_env(env: Mapping[str, str], count: int) -> int:
    """This process's shard: ``CERCLE_BOT_SHARD`` (absent: 1), a whole number from 1 to the
    profile's ``bot.shards`` (``count``), or a French ProfileError naming both."""
    raw = env.get(BOT_SHARD_ENV)
    if raw is None:
        return 1
    text = raw.strip()
    shard = int(text) if text.isascii() and text.isdigit() else 0
    if not 1 <= shard <= count:
        raise ProfileError(
            f"{BOT_SHARD_ENV} = « {raw} » : numéro de compte du bot invalide, un entier de 1 "
            f"à {count} est attendu (bot.shards du profil : {count})"
        )
    return shard


async def run() -> int:
    profile = load_profile()
    shard = shard_from_env(os.environ, profile.settings.bot.shards)
    config = BotConfig.from_profile(profile, shard=shard)
    account = Secrets.load_or_create(profile.var_dir).bot_account(shard)
    stop = stop_on_signals()
    app = await BotApp.create(
        config,
        password=account.password,
        pickle_key=account.pickle_key,
        cross_signing_key=account.cross_signing_key,
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
