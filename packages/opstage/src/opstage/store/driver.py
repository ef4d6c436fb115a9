"""Hot statements compiled once and handed to the driver, on the unit of work's own connection.

Through SQLAlchemy's asyncio layer every statement costs 200-700 µs of the event loop's CPU on
this kind of machine (statement cache key, execution context, parameter and result
processing, four thread hand-offs to aiosqlite for cursor, execute, fetch and close); the same
statement sent to aiosqlite directly costs about 25 µs (ADR 0003). The statements
on the hot paths (the bus batch's reference reads and its inserts) are
therefore written as SQLAlchemy Core, compiled once per dialect into plain SQL with positional
parameters, and executed:

- on SQLite, on the aiosqlite connection under the unit's SQLAlchemy connection, inside the
  transaction the unit began (``BEGIN IMMEDIATE`` for writers); SQLAlchemy still commits or
  rolls back;
- on PostgreSQL, through ``exec_driver_sql``, so that SQLAlchemy's asyncpg adapter keeps
  starting and ending the transaction (it starts it lazily, on the first statement).

Values are converted per column, by type, chosen once: ``UtcDateTime`` is SQLite's stored text
(``YYYY-MM-DD HH:MM:SS.ffffff``, naive UTC, what SQLAlchemy writes) and an aware datetime on
PostgreSQL; ``JSON`` is orjson text (``None`` is JSON ``null``, as SQLAlchemy's ``JSON`` type
stores it) and is decoded on SQLite (asyncpg's codec decodes it on PostgreSQL); ``Boolean`` is
read back as ``bool`` on SQLite. Rows read this way equal what the Core statement returns, and
rows written this way are stored byte for byte as Core stores them (tests/store/test_driver.py).
Driver errors are raised as SQLAlchemy's own (``IntegrityError``, ``OperationalError``), so the
unit of work maps them as before.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from operator import itemgetter
from typing import Any, NoReturn, Protocol, TypeVar

from sqlalchemy import JSON, Boolean, Select, Table
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.ext.asyncio import AsyncConnection

from opstage.store.engine import json_dumps, json_loads
from opstage.store.sqlite_tx import COMMITTED, take_pending_begin
from opstage.store.tables import UtcDateTime

Row = dict[str, Any]
T = TypeVar("T")
Convert = Callable[[Any], Any]
Columns = tuple[tuple[str, Convert | None], ...]
# SQL, positional bind names, bind defaults, selected columns with their decoders.
_QueryPlan = tuple[str, tuple[str, ...], dict[str, Any], Columns]


# --- values -----------------------------------------------------------------------------------
def timestamp_in(dialect: str) -> Convert:
    """A converter of aware datetimes to what ``dialect`` stores (remembers the last one)."""
    last: list[Any] = [None, None]  # a batch stamps many rows with one instant: remember it

    def convert(value: datetime | None) -> Any:
        if value is None:
            return None
        if value is last[0]:
            return last[1]
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        utc = value if value.tzinfo is UTC else value.astimezone(UTC)
        out = (
            utc.replace(tzinfo=None).isoformat(" ", "microseconds") if dialect == "sqlite" else utc
        )
        last[0], last[1] = value, out
        return out

    return convert


def _json_in(value: Any) -> str:
    return "null" if value is None else json_dumps(value)


def _timestamp_out_sqlite(value: Any) -> datetime | None:
    if value is None:
        return None
    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _timestamp_out_postgres(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC)


def _json_out_sqlite(value: Any) -> Any:
    return None if value is None else json_loads(value)


def _bool_out_sqlite(value: Any) -> bool | None:
    return None if value is None else bool(value)


def _writer(column_type: Any, dialect: str) -> Convert | None:
    if isinstance(column_type, UtcDateTime):
        return timestamp_in(dialect)
    if isinstance(column_type, JSON):
        return _json_in
    return None


def _reader(column_type: Any, dialect: str) -> Convert | None:
    sqlite = dialect == "sqlite"
    if isinstance(column_type, UtcDateTime):
        return _timestamp_out_sqlite if sqlite else _timestamp_out_postgres
    if isinstance(column_type, JSON):
        return _json_out_sqlite if sqlite else None
    if isinstance(column_type, Boolean):
        return _bool_out_sqlite if sqlite else None
    return None


# --- execution --------------------------------------------------------------------------------
class Sql(Protocol):
    """Plain SQL on the unit's connection, called synchronously where the driver runs."""

    def fetch(self, sql: str, values: tuple[Any, ...]) -> list[tuple[Any, ...]]: ...

    def execute_many(self, sql: str, params: list[tuple[Any, ...]]) -> None: ...


MULTI_ROW_MAX = 256  # rows per multi-row INSERT (its text is cached per row count)
_SQLITE_MAX_VARIABLES = 32766  # SQLite's default limit on bound parameters since 3.32


