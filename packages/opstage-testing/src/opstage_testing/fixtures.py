"""pytest fixtures both suites import into their conftest: the engine and a database per server.

``OPSTAGE_TEST_ENGINE=postgres`` puts each server on a PostgreSQL database of its own.
A server's database asked for ``migrated=True`` is a copy of one migrated once per test
process (a SQLite file copied, PostgreSQL's ``CREATE DATABASE … TEMPLATE``): migrating from
nothing took 1-2 s a server, and the server's own ``upgrade`` then finds the schema at head
(ADR 0013). Without it the database is empty, for the tests of migrations and first starts.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from opstage_testing.inprocess import copy_sqlite_template

ENGINE = os.environ.get("OPSTAGE_TEST_ENGINE", "sqlite")

DatabaseFactory = Callable[..., "str | None"]


def upgrade(url: str) -> None:
    """Migrate ``url`` to head from any caller: an async test's loop may be running here."""
    from opstage.store.migrate import upgrade as upgrade_to_head

    with ThreadPoolExecutor(1) as pool:
        pool.submit(upgrade_to_head, url).result()


@pytest.fixture(scope="session")
def pg_admin_dsn() -> str | None:
    if ENGINE != "postgres":
        return None
    from opstage_testing.postgres import find_or_start_postgres

    dsn, how = find_or_start_postgres()
    if dsn is None:
        pytest.skip(f"PostgreSQL could not be started for the PostgreSQL pass: {how}")
    print(f"\n[opstage-tests] PostgreSQL: {how}")
    return dsn


@pytest.fixture(scope="session")
def database_factory(
    pg_admin_dsn: str | None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DatabaseFactory]:
    """A fresh, migrated database per server: a file in its data dir, or a PostgreSQL one.

    Returns the server's ``DATABASE_URL`` (``None``: its default, SQLite in its data dir)."""
    if pg_admin_dsn is None:
        templates: list[Path] = []

        def copy(data_dir: Path, *, migrated: bool = False) -> str | None:
            if migrated:
                if not templates:
                    templates.append(tmp_path_factory.mktemp("template") / "opstage.db")
                    upgrade(f"sqlite:///{templates[0].as_posix()}")
                copy_sqlite_template(templates[0], data_dir)
            return None

        yield copy
        return

    from opstage_testing.postgres import create_database, drop_database

    tag = f"{os.getpid()}_{secrets.token_hex(4)}"
    template_name = f"opstage_template_{tag}"
    created: list[str] = []

    def make(_: Path, *, migrated: bool = False) -> str:
        if migrated and template_name not in created:
            created.append(template_name)
            upgrade(create_database(pg_admin_dsn, template_name))
        name = f"opstage_test_{tag}_{len(created)}"
        created.append(name)
        return create_database(pg_admin_dsn, name, template=template_name if migrated else None)

    yield make
    for name in created:
        drop_database(pg_admin_dsn, name)
