"""Capsule Bus batches back to back on the SQLite writer connection, commits pipelined.

With one transaction per batch the event loop waited for each batch's inserts and ``COMMIT``
on the driver's thread before it could start on the next batch: a quarter to a third of the
loop's time idle at full ingest (bench/README.md). A session holds the writer connection for
a short run of batches (app/bus_batch.py decides how long) and:

- ``read`` fetches what routing needs (services, routes, targets, cause events, stored
  idempotency keys) outside any transaction, together with SQLite's ``data_version``, in one
  hand-off. Queued behind the commits already sent, it sees every one of them.
- ``commit_later`` queues a batch's whole write and returns at once; the next batch is
  prepared while it runs. The write is one statement, one transaction
  (store/fastpath/sqlite_batch.py), so the driver's thread needs the GIL back from the busy
  event loop twice per batch, not once per statement. It first checks ``data_version``: if
  another connection (another process: the CLI, a second server) committed since the reads
  the batch was prepared from, it writes nothing and answers ``False``, and the caller
  prepares the batch again from fresh reads. No other writer of this process can commit in
  between: the session holds the process's only writer connection. So a committed batch is
  exactly what one transaction reading and writing under the write lock would have produced.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from opstage.domain.events import DomainEvent
from opstage.domain.timeutil import utcnow
from opstage.store.bus import (
    RoutingReferences,
    decode_references,
    idempotency_keys_work,
    references_work,
)
from opstage.store.engine import Engines
from opstage.store.event_log import append_rows
from opstage.store.fastpath.execution import Sql, SqliteSql, enqueue, in_driver
from opstage.store.fastpath.sqlite_batch import OneStatementBatch, created_shapes
from opstage.store.fastpath.values import Row
from opstage.store.tables import domain_event_log, metadata


@dataclass
class SessionRead:
    references: RoutingReferences
    keys: dict[tuple[str, str], Row]
    version: int  # SQLite's data_version when the reads began


class BusWriterSession:
    def __init__(self, engines: Engines) -> None:
        self._engines = engines
        self._conn: AsyncConnection | None = None
        self._sent: list[asyncio.Future[bool]] = []
        self._created: set[str] = set()

    async def __aenter__(self) -> BusWriterSession:
        self._conn = await self._engines.writer.connect()
        self._created = created_shapes(self._conn.sync_connection.connection.info)  # type: ignore[union-attr]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._conn is not None
        try:
            # The connection goes back to the pool only once every queued write has run.
            await asyncio.gather(*self._sent, return_exceptions=True)
        finally:
            # Checked in whole even when the writer is being cancelled (shutdown): a check-in
            # cut short mid-reset would leave the pool a connection in an unknown state.
            closing = asyncio.ensure_future(self._conn.close())
            try:
                await asyncio.shield(closing)
            except asyncio.CancelledError:
                await closing
                raise

    def contended(self) -> bool:
        """Whether another unit of work of this process is waiting for the writer."""
        return self._engines.writers_waiting > 0

    def unfinished(self) -> asyncio.Future[bool] | None:
        while self._sent and self._sent[0].done():
            self._sent.pop(0)
        return self._sent[0] if self._sent else None

    async def read(
        self,
        source_codes: Sequence[str],
        event_types: Sequence[str],
        event_ids: Sequence[str],
        key_pairs: Sequence[tuple[str, str]],
    ) -> SessionRead:
        assert self._conn is not None
        dialect = self._conn.dialect
        refs = references_work(dialect, source_codes, event_types, event_ids)
        keys = idempotency_keys_work(dialect, key_pairs)

        def work(sql: Sql) -> tuple[int, Any, dict[tuple[str, str], Row]]:
            version = sql.fetch("PRAGMA data_version", ())[0][0]
            return int(version), refs(sql), keys(sql)

        version, raw, found = await in_driver(self._conn, work)
        return SessionRead(decode_references(dialect, raw), found, version)

    def commit_later(
        self,
        rows_by_table: Sequence[tuple[str, Sequence[Row]]],
        events: Sequence[DomainEvent],
        version: int,
    ) -> asyncio.Future[bool]:
        """Queue the batch's transaction; ``True`` once committed, ``False`` if it was stale."""
        assert self._conn is not None
        parts = [(metadata.tables[name], rows) for name, rows in rows_by_table]
        if events:
            parts.append((domain_event_log, append_rows(events, utcnow())))
        batch = OneStatementBatch(parts, version)
        created = self._created

        def work(sql: SqliteSql) -> bool:
            return batch.run(sql.raw, created)

        future = enqueue(self._conn, work)
        self._sent.append(future)
        return future
