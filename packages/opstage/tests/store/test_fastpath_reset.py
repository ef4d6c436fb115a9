"""A SQLite connection that holds no transaction is not rolled back when the pool takes it back
(ADR 0018): after a unit committed in the driver, sqlite3 skips that ROLLBACK itself, but
asking for it still cost a round trip to aiosqlite's thread per unit. One that still holds a
transaction is rolled back as before."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from opstage.store.engine import create_engines
from opstage.store.fastpath.execution import Sql, commit_in_driver
from opstage.store.migrate import upgrade_async
from sqlalchemy import text

pytestmark = pytest.mark.skipif(
    os.environ.get("OPSTAGE_TEST_ENGINE") == "postgres", reason="SQLite's driver only"
)


async def test_no_rollback_after_a_commit_one_after_an_open_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'reset.db'}"
    await upgrade_async(url)
    engines = create_engines(url)
    rollbacks: list[bool] = []
    real = aiosqlite.Connection.rollback

    async def counted(self: aiosqlite.Connection) -> Any:  # the real rollback, counted
        rollbacks.append(self.in_transaction)
        return await real(self)

    monkeypatch.setattr(aiosqlite.Connection, "rollback", counted)

    def work(sql: Sql) -> None:
        sql.fetch("SELECT 1", ())

    try:
        async with engines.writer.begin() as conn:
            await commit_in_driver(conn, work)
        assert rollbacks == []
        async with engines.writer.connect() as conn:  # a transaction left open: rolled back
            await conn.execute(text("SELECT 1"))
            assert conn.in_transaction()
        assert rollbacks == [True]
    finally:
        await engines.dispose()
