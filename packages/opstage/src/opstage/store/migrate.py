"""Alembic, driven from code: ``opstage migrate`` and the tests call these."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from opstage.store.engine import engine_kind, normalize_url, sqlite_path

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


async def current_revision_async(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return await conn.run_sync(lambda c: MigrationContext.configure(c).get_current_revision())


async def _run(url: str, fn: Any, revision: str) -> None:
    if engine_kind(url) == "sqlite":
        path = sqlite_path(url)
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(normalize_url(url), poolclass=NullPool)
    try:
        async with engine.begin() as conn:

            def go(sync_conn: Any) -> None:
                cfg = alembic_config()
                cfg.attributes["connection"] = sync_conn
                fn(cfg, revision)

            await conn.run_sync(go)
    finally:
        await engine.dispose()


async def upgrade_async(url: str, revision: str = "head") -> None:
    await _run(url, command.upgrade, revision)


async def downgrade_async(url: str, revision: str = "base") -> None:
    await _run(url, command.downgrade, revision)


def upgrade(url: str, revision: str = "head") -> None:
    asyncio.run(upgrade_async(url, revision))


def downgrade(url: str, revision: str = "base") -> None:
    asyncio.run(downgrade_async(url, revision))


def current(url: str) -> str | None:
    async def go() -> str | None:
        engine = create_async_engine(normalize_url(url), poolclass=NullPool)
        try:
            return await current_revision_async(engine)
        finally:
            await engine.dispose()

    return asyncio.run(go())
