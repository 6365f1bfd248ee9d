"""The consumer of the dossier's event feed (``GET /api/v1/events?after=<seq>``).

Events are handled one at a time, in ``seq`` order; the position is saved in the bot's
SQLite file after each event is fully handled. After a crash the feed is read again from the
saved position: the event that was in progress is handled a second time, so every step of a
handler is idempotent (Matrix sends carry a transaction id derived from the event's ``seq``,
state events are set to a value, invitations and kicks check the membership first). Nothing
is lost, nothing shows twice.

**First start on an existing deployment.** A bot that has no position yet (no cursor saved:
the dossier link was never run with this bot's data) reads the feed from the beginning, so
that nothing structural is missed: a file opened before the bot existed still gets its room,
the care circle still becomes the room's membership, the pinned identity is still written.
But events older than ``quiet_after`` (24 h by default) at that first start are applied
*quietly*: they go to ``quiet_handler`` (the bridge without its notices), so the rooms are not
flooded with weeks-old "document added" notices. Recent events — e.g. a bot deployed together
with the dossier, whose first events are minutes old — are announced as usual. Once the bot
has a position, every event after it is announced, however late (a restart after a long
outage tells what happened meanwhile: nothing is lost).

A dossier that cannot be reached is waited for with back-off; a handler failing on a
transient problem is retried; a handler failing repeatedly on the same event (a "poison"
event) is logged under a reference and skipped after ``max_attempts`` so the feed moves on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from bots.dossier_client import DossierClient
from bots.dossier_link.store import SyncStore
from bots.outbox import Refused, Unavailable, backoff_ms
from deployment.conventions import wait_set
from deployment.incidents import new_reference

log = logging.getLogger(__name__)

Handler = Callable[[Mapping[str, Any]], Awaitable[None]]


class TransientError(Exception):
    """A handler met a passing problem (homeserver away …): retry the same event later."""


class FeedConsumer:
    def __init__(
        self,
        dossier: DossierClient,
        store: SyncStore,
        handler: Handler,
        *,
        poll_seconds: float = 1.0,
        batch: int = 100,
        max_attempts: int = 5,
        max_transient_attempts: int = 15,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        quiet_handler: Handler | None = None,
        quiet_after: timedelta = timedelta(hours=24),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.dossier = dossier
        self.store = store
        self.handler = handler
        self.quiet_handler = quiet_handler
        self.quiet_after = quiet_after
        self._clock = clock
        # decided once, when the consumer is built: the bot had no position in the feed
        self.first_start = not store.has_cursor()
        self.quieted = 0
        self.poll_seconds = poll_seconds
        self.batch = batch
        self.max_attempts = max_attempts
        self.max_transient_attempts = max_transient_attempts
        self._sleep = sleep
        self._wake = asyncio.Event()
        self.handled = 0
        self.skipped = 0

    def wake(self) -> None:
        """Poll now (e.g. the bot just wrote to the dossier)."""
        self._wake.set()

    async def run_once(self) -> int:
        """Handle every event available now; returns how many. Raises Unavailable when the
        dossier cannot be reached."""
        count = 0
        while True:
            events = await self.dossier.events(self.store.cursor(), self.batch)
            if not events:
                return count
            for event in events:
                await self._handle(event)
                count += 1
            if len(events) < self.batch:
                return count

    async def _handle(self, event: Mapping[str, Any]) -> None:
        seq = int(event["seq"])
        if seq <= self.store.cursor():
            return
        handler = self.handler
        if self.quiet_handler is not None and self.is_old_at_first_start(event):
            handler = self.quiet_handler
            self.quieted += 1
        attempt = 0
        while True:
            attempt += 1
            try:
                await handler(event)
                break
            except Unavailable as exc:  # the dossier is away: wait for it, however long
                delay = backoff_ms(attempt, cap_ms=30_000) / 1000
                log.info(
                    "événement du dossier %d : dossier indisponible (%s), réessai dans %.1f s",
                    seq,
                    exc.errcode,
                    delay,
                )
                await self._sleep(delay)
            except TransientError as exc:
                if attempt >= self.max_transient_attempts:
                    log.error(
                        "événement du dossier %d abandonné : problème persistant (%s)", seq, exc
                    )
                    self.skipped += 1
                    break
                delay = backoff_ms(attempt, cap_ms=30_000) / 1000
                log.info(
                    "événement du dossier %d : problème passager (%s), réessai dans %.1f s",
                    seq,
                    type(exc).__name__,
                    delay,
                )
                await self._sleep(delay)
            except asyncio.CancelledError:
                raise
            except Exception:
                ref = new_reference()
                log.exception(
                    "événement du dossier %d (%s) en échec, réf=%s, essai %d",
                    seq,
                    event.get("type"),
                    ref,
                    attempt,
                )
                if attempt >= self.max_attempts:
                    log.error(
                        "événement du dossier %d abandonné après %d essais (réf=%s)",
                        seq,
                        attempt,
                        ref,
                    )
                    self.skipped += 1
                    break
                await self._sleep(backoff_ms(attempt, cap_ms=30_000) / 1000)
        self.store.save_cursor(seq)
        self.handled += 1

    def is_old_at_first_start(self, event: Mapping[str, Any]) -> bool:
        """Applied without announcing: read at the bot's first start and older than
        ``quiet_after``. An event without a readable time is announced."""
        if not self.first_start:
            return False
        at = event_time(event)
        return at is not None and self._clock() - at > self.quiet_after

    async def run(self) -> None:
        """Forever: read the feed, then wait ``poll_seconds`` (or a wake-up)."""
        failures = 0
        while True:
            try:
                await self.run_once()
                failures = 0
                wait = self.poll_seconds
            except Unavailable:
                failures += 1
                wait = backoff_ms(failures, cap_ms=30_000) / 1000
                if failures in (1, 5) or failures % 20 == 0:
                    log.warning("flux du dossier indisponible, nouvel essai dans %.1f s", wait)
            except Refused as exc:  # e.g. a service token the dossier does not know
                failures += 1
                wait = backoff_ms(failures, cap_ms=30_000) / 1000
                if failures in (1, 5) or failures % 20 == 0:
                    log.error(
                        "flux du dossier refusé (%s, %s) : vérifiez le jeton de service",
                        exc.errcode,
                        exc.status,
                    )
            except asyncio.CancelledError:
                raise
            except Exception:
                failures += 1
                wait = backoff_ms(failures, cap_ms=30_000) / 1000
                log.exception("lecture du flux du dossier en échec")
            self._wake.clear()
            await wait_set(self._wake, wait)


def event_time(event: Mapping[str, Any]) -> datetime | None:
    """When the dossier recorded the event (``at``, ISO 8601; UTC when naive)."""
    raw = event.get("at")
    if not isinstance(raw, str):
        return None
    try:
        at = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    return at if at.tzinfo else at.replace(tzinfo=UTC)
