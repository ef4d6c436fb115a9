"""Alembic, driven from code: ``opstage migrate`` and the tests call these."""

from __future__ import annotations

import asyncio
import inspect
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect as sa_inspect
from sqlalchemy import text
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


@dataclass(frozen=True)
class DowngradeStep:
    revision: str
    message: str
    tables: list[tuple[str, int | None]]  # table dropped by this step, rows it holds now
    columns: list[str]  # "table.column" dropped by this step


_DROP_TABLE = re.compile(r"drop_table\(\s*['\"](\w+)['\"]")
_DROP_COLUMN = re.compile(r"drop_column\(\s*['\"](\w+)['\"]\s*,\s*['\"](\w+)['\"]")


def downgrade_plan(url: str, target: str) -> list[DowngradeStep]:
    """What ``downgrade(url, target)`` would undo, newest first: each revision, the tables its
    ``downgrade()`` drops (with their current row counts) and the columns it drops.

    Read from the migration scripts' own ``downgrade`` source, so it cannot disagree with what
    they do. Raises ``ValueError`` for a target that is not below the current revision.
    """
    scripts = ScriptDirectory.from_config(alembic_config())
    now = current(url)
    if now is None:
        raise ValueError("the database has no Opstage schema; there is nothing to downgrade")
    if target != "base":
        try:
            scripts.get_revision(target)
        except Exception:
            known = ", ".join(s.revision for s in scripts.walk_revisions())
            raise ValueError(f"unknown revision {target!r} (known: {known}, base)") from None
    steps = list(scripts.iterate_revisions(now, target if target != "base" else "base"))
    steps = [s for s in steps if s.revision != target]
    if not steps:
        raise ValueError(f"the database is at {now}; {target} is not below it")
    counts = asyncio.run(_row_counts(url))
    out = []
    for script in steps:
        source = inspect.getsource(script.module.downgrade)
        tables = [(t, counts.get(t)) for t in _DROP_TABLE.findall(source)]
        columns = [f"{t}.{c}" for t, c in _DROP_COLUMN.findall(source)]
        message = (script.doc or "").strip().splitlines()[0] if script.doc else ""
        out.append(DowngradeStep(script.revision, message, tables, columns))
    return out


async def _row_counts(url: str) -> dict[str, int]:
    engine = create_async_engine(normalize_url(url), poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            names = await conn.run_sync(lambda c: sa_inspect(c).get_table_names())
            out = {}
            for name in names:
                if re.fullmatch(r"\w+", name):  # the schema's own names; nothing to quote
                    sql = f'SELECT count(*) FROM "{name}"'  # noqa: S608 (checked just above)
                    n = await conn.scalar(text(sql))
                    out[str(name)] = int(n or 0)
            return out
    finally:
        await engine.dispose()
