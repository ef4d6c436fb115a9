"""The fast path builds every statement from ``Table`` metadata (store/fastpath/, ADR 0008).

A column added to a table shows up in each rendering (single and multi-row ``VALUES``, the
PostgreSQL ``unnest`` tail, the SQLite JSON batch) and is stored, with no code change; the
single-row ``INSERT`` is exactly what SQLAlchemy Core compiles; and the SQLite dialect is
extended by subclassing, not by replacing methods on a live dialect.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from opstage.store.engine import JSON_OPTIONS, create_engines, normalize_url
from opstage.store.fastpath.execution import SqliteSql, execute_all, in_driver
from opstage.store.fastpath.inserts import insert_plan, insert_statement
from opstage.store.fastpath.pg_tail import tail_work
from opstage.store.fastpath.sqlite_batch import OneStatementBatch
from opstage.store.fastpath.sqlite_dialect import FastpathSQLiteDialect
from opstage.store.tables import UtcDateTime, metadata
from sqlalchemy import JSON, BigInteger, Boolean, Column, Integer, MetaData, String, Table, Text
from sqlalchemy import select as sa_select
from sqlalchemy.dialects.postgresql import asyncpg
from sqlalchemy.dialects.sqlite.base import SQLiteDialect
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from ..conftest import ENGINE

SQLITE, POSTGRES = SQLiteDialect(), asyncpg.dialect()  # type: ignore[no-untyped-call]
WHEN = datetime(2026, 11, 23, 14, 0, 0, 123456, tzinfo=UTC)


def _widgets(*extra: Column[Any]) -> Table:
    """A table of a test schema of its own; ``extra`` columns are the "migration"."""
    return Table(
        "widgets",
        MetaData(),
        Column("id", String(32), primary_key=True),
        Column("payload", JSON, nullable=True),
        Column("created_at", UtcDateTime(), nullable=False),
        *extra,
    )


def _rows(with_colour: bool) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for i in range(5):
        row: dict[str, Any] = {"id": f"w{i}", "payload": {"i": i}, "created_at": WHEN}
        if with_colour:
            row["colour"] = f"c{i}"
        rows.append(row)
    return rows


@pytest.mark.parametrize("dialect", [SQLITE, POSTGRES], ids=["sqlite", "postgresql"])
def test_every_insert_is_what_core_compiles(dialect: Any) -> None:
    for table in metadata.sorted_tables:
        columns = tuple(table.c.keys())
        core = str(table.insert().compile(dialect=dialect, column_keys=list(columns)))
        assert insert_plan(table, columns, dialect).sql == core, table.name


def test_a_new_column_shows_up_in_every_rendering() -> None:
    before, after = _widgets(), _widgets(Column("colour", Text, nullable=True))
    rows = _rows(with_colour=True)
    old = insert_plan(before, ("id", "payload", "created_at"), SQLITE)
    new = insert_plan(after, tuple(rows[0]), SQLITE)
    assert "colour" not in old.sql
    assert new.sql == "INSERT INTO widgets (id, payload, created_at, colour) VALUES (?, ?, ?, ?)"
    assert new.values_sql(2).endswith("VALUES (?, ?, ?, ?), (?, ?, ?, ?)")
    assert new.json == (False, True, False, False)

    pg = insert_statement(POSTGRES, after, rows)
    assert pg.plan.sql.endswith("$3::TIMESTAMP WITH TIME ZONE, $4::VARCHAR)")
    work = tail_work([pg], None, 1, "chan", [])
    assert work is not None
    sent: list[tuple[str, tuple[Any, ...]]] = []

    class Recorder:
        def fetch(self, sql: str, values: tuple[Any, ...]) -> list[tuple[Any, ...]]:
            sent.append((sql, values))
            return []

    work(Recorder())  # type: ignore[arg-type]
    [(sql, values)] = sent
    assert "INSERT INTO widgets (id, payload, created_at, colour) SELECT * FROM unnest(" in sql
    assert "$4::VARCHAR[]" in sql
    assert values[3] == [f"c{i}" for i in range(5)]
    assert values[1][0] == '{"i":0}'  # JSON as the text Core binds


def _sqlite_table(raw: sqlite3.Connection, table: Table) -> None:
    from sqlalchemy.schema import CreateTable

    raw.execute(str(CreateTable(table).compile(dialect=SQLITE)))


@pytest.mark.sqlite_only
def test_a_new_column_is_stored_by_the_statements_and_the_batch(tmp_path: Path) -> None:
    table = _widgets(Column("colour", Text, nullable=True), Column("size", Integer))
    raw = sqlite3.connect(tmp_path / "w.db", isolation_level=None)
    _sqlite_table(raw, table)
    rows = [{**r, "size": i} for i, r in enumerate(_rows(with_colour=True))]
    SqliteSql(raw).insert(insert_statement(SQLITE, table, rows))
    version = raw.execute("PRAGMA data_version").fetchone()[0]
    batch_rows = [{**r, "id": r["id"] + "b"} for r in rows]
    assert OneStatementBatch([(table, batch_rows)], version).run(raw, set())
    stored = raw.execute("SELECT id, payload, created_at, colour, size FROM widgets").fetchall()
    assert len(stored) == 10
    by_id = {r[0]: r[1:] for r in stored}
    for row in rows:
        assert by_id[row["id"]] == by_id[row["id"] + "b"]  # the batch stores what INSERT does
        assert by_id[row["id"]] == (
            f'{{"i":{row["size"]}}}',
            "2026-11-23 14:00:00.123456",
            row["colour"],
            row["size"],
        )


@pytest.mark.skipif(ENGINE != "postgres", reason="needs PostgreSQL: runs in its pass")
def test_a_new_column_is_stored_by_the_postgres_tail(
    tmp_path: Path, database_factory: Callable[[Path], str | None]
) -> None:
    url = database_factory(tmp_path)
    assert url is not None
    schema = MetaData()
    table = Table(
        "widgets",
        schema,
        Column("id", String(32), primary_key=True),
        Column("payload", JSON, nullable=True),
        Column("created_at", UtcDateTime(), nullable=False),
        Column("colour", Text, nullable=True),
        Column("big", BigInteger, nullable=True),
        Column("on", Boolean, nullable=True),
    )
    rows = [{**r, "big": 2**40 + i, "on": i % 2 == 0} for i, r in enumerate(_rows(True))]

    async def go() -> list[Any]:
        engine = create_async_engine(normalize_url(url), poolclass=NullPool, **JSON_OPTIONS)
        try:
            async with engine.begin() as conn:
                await conn.run_sync(schema.create_all)
            async with engine.begin() as conn:
                work = tail_work([insert_statement(conn.dialect, table, rows)], None, 1, "c", [])
                assert work is not None
                await in_driver(conn, work)
            async with engine.connect() as conn:
                stmt = sa_select(table).order_by(table.c.id)
                return [dict(r) for r in (await conn.execute(stmt)).mappings()]
        finally:
            await engine.dispose()

    assert asyncio.run(go()) == rows


@pytest.mark.sqlite_only
def test_sqlite_engines_extend_the_dialect_by_subclass_not_by_patching(tmp_path: Path) -> None:
    engines = create_engines(f"sqlite:///{tmp_path / 'd.db'}")
    try:
        for engine in (engines.reader, engines.writer):
            dialect = engine.sync_engine.dialect
            assert isinstance(dialect, FastpathSQLiteDialect)
            assert "do_commit" not in vars(dialect) and "do_rollback" not in vars(dialect)
    finally:
        asyncio.run(engines.dispose())


@pytest.mark.sqlite_only
def test_buffered_inserts_run_in_order_in_one_hand_off(tmp_path: Path) -> None:
    table = _widgets()
    url = f"sqlite+aiosqlite:///{tmp_path / 'o.db'}"
    raw = sqlite3.connect(tmp_path / "o.db", isolation_level=None)
    _sqlite_table(raw, table)
    raw.close()

    async def go() -> list[Any]:
        engine = create_async_engine(url, poolclass=NullPool)
        try:
            async with engine.begin() as conn:
                first = insert_statement(conn.dialect, table, _rows(False)[:2])
                second = insert_statement(conn.dialect, table, _rows(False)[2:])
                await in_driver(conn, execute_all([first, second]))
            async with engine.connect() as conn:
                return list((await conn.execute(sa_select(table.c.id))).scalars())
        finally:
            await engine.dispose()

    assert asyncio.run(go()) == [f"w{i}" for i in range(5)]


def test_work_for_a_stopping_connection_is_refused_not_left_waiting(tmp_path: Path) -> None:
    """Queued behind aiosqlite's stop, work would never run and its future never resolve."""
    import aiosqlite
    from opstage.store.fastpath.aiosqlite_thread import on_driver_thread

    async def go() -> None:
        conn = await aiosqlite.connect(tmp_path / "s.db")
        stopped = conn.stop()  # what close() starts with; the thread has not run it yet
        with pytest.raises(ValueError, match="closed"):
            on_driver_thread(conn, lambda raw: raw.execute("SELECT 1").fetchall())
        assert stopped is not None
        await stopped

    asyncio.run(go())
