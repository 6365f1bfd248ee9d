"""Sessions end with the Matrix account: a person's account is checked with the account
gateway (exists and not deactivated) at most every ``interval`` seconds; a deactivated one
has every dossier session ended, however it was deactivated (Element, admin API, CLI)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from homeserver.account_gateway.client import GatewayClient
from homeserver.admin_api import AdminApiError

log = logging.getLogger(__name__)


class AccountChecks:
    def __init__(
        self,
        socket: Path,
        secret: str,
        *,
        interval: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._socket = socket
        self._secret = secret
        self._interval = interval
        self._clock = clock
        self._checked: dict[str, float] = {}

    async def still_active(self, user_id: str) -> bool:
        """False once the account is found deactivated (or gone); True while active, and
        while the gateway cannot be asked (logged: the signed session still holds)."""
        now = self._clock()
        last = self._checked.get(user_id)
        if last is not None and now - last < self._interval:
            return True
        try:
            async with GatewayClient(self._socket, self._secret) as gateway:
                active = await gateway.is_active(user_id)
        except AdminApiError as exc:
            log.warning("état du compte non vérifié (passerelle : %s)", exc.errcode)
            self._checked[user_id] = now
            return True
        if active:
            self._checked[user_id] = now
        else:
            self._checked.pop(user_id, None)
        return active
