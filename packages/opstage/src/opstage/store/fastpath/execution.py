"""Plain SQL on the unit of work's own connection, run where the driver runs.

- SQLite: on aiosqlite's thread (``aiosqlite_thread.on_driver_thread``), inside the
  transaction the unit began (``BEGIN IMMEDIATE`` for writers, issued with the first
  statement: ``sqlite_dialect.py``); several statements in one hand-off.
- PostgreSQL: in SQLAlchemy's greenlet (``run_sync`` + ``exec_driver_sql``), statement by
  statement, so its asyncpg adapter keeps starting and ending the transaction.

Driver errors are raised as SQLAlchemy's own (``IntegrityError``, ``OperationalError``), so
the unit of work maps them as on the Core path (ADR 0003, ADR 0008).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, Protocol, TypeVar

from sqlalchemy import Table
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from opstage.store.fastpath.aiosqlite_thread import on_driver_thread
from opstage.store.fastpath.inserts import Insert, insert_statement
from opstage.store.fastpath.sqlite_dialect import COMMITTED, take_pending_begin
from opstage.store.fastpath.values import Row

T = TypeVar("T")


class Sql(Protocol):
    """Plain SQL on the unit's connection, called synchronously where the driver runs."""

    def fetch(self, sql: str, values: tuple[Any, ...]) -> list[tuple[Any, ...]]: ...

    def execute_many(self, sql: str, params: list[tuple[Any, ...]]) -> None: ...

    def insert(self, insert: Insert) -> None: ...


class SqliteSql:
    def __init__(self, raw: sqlite3.Connection) -> None:
        self.raw = raw

    def fetch(self, sql: str, values: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        return self.raw.execute(sql, values).fetchall()

    def execute_many(self, sql: str, params: list[tuple[Any, ...]]) -> None:
        self.raw.executemany(sql, params)

    def insert(self, insert: Insert) -> None:
        plan, params = insert.plan, insert.params
        if len(params) == 1:
            self.raw.execute(plan.sql, params[0])
            return
        # One multi-row INSERT per chunk instead of one step per row: the sqlite3 module
        # gives the GIL up for every step and the thread then waits for the busy event loop
        # to hand it back, which made a bus batch's inserts several times slower than
        # their CPU time (ADR 0003).
        step = plan.rows_per_statement
        for start in range(0, len(params), step):
            chunk = params[start : start + step]
            self.raw.execute(plan.values_sql(len(chunk)), [v for row in chunk for v in row])


class CoreSql:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def fetch(self, sql: str, values: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self.conn.exec_driver_sql(sql, values).all()]

    def execute_many(self, sql: str, params: list[tuple[Any, ...]]) -> None:
        self.conn.exec_driver_sql(sql, params if len(params) > 1 else params[0])

    def insert(self, insert: Insert) -> None:
        self.execute_many(insert.plan.sql, insert.params)


async def in_driver(conn: AsyncConnection, work: Callable[[Sql], T]) -> T:
    """Run ``work`` with the unit's connection in one hand-off (see module)."""
    if conn.dialect.name == "sqlite":
        return await _on_sqlite_thread(conn, work, commit=False)
    return await conn.run_sync(lambda sync_conn: work(CoreSql(sync_conn)))


async def commit_in_driver(conn: AsyncConnection, work: Callable[[Sql], T]) -> T:
    """``work`` and then ``COMMIT`` in one hand-off (SQLite; ``sqlite_dialect.py``).

    The caller then commits the unit as usual; SQLAlchemy only does its bookkeeping. On
    PostgreSQL this is ``in_driver``, and the unit's commit commits.
    """
    if conn.dialect.name == "sqlite":
        return await _on_sqlite_thread(conn, work, commit=True)
    return await in_driver(conn, work)


def _pooled(conn: AsyncConnection) -> Any:
    # Called inside a unit or session, so the pooled connection is checked out and live.
    return conn.sync_connection.connection  # type: ignore[union-attr]


async def _on_sqlite_thread(conn: AsyncConnection, work: Callable[[Sql], T], *, commit: bool) -> T:
    fairy = _pooled(conn)
    begin = take_pending_begin(fairy.info)

    def run(raw: sqlite3.Connection) -> T:
        if begin is not None:
            raw.execute(begin)
        result = work(SqliteSql(raw))
        if commit and raw.in_transaction:
            raw.execute("COMMIT")
        return result

    try:
        result: T = await on_driver_thread(fairy.driver_connection, run)
    except sqlite3.Error as exc:
        raise_as_sqlalchemy(exc, "(driver batch)", None)
    if commit:
        fairy.info[COMMITTED] = True
    return result


def enqueue(conn: AsyncConnection, work: Callable[[SqliteSql], T]) -> asyncio.Future[T]:
    """SQLite: queue ``work`` on the connection's thread now, without waiting for it.

    Whatever is queued on this connection afterwards (awaited or not) runs after ``work``.
    Errors are the driver's own (``sqlite3.Error``).
    """
    return on_driver_thread(_pooled(conn).driver_connection, lambda raw: work(SqliteSql(raw)))


def raise_as_sqlalchemy(exc: sqlite3.Error, sql: str, params: Any) -> NoReturn:
    if isinstance(exc, sqlite3.IntegrityError):
        raise sa_exc.IntegrityError(sql, params, exc) from exc
    if isinstance(exc, sqlite3.OperationalError):
        raise sa_exc.OperationalError(sql, params, exc) from exc
    raise sa_exc.DBAPIError(sql, params, exc) from exc


async def fetch(conn: AsyncConnection, sql: str, params: tuple[Any, ...]) -> Sequence[Any]:
    if conn.dialect.name == "sqlite":
        return await in_driver(conn, lambda driver: driver.fetch(sql, params))
    return (await conn.exec_driver_sql(sql, params)).all()


def execute_all(inserts: Sequence[Insert]) -> Callable[[Sql], None]:
    """Work for ``in_driver``: each insert in order."""

    def work(sql: Sql) -> None:
        for insert in inserts:
            sql.insert(insert)

    return work


async def insert_rows(conn: AsyncConnection, table: Table, rows: Sequence[Row]) -> None:
    """Insert ``rows`` (all with the same keys) into ``table`` in one driver call."""
    if rows:
        await in_driver(conn, execute_all([insert_statement(conn.dialect, table, rows)]))