@lru_cache(maxsize=512)
def _multi_row(sql: str, rows: int) -> str:
    head, sep, values = sql.partition(" VALUES ")
    if not sep:
        raise ValueError(f"not a single-row INSERT: {sql[:60]}")
    return head + sep + ", ".join([values] * rows)


class _Sqlite:
    def __init__(self, raw: sqlite3.Connection) -> None:
        self.raw = raw

    def fetch(self, sql: str, values: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        return self.raw.execute(sql, values).fetchall()

    def execute_many(self, sql: str, params: list[tuple[Any, ...]]) -> None:
        if len(params) < 2 or not sql.startswith("INSERT INTO "):
            self.raw.executemany(sql, params)
            return
        # One multi-row INSERT per chunk instead of one step per row: the sqlite3 module
        # gives the GIL up for every step and the thread then waits for the busy event loop
        # to hand it back, which made a bus batch's inserts several times slower than
        # their CPU time (ADR 0003).
        width = len(params[0])
        step = max(1, min(MULTI_ROW_MAX, _SQLITE_MAX_VARIABLES // max(1, width)))
        for start in range(0, len(params), step):
            chunk = params[start : start + step]
            self.raw.execute(_multi_row(sql, len(chunk)), [v for row in chunk for v in row])


class _Core:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def fetch(self, sql: str, values: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self.conn.exec_driver_sql(sql, values).all()]

    def execute_many(self, sql: str, params: list[tuple[Any, ...]]) -> None:
        self.conn.exec_driver_sql(sql, params if len(params) > 1 else params[0])


async def in_driver(conn: AsyncConnection, work: Callable[[Sql], T]) -> T:
    """Run ``work`` with the unit's connection in one hand-off.

    SQLite: on aiosqlite's own thread, the thread that owns the sqlite3 connection, through
    the same queue SQLAlchemy's adapter uses for what aiosqlite does not expose; a batch of
    statements is one thread hand-off instead of one per statement (and one wait for the GIL
    on the way back). PostgreSQL: in SQLAlchemy's greenlet (``run_sync``), statement by
    statement as before, so its asyncpg adapter keeps managing the transaction.
    """
    if conn.dialect.name == "sqlite":
        return await _on_sqlite_thread(conn, work, commit=False)
    return await conn.run_sync(lambda sync_conn: work(_Core(sync_conn)))


async def commit_in_driver(conn: AsyncConnection, work: Callable[[Sql], None]) -> None:
    """``work`` and then ``COMMIT`` in one hand-off (SQLite; store/sqlite_tx.py).

    The caller then commits the unit as usual; SQLAlchemy only does its bookkeeping. On
    PostgreSQL this is ``in_driver``, and the unit's commit commits.
    """
    if conn.dialect.name == "sqlite":
        await _on_sqlite_thread(conn, work, commit=True)
    else:
        await in_driver(conn, work)


async def _on_sqlite_thread(conn: AsyncConnection, work: Callable[[Sql], T], *, commit: bool) -> T:
    fairy = conn.sync_connection.connection  # type: ignore[union-attr]
    driver = _aiosqlite(conn)
    begin = take_pending_begin(fairy.info)

    def run() -> T:
        raw = driver._conn
        if begin is not None:
            raw.execute(begin)
        result = work(_Sqlite(raw))
        if commit and raw.in_transaction:
            raw.execute("COMMIT")
        return result

    try:
        result: T = await driver._execute(run)
    except sqlite3.Error as exc:
        _raise_as_sqlalchemy(exc, "(driver batch)", None)
    if commit:
        fairy.info[COMMITTED] = True
    return result


def _aiosqlite(conn: AsyncConnection) -> Any:
    # Called inside a unit or session, so the pooled connection is checked out and live.
    return conn.sync_connection.connection.driver_connection  # type: ignore[union-attr]


def enqueue(conn: AsyncConnection, work: Callable[[Sql], T]) -> asyncio.Future[T]:
    """SQLite: queue ``work`` on the connection's thread now, without waiting for it.

    aiosqlite runs its queue in order, so whatever is queued on this connection afterwards
    (awaited or not) runs after ``work``. Errors are the driver's own (``sqlite3.Error``).
    """
    driver = _aiosqlite(conn)
    future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
    raw = _Sqlite(driver._conn)
    driver._tx.put_nowait((future, lambda: work(raw)))
    return future


def _raise_as_sqlalchemy(exc: sqlite3.Error, sql: str, params: Any) -> NoReturn:
    if isinstance(exc, sqlite3.IntegrityError):
        raise sa_exc.IntegrityError(sql, params, exc) from exc
    if isinstance(exc, sqlite3.OperationalError):
        raise sa_exc.OperationalError(sql, params, exc) from exc
    raise sa_exc.DBAPIError(sql, params, exc) from exc


async def _fetch(conn: AsyncConnection, sql: str, params: tuple[Any, ...]) -> Sequence[Any]:
    if conn.dialect.name == "sqlite":
        return await in_driver(conn, lambda driver: driver.fetch(sql, params))
    return (await conn.exec_driver_sql(sql, params)).all()


# --- statements -------------------------------------------------------------------------------
class Query:
    """A Core ``SELECT`` with named ``bindparam``s, compiled once per dialect.

    ``rows(conn, **params)`` returns the rows as dicts keyed by the selected column names; a
    ``bindparam`` given a value in the statement (e.g. a fixed ``IN`` list) keeps it unless
    passed. ``bind`` and ``decode`` are the two halves, for use inside ``in_driver``.
    """

    def __init__(self, stmt: Select[Any]) -> None:
        self.stmt = stmt
        self._plans: dict[str, _QueryPlan] = {}
        self.names = tuple(stmt.selected_columns.keys())

    def _plan(self, dialect: Dialect) -> _QueryPlan:
        plan = self._plans.get(dialect.name)
        if plan is None:
            compiled = self.stmt.compile(dialect=dialect)
            binds = tuple(compiled.positiontup or ())
            columns = tuple(
                (name, _reader(col.type, dialect.name))
                for name, col in zip(self.names, self.stmt.selected_columns, strict=True)
            )
            plan = self._plans[dialect.name] = (str(compiled), binds, compiled.params, columns)
        return plan

    def bind(self, dialect: Dialect, **params: Any) -> tuple[str, tuple[Any, ...]]:
        sql, binds, defaults, _ = self._plan(dialect)
        return sql, tuple(params[name] if name in params else defaults[name] for name in binds)

    def decode(self, dialect: Dialect, found: Sequence[Sequence[Any]]) -> list[Row]:
        columns = self._plan(dialect)[3]
        return [
            {
                name: (v if conv is None else conv(v))
                for (name, conv), v in zip(columns, raw, strict=True)
            }
            for raw in found
        ]

    def index(self, name: str) -> int:
        """Where a selected column sits in a raw row (for work inside ``in_driver``)."""
        return self.names.index(name)

    async def rows(self, conn: AsyncConnection, **params: Any) -> list[Row]:
        sql, values = self.bind(conn.dialect, **params)
        return self.decode(conn.dialect, await _fetch(conn, sql, values))

    async def one(self, conn: AsyncConnection, **params: Any) -> Row | None:
        found = await self.rows(conn, **params)
        return found[0] if found else None


# Per table, column set and dialect: the SQL, a getter for the row's values in bind order, and
# the positions that need converting (timestamps, JSON) with their converters.
_InsertPlan = tuple[str, Callable[[Row], Any], tuple[tuple[int, Convert], ...]]
_inserts: dict[tuple[str, tuple[str, ...], str], _InsertPlan] = {}
Statement = tuple[str, list[tuple[Any, ...]]]


def _insert_plan(table: Table, keys: tuple[str, ...], dialect: Dialect) -> _InsertPlan:
    cache_key = (table.name, keys, dialect.name)
    plan = _inserts.get(cache_key)
    if plan is None:
        compiled = table.insert().compile(dialect=dialect, column_keys=list(keys))
        order = tuple(compiled.positiontup or ())
        if len(order) < 2 or sorted(order) != sorted(keys):
            raise ValueError(f"cannot bind {keys} positionally for {table.name}")
        converts = tuple(
            (i, conv)
            for i, k in enumerate(order)
            if (conv := _writer(table.c[k].type, dialect.name)) is not None
        )
        plan = _inserts[cache_key] = (str(compiled), itemgetter(*order), converts)
    return plan


def insert_statement(dialect: Dialect, table: Table, rows: Sequence[Row]) -> Statement:
    """The ``INSERT`` for ``rows`` (all with the same keys) and their converted values."""
    sql, values_of, converts = _insert_plan(table, tuple(rows[0]), dialect)
    params = []
    for row in rows:
        values = list(values_of(row))
        for i, conv in converts:
            values[i] = conv(values[i])
        params.append(tuple(values))
    return sql, params


def execute_all(statements: Sequence[Statement]) -> Callable[[Sql], None]:
    """Work for ``in_driver``: each statement in order."""

    def work(sql: Sql) -> None:
        for text, params in statements:
            sql.execute_many(text, params)

    return work


async def insert_rows(conn: AsyncConnection, table: Table, rows: Sequence[Row]) -> None:
    """Insert ``rows`` (all with the same keys) into ``table`` in one driver call."""
    if rows:
        await in_driver(conn, execute_all([insert_statement(conn.dialect, table, rows)]))
