"""SQLite transactions that ride on the unit's driver hand-offs instead of costing their own.

Every statement given to aiosqlite is a round trip to its thread and back to the event loop
(queue, thread wake-up, GIL, ``call_soon_threadsafe``): on this kind of machine 0.3-1.5 ms of
wall time under load, and about 100 µs of the loop's CPU, whatever the statement. A write unit
used to spend two of them on ``BEGIN IMMEDIATE`` and ``COMMIT`` alone (ADR 0003). So, on
SQLite:

- ``begin`` only notes the ``BEGIN`` to issue (``PENDING_BEGIN`` on the pooled connection); the
  unit's first statement issues it, in the same hand-off when that statement goes to the driver
  directly (``execution.py``), just before it otherwise (a ``before_cursor_execute`` hook).
  The write lock is still taken before the unit's first read, so what the unit reads and
  writes is as serialised as before; a busy database still fails that first statement with
  ``OperationalError`` (``DATABASE_UNAVAILABLE``).
- a unit whose last driver work ends with ``COMMIT`` (``execution.commit_in_driver``) marks the
  connection ``COMMITTED``; SQLAlchemy's own commit then only does its bookkeeping.
- a unit that issued no statement neither begins nor ends anything in SQLite, and a
  connection that holds no transaction (a unit committed) is not rolled back when the pool
  takes it back.

The commit and rollback that honour those flags are ``do_commit``/``do_rollback`` of a dialect
subclass, ``FastpathSQLiteDialect``, registered with SQLAlchemy's dialect registry under
``sqlite+opstage_aiosqlite`` (``engine_url``): SQLAlchemy's documented way to extend a dialect,
in place of replacing the methods on a live dialect instance (ADR 0008). The flags live in the
pool record's ``info`` (per SQLite connection) and are cleared at check-in, so nothing carries
over to the next unit.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.aiosqlite import SQLiteDialect_aiosqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import await_only

PENDING_BEGIN = "opstage.pending_begin"
COMMITTED = "opstage.committed_in_driver"
DRIVER_NAME = "opstage_aiosqlite"


def take_pending_begin(info: dict[Any, Any]) -> str | None:
    """The ``BEGIN`` still owed on this connection, now the caller's to issue."""
    begin: str | None = info.pop(PENDING_BEGIN, None)
    return begin


def _info(dbapi_connection: Any) -> dict[Any, Any]:
    try:
        info: dict[Any, Any] = dbapi_connection.info
    except NotImplementedError:  # the ad-hoc wrapper SQLAlchemy uses on first connect
        return {}
    return info


def _in_transaction(dbapi_connection: Any) -> bool:
    """Whether SQLite holds a transaction open on this connection (True when unsure).

    Read on the event loop's thread from sqlite3's flag, without a hand-off: a rollback comes
    after the unit's driver work was awaited, so nothing of this connection is running."""
    try:
        return bool(dbapi_connection.driver_connection.in_transaction)
    except Exception:
        return True


class FastpathSQLiteDialect(SQLiteDialect_aiosqlite):
    """aiosqlite's dialect whose commit and rollback honour the deferred ``BEGIN`` and a
    ``COMMIT`` already issued in the driver (see module). Everything else is inherited."""

    supports_statement_cache = True  # a subclass must say so, or SQLAlchemy stops caching

    def do_commit(self, dbapi_connection: Any) -> None:
        info = _info(dbapi_connection)
        if take_pending_begin(info) is not None or info.pop(COMMITTED, False):
            return  # nothing was begun, or the driver work already committed
        super().do_commit(dbapi_connection)  # type: ignore[no-untyped-call]

    def do_rollback(self, dbapi_connection: Any) -> None:
        info = _info(dbapi_connection)
        info.pop(COMMITTED, None)
        if take_pending_begin(info) is not None:
            return
        if not _in_transaction(dbapi_connection):
            # The pool's reset after a unit that committed: nothing to undo, and a ROLLBACK
            # would still cost a round trip to the driver's thread per unit (ADR 0018).
            return
        super().do_rollback(dbapi_connection)  # type: ignore[no-untyped-call]


registry.register(f"sqlite.{DRIVER_NAME}", __name__, FastpathSQLiteDialect.__name__)


def engine_url(url: str) -> URL:
    """``url`` (a ``sqlite+aiosqlite`` URL) on ``FastpathSQLiteDialect``."""
    return make_url(url).set(drivername=f"sqlite+{DRIVER_NAME}")


def defer_transactions(engine: AsyncEngine, begin: str) -> None:
    """Defer ``begin`` to the first statement of each transaction on ``engine``, which must
    have been created from ``engine_url``."""
    sync_engine = engine.sync_engine
    if not isinstance(sync_engine.dialect, FastpathSQLiteDialect):
        raise TypeError("defer_transactions needs an engine created from engine_url()")

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.connection.info[PENDING_BEGIN] = begin

    @event.listens_for(sync_engine, "before_cursor_execute")
    def _before_statement(conn: Any, *_args: Any) -> None:
        owed = take_pending_begin(conn.connection.info)
        if owed is not None:
            await_only(conn.connection.driver_connection.execute(owed))

    @event.listens_for(sync_engine.pool, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info.pop(PENDING_BEGIN, None)
        record.info.pop(COMMITTED, None)
