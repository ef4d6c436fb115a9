"""SQLite transactions that ride on the unit's driver hand-offs instead of costing their own.

Every statement given to aiosqlite is a round trip to its thread and back to the event loop
(queue, thread wake-up, GIL, ``call_soon_threadsafe``): on this kind of machine 0.3-1.5 ms of
wall time under load, and about 100 µs of the loop's CPU, whatever the statement. A write unit
used to spend two of them on ``BEGIN IMMEDIATE`` and ``COMMIT`` alone. So, on SQLite:

- ``begin`` only notes the ``BEGIN`` to issue (``PENDING_BEGIN`` on the pooled connection); the
  unit's first statement issues it, in the same hand-off when that statement goes to the driver
  directly (``store/driver.py``), just before it otherwise (a ``before_cursor_execute`` hook).
  The write lock is still taken before the unit's first read, so what the unit reads and
  writes is as serialised as before; a busy database still fails that first statement with
  ``OperationalError`` (``DATABASE_UNAVAILABLE``).
- a unit whose last driver work ends with ``COMMIT`` (``driver.commit_in_driver``) marks the
  connection ``COMMITTED``; SQLAlchemy's own commit then only does its bookkeeping.
- a unit that issued no statement neither begins nor ends anything in SQLite.

The flags live in the pool record's ``info`` (per SQLite connection) and are cleared at
check-in, so nothing carries over to the next unit.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import await_only

PENDING_BEGIN = "opstage.pending_begin"
COMMITTED = "opstage.committed_in_driver"


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


def defer_transactions(engine: AsyncEngine, begin: str) -> None:
    sync_engine = engine.sync_engine
    dialect = sync_engine.dialect
    plain_commit, plain_rollback = dialect.do_commit, dialect.do_rollback

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.connection.info[PENDING_BEGIN] = begin

    @event.listens_for(sync_engine, "before_cursor_execute")
    def _before_statement(conn: Any, *_args: Any) -> None:
        owed = take_pending_begin(conn.connection.info)
        if owed is not None:
            await_only(conn.connection.driver_connection.execute(owed))

    def do_commit(dbapi_connection: Any) -> None:
        info = _info(dbapi_connection)
        if take_pending_begin(info) is not None or info.pop(COMMITTED, False):
            return  # nothing was begun, or the driver work already committed
        plain_commit(dbapi_connection)

    def do_rollback(dbapi_connection: Any) -> None:
        info = _info(dbapi_connection)
        info.pop(COMMITTED, None)
        if take_pending_begin(info) is not None:
            return
        plain_rollback(dbapi_connection)

    # Instance attributes: only this engine's dialect (SQLite) changes.
    dialect.do_commit = do_commit  # type: ignore[method-assign]
    dialect.do_rollback = do_rollback  # type: ignore[method-assign]

    @event.listens_for(sync_engine.pool, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info.pop(PENDING_BEGIN, None)
        record.info.pop(COMMITTED, None)
