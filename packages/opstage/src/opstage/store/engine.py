"""Engine setup for the two supported databases.

SQLite is treated as a real engine: WAL, foreign keys, a busy timeout and ``BEGIN IMMEDIATE``
for write transactions. Writes go through a separate engine holding one connection, so writers
in this process queue on the pool instead of racing for SQLite's lock (and failing with
SQLITE_BUSY mid-transaction); readers use their own small pool and never wait for writers.
Another process (the CLI, a second server) is covered by ``BEGIN IMMEDIATE`` + busy_timeout.

PostgreSQL uses asyncpg, and reads and writes share one pool.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool

from opstage.store.fastpath.sqlite_dialect import defer_transactions, engine_url


def normalize_url(url: str) -> str:
    """Accept the reference's ``DATABASE_URL`` spellings and pick the async driver."""
    if url.startswith("file:"):
        url = "sqlite:///" + url[len("file:") :]
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite").render_as_string(hide_password=False)
    if backend in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    raise ValueError(
        f"unsupported database URL scheme {parsed.drivername!r} (sqlite or postgresql)"
    )


def engine_kind(url: str) -> str:
    return "sqlite" if make_url(normalize_url(url)).get_backend_name() == "sqlite" else "postgres"


def sqlite_path(url: str) -> str | None:
    parsed = make_url(normalize_url(url))
    if parsed.get_backend_name() != "sqlite":
        return None
    return parsed.database or None


def _configure_sqlite(
    engine: AsyncEngine, *, immediate: bool, busy_timeout_ms: int, autocheckpoint: int | None = None
) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the driver so BEGIN is ours to issue.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        # Defence in depth: zero the old bytes of a deleted or shrunk row where that costs no
        # extra I/O, so an erased payload secret (app/commands.py) is not left behind in a page.
        cursor.execute("PRAGMA secure_delete=FAST")
        if autocheckpoint is not None:  # store/checkpoint.py checkpoints in the background
            cursor.execute(f"PRAGMA wal_autocheckpoint={int(autocheckpoint)}")
        cursor.close()

    defer_transactions(engine, "BEGIN IMMEDIATE" if immediate else "BEGIN")


@dataclass
class Engines:
    kind: str
    reader: AsyncEngine
    writer: AsyncEngine
    # Units of work waiting for the writer connection (SQLite's pool holds one): a Capsule
    # Bus session keeps the writer only while this is zero (store/bus_session.py).
    writers_waiting: int = 0

    async def dispose(self) -> None:
        await self.reader.dispose()
        if self.writer is not self.reader:
            await self.writer.dispose()


def json_dumps(value: Any) -> str:
    # orjson: the JSON columns (payloads, audit metadata, the event log) are a large share of
    # a bus ingest batch's CPU with the standard library's encoder.
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def json_loads(value: Any) -> Any:
    # SQLite's numeric affinity hands a stored JSON number back as a number, not as text.
    if isinstance(value, int | float):
        return value
    return orjson.loads(value)


JSON_OPTIONS: dict[str, Any] = {"json_serializer": json_dumps, "json_deserializer": json_loads}


def create_engines(
    url: str,
    *,
    busy_timeout_ms: int = 5000,
    echo: bool = False,
    writer_autocheckpoint: int | None = None,
) -> Engines:
    """``writer_autocheckpoint``: SQLite's WAL threshold for the writer's own checkpoints
    (default: SQLite's 1,000 pages); raised by a process that runs ``WalCheckpointer``."""
    async_url = normalize_url(url)
    if engine_kind(url) == "sqlite":
        # The fast path's dialect: transactions deferred to the first statement (ADR 0008).
        sqlite_url = engine_url(async_url)
        # No overflow: an overflow connection is opened and closed per use (a thread and the
        # PRAGMAs each time); waiting briefly for one of eight pooled readers is cheaper.
        reader = create_async_engine(
            sqlite_url,
            echo=echo,
            poolclass=AsyncAdaptedQueuePool,
            pool_size=8,
            max_overflow=0,
            pool_timeout=30,
            **JSON_OPTIONS,
        )
        writer = create_async_engine(
            sqlite_url,
            echo=echo,
            poolclass=AsyncAdaptedQueuePool,
            pool_size=1,
            max_overflow=0,
            pool_timeout=60,
            **JSON_OPTIONS,
        )
        _configure_sqlite(reader, immediate=False, busy_timeout_ms=busy_timeout_ms)
        _configure_sqlite(
            writer,
            immediate=True,
            busy_timeout_ms=busy_timeout_ms,
            autocheckpoint=writer_autocheckpoint,
        )
        return Engines("sqlite", reader, writer)
    engine = create_async_engine(
        async_url, echo=echo, pool_size=10, max_overflow=10, pool_pre_ping=True, **JSON_OPTIONS
    )
    return Engines("postgres", engine, engine)
