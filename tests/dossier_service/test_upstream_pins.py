"""The private parts of aiosqlite and SQLAlchemy that the dossier's SQLite setup relies on.

`sqlite_driver` (statements in the loop's thread) and `fair_pool` (first come, first served)
go past the libraries' public API because the public designs measured worse
(`bench/dossier_load.py --designs`, figures in each module's docstring). Their upstream
source is pinned here: an upgrade that changes it fails this test, which names the module to
review, instead of changing the service's behaviour quietly. The versions are pinned to the
tested range in pyproject.toml.
"""

from __future__ import annotations

import hashlib
import inspect

import aiosqlite
import pytest
from sqlalchemy.connectors import asyncio as sqlalchemy_asyncio
from sqlalchemy.dialects.sqlite import aiosqlite as sqlalchemy_aiosqlite
from sqlalchemy.pool import QueuePool
from sqlalchemy.util import queue as sqlalchemy_queue

PINNED = {
    # InlineConnection: Connection.__init__, _connect, _execute, _tx, _running, stop
    "aiosqlite.Connection": (
        aiosqlite.Connection,
        "648644bef40ab600edf63b2cf3a5e907f7bbef06f8378a50d12d0a72d82497ee",
        "dossier_service/sqlite_driver.py",
    ),
    # OneTripCursor: the adapted cursor's fields, _execute_async, _executemany_async
    "sqlalchemy AsyncAdapt_dbapi_cursor": (
        sqlalchemy_asyncio.AsyncAdapt_dbapi_cursor,
        "f8e13406d2c77f54aee7827c8b4a2ae4668826a607405b0ed77441df75713afd",
        "dossier_service/sqlite_driver.py",
    ),
    # InlineDBAPI / OneTripConnection: the aiosqlite adaptation they subclass
    "sqlalchemy.dialects.sqlite.aiosqlite": (
        sqlalchemy_aiosqlite,
        "b79597a673ab76d7bb9c89db3e45906a74bf63ec74c9508ad05ee59a409924c4",
        "dossier_service/sqlite_driver.py",
    ),
    # FairAsyncPool: how QueuePool uses its _queue_class (get, put, maxsize, use_lifo)
    "sqlalchemy QueuePool": (
        QueuePool,
        "e9bb12d5bfeb77ee2a13b49c897e8dc1513a88a903c286aa878f4c03d60aa36a",
        "dossier_service/fair_pool.py",
    ),
    "sqlalchemy QueueCommon": (
        sqlalchemy_queue.QueueCommon,
        "a98478707bee33f95d35957d9f401fb7b4a5dc6eff15bff2936a4db8d795a20f",
        "dossier_service/fair_pool.py",
    ),
}


@pytest.mark.parametrize("what", sorted(PINNED))
def test_the_upstream_source_is_the_one_we_rely_on(what: str) -> None:
    upstream, digest, ours = PINNED[what]
    source = inspect.getsource(upstream)
    assert hashlib.sha256(source.encode()).hexdigest() == digest, (
        f"{what} a changé en amont : revoir {ours} (et bench/dossier_load.py --designs)"
    )
