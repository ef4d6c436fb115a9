"""A unit of work that cannot get a pooled connection in time answers ``Unavailable``
(503 DATABASE_UNAVAILABLE with Retry-After), not SQLAlchemy's pool TimeoutError (a 500).

Seen in `make bench-fleet` on a starved machine: the SQLite readers' pool (8, no overflow)
stayed taken for its 30 s timeout, and every long-poll and heartbeat that waited got a 500.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from opstage.domain.errors import Unavailable
from opstage.store.engine import JSON_OPTIONS, Engines, normalize_url
from opstage.store.uow import SqlUnitOfWork
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool


def test_a_unit_that_waits_out_the_pool_timeout_is_unavailable(tmp_path: Path) -> None:
    async def main() -> None:
        url = normalize_url(f"sqlite:///{tmp_path / 'pool.db'}")
        engine = create_async_engine(
            url,
            poolclass=AsyncAdaptedQueuePool,
            pool_size=1,
            max_overflow=0,
            pool_timeout=0.2,
            **JSON_OPTIONS,
        )
        engines = Engines("sqlite", engine, engine)
        try:
            held = await engine.connect()  # the pool's only connection, taken
            try:
                with pytest.raises(Unavailable) as caught:
                    async with SqlUnitOfWork(engines, None, write=False):
                        pass
                assert caught.value.code == "DATABASE_UNAVAILABLE"
                with pytest.raises(Unavailable):
                    async with SqlUnitOfWork(engines, None, write=True):
                        pass
            finally:
                await held.close()
            async with SqlUnitOfWork(engines, None, write=False) as uow:  # free again
                await uow.ping()
        finally:
            await engines.dispose()

    asyncio.run(main())
