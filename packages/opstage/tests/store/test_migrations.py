"""The migration chain: upgrade → downgrade → upgrade, on the engine under test, via the CLI.

After the last upgrade the live schema must equal the SQLAlchemy tables (no drift between the
migration files and ``store.tables``).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from opstage.store.engine import normalize_url
from opstage.store.migrate import head_revision
from opstage.store.tables import metadata
from opstage_testing.cli import run_cli
from opstage_testing.server import opstage_executable
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool


def _cli(url: str, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPSTAGE_")}
    env["DATABASE_URL"] = url
    out = run_cli(["migrate", *args], env)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def _inspect(url: str) -> tuple[set[str], list[Any]]:
    async def go() -> tuple[set[str], list[Any]]:
        engine = create_async_engine(normalize_url(url), poolclass=NullPool)
        try:
            async with engine.connect() as conn:

                def look(sync_conn: Any) -> tuple[set[str], list[Any]]:
                    tables = set(inspect(sync_conn).get_table_names())
                    ctx = MigrationContext.configure(sync_conn, opts={"compare_type": True})
                    return tables, compare_metadata(ctx, metadata)

                return await conn.run_sync(look)
        finally:
            await engine.dispose()

    return asyncio.run(go())


def test_upgrade_downgrade_upgrade(tmp_path: Path, database_factory: Any) -> None:
    url = database_factory(tmp_path) or f"sqlite:///{tmp_path / 'm.db'}"
    _cli(url, "up")
    assert head_revision() in _cli(url, "current")
    tables, diff = _inspect(url)
    assert {"agents", "capsule_services", "commands", "audit_events", "users"} <= tables
    assert diff == [], f"schema drift between migrations and store.tables: {diff}"

    _cli(url, "down", "base", "--yes")  # `migrate down` asks first; a script says --yes
    tables, _ = _inspect(url)
    assert tables <= {"alembic_version"}, f"downgrade left tables behind: {tables}"

    _cli(url, "up")
    tables, diff = _inspect(url)
    assert diff == []
    assert head_revision() in _cli(url, "current")


def test_server_refuses_an_unmigrated_database(tmp_path: Path, database_factory: Any) -> None:
    url = database_factory(tmp_path) or f"sqlite:///{tmp_path / 'n.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPSTAGE_")}
    env.update(DATABASE_URL=url, OPSTAGE_DEV_MODE="true", OPSTAGE_DATA_DIR=str(tmp_path))
    out = subprocess.run(
        [opstage_executable(), "serve", "--no-migrate", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode != 0
    assert "opstage migrate" in out.stderr + out.stdout
