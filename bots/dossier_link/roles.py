"""The care circle's role labels, read from the dossier (one vocabulary, the dossier's own).

The dossier owns the roles (``dossier_service/models/circle.py``) and publishes them in its
catalogue (``/api/v1/catalogue``). The bot keeps no copy: it reads them once and keeps them.

The dossier unreachable when the bot starts: the bot starts anyway (its outbox exists for a
dossier that is away), logs one French line, and reads the labels again with a back-off
until the dossier answers. Meanwhile whatever needs a label waits like any other read of the
file: a command replies that the dossier is momentarily unavailable, a feed event is retried.
A label is never made up. The dossier refusing the read (the bot's token rejected) stops the
bot: without the dossier's trust nothing of the link can work.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from bots.dossier_client import DossierClient
from bots.outbox import Unavailable

log = logging.getLogger(__name__)


class RoleLabels:
    def __init__(self, dossier: DossierClient, *, retry_max_seconds: float = 60.0) -> None:
        self.dossier = dossier
        self.retry_max_seconds = retry_max_seconds
        self._labels: dict[str, str] | None = None

    @property
    def loaded(self) -> bool:
        return self._labels is not None

    async def get(self) -> Mapping[str, str]:
        """The labels (read from the dossier the first time); ``Unavailable`` while it is away."""
        if self._labels is None:
            found = await self.dossier.role_labels()
            if not found:
                raise Unavailable("CERCLE_DOSSIER_NO_ROLES")
            self._labels = found
        return self._labels

    async def load_at_start(self) -> None:
        """A background job: the labels read as soon as the dossier answers."""
        delay, told = 1.0, False
        while not self.loaded:
            try:
                await self.get()
            except Unavailable as exc:
                if not told:
                    log.warning(
                        "dossier injoignable au démarrage (%s) : les libellés des rôles du cercle "
                        "de soins seront lus dès son retour",
                        exc.errcode,
                    )
                    told = True
                await asyncio.sleep(delay)
                delay = min(self.retry_max_seconds, delay * 2)
        if told:
            log.info("libellés des rôles du cercle de soins lus dans le dossier")
