"""The bot's accounts when its rooms are sharded (issue 15, ``bot.shards``).

Synapse builds an entry for every joined room of an account at each non-empty ``/sync``
(``docs/capacity.md``, session 10): the cost of the bot's syncs grows with the rooms of *one
account*, and a message wakes only the accounts in its room. So past some thousands of
patient rooms they are spread over several accounts, one process each: shard 1 is the
*front* (``cercle-bot``: direct chats, folder spaces, ``!aide``, room creation), shard *k* is
``cercle-bot-k``. A patient room is assigned once, when it is created, by a pure function
of its intent (a replay after a kill picks the same shard), and lives with its shard.

Pure: no I/O here.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


def shard_for(intent: str, count: int) -> int:
    """The shard (1…count) a room created for ``intent`` lives with: stable across restarts
    and processes (a hash, not Python's salted ``hash``), even over the shards."""
    if count <= 1:
        return 1
    digest = hashlib.sha256(intent.encode()).digest()
    return int.from_bytes(digest[:8], "big") % count + 1


@dataclass(frozen=True)
class Shards:
    """Every account of the bot, the front first; ``me`` is this process's (1-based)."""

    accounts: tuple[str, ...]
    me: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.me <= len(self.accounts):
            raise ValueError(f"shard {self.me} hors de 1…{len(self.accounts)}")

    @property
    def count(self) -> int:
        return len(self.accounts)

    @property
    def front(self) -> str:
        return self.accounts[0]

    @property
    def is_front(self) -> bool:
        return self.me == 1

    @property
    def own(self) -> str:
        return self.accounts[self.me - 1]

    @property
    def siblings(self) -> tuple[str, ...]:
        """The other accounts of the bot."""
        return tuple(a for a in self.accounts if a != self.own)

    def is_bot(self, user_id: str) -> bool:
        """One of Cercle's own accounts: never a person of a room or a care circle."""
        return user_id in self.accounts

    def account_for(self, intent: str) -> str:
        return self.accounts[shard_for(intent, self.count) - 1]

    def owns(self, intent: str) -> bool:
        return shard_for(intent, self.count) == self.me

    @classmethod
    def single(cls, user_id: str) -> Shards:
        return cls((user_id,))


def direct_scope(shards: Shards | None) -> str | None:
    """How this account names its direct chats (``bots.matrix.direct_chat``): None for the
    front (the chats every deployment already has), its own id for a shard."""
    return None if shards is None or shards.is_front else shards.own
