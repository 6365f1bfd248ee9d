"""nio's crypto store as the bot's session uses it (``AsyncClientConfig.store``), less one
write that nio makes after every /sync for nothing.

nio ends the handling of each sync response with ``store.save_encrypted_rooms(rooms)``: the
rooms that *became* encrypted in this response. Almost always none, but the call still binds
the store's models, reads the account row and opens and commits a transaction: ~1 ms on the
2-core bench machine, 0.8–2.7 ms under load (issue 15). The bot handles a command only once
nio has walked the whole response, so this millisecond sat between the command's arrival and
its reply at every command (a bare nio echo answers from inside the walk, before it). With no
room to save, there is nothing to write: the call returns at once.
"""

from __future__ import annotations

from collections.abc import Collection

from nio.store import DefaultStore


class CercleStore(DefaultStore):  # type: ignore[misc]  # nio has no type hints
    def save_encrypted_rooms(self, rooms: Collection[str]) -> None:
        if rooms:
            super().save_encrypted_rooms(rooms)
