"""The durable domain-event log: append in the unit of work's transaction, read by id, prune.

Ids are the live stream's resume points, so a reader that has seen id N must never later find
a row below N appear. SQLite gives that for free (one writer at a time); on PostgreSQL two
transactions could take ids 5 and 6 and commit 6 first, so appends take a transaction-scoped
advisory lock just before commit: ids are then handed out in commit order. The lock is held
only for the insert and the commit, and only by transactions that recorded events.

What pruning removed is remembered as a watermark (``system_settings``), so a client asking to
resume from below it is told about the gap instead of silently missing events.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import Dialect

from opstage.domain.events import DomainEvent
from opstage.domain.records import EventLogRow
from opstage.store.base import Repo
from opstage.store.fastpath.inserts import Insert, insert_statement
from opstage.store.tables import domain_event_log as log
from opstage.store.tables import system_settings

PRUNED_THROUGH_KEY = "event_log.pruned_through"
# pg_advisory_xact_lock key of the log's tail ("opstage" "log" in ASCII, arbitrary but fixed).
APPEND_LOCK_KEY = 0x6F70_7374_6167_6C6F


def append_rows(events: Sequence[DomainEvent], now: datetime) -> builtins.list[dict[str, Any]]:
    """The log's rows for ``events`` (SQLite needs no lock to append them: one writer)."""
    # orjson writes a dataclass as the object of its fields, what the log's readers expect.
    return [{"kind": e.kind, "data": e, "created_at": now} for e in events]


def append_statement(dialect: Dialect, events: Sequence[DomainEvent], now: datetime) -> Insert:
    """The insert of ``events``' log rows (on PostgreSQL the unit's tail takes the log's lock
    first: store/fastpath/pg_tail.py)."""
    return insert_statement(dialect, log, append_rows(events, now))


class EventLogRepo(Repo):
    async def after(
        self, cursor: int, limit: int, kinds: Sequence[str] = ()
    ) -> tuple[builtins.list[EventLogRow], int]:
        """Rows with id > cursor (oldest first), and the id the reader may move its cursor to.

        With ``kinds`` (prefixes), rows of other kinds are skipped but still move the cursor.
        """
        stmt = select(log).where(log.c.id > cursor).order_by(log.c.id).limit(limit)
        rows = await self.all(stmt, EventLogRow)
        if not rows:
            return [], cursor
        last = int(rows[-1]["id"])
        if kinds:
            rows = [r for r in rows if r["kind"].startswith(tuple(kinds))]
        return rows, last

    async def bounds(self) -> tuple[int | None, int | None, int]:
        """(oldest retained id, newest id, pruned-through watermark)."""
        row = (await self.conn.execute(select(func.min(log.c.id), func.max(log.c.id)))).one()
        return (
            int(row[0]) if row[0] is not None else None,
            int(row[1]) if row[1] is not None else None,
            await self.pruned_through(),
        )

    async def pruned_through(self) -> int:
        value = (
            await self.conn.execute(
                select(system_settings.c.value).where(system_settings.c.key == PRUNED_THROUGH_KEY)
            )
        ).scalar()
        return int(value) if isinstance(value, int | float) else 0

    async def last_id_before(self, cutoff: datetime) -> int | None:
        value = (
            await self.conn.execute(select(func.max(log.c.id)).where(log.c.created_at < cutoff))
        ).scalar()
        return int(value) if value is not None else None

    async def prune_batch(self, through_id: int, limit: int, now: datetime) -> int:
        """Delete up to ``limit`` of the oldest rows with id <= through_id; raise the watermark."""
        found = await self.conn.execute(
            select(log.c.id).where(log.c.id <= through_id).order_by(log.c.id).limit(limit)
        )
        ids = [int(i) for i in found.scalars().all()]
        if not ids:
            return 0
        await self.conn.execute(delete(log).where(log.c.id >= ids[0], log.c.id <= ids[-1]))
        mark = max(ids[-1], await self.pruned_through())
        changed = await self.conn.execute(
            update(system_settings)
            .where(system_settings.c.key == PRUNED_THROUGH_KEY)
            .values(value=mark, updated_at=now)
        )
        if not changed.rowcount:
            await self.conn.execute(
                system_settings.insert().values(key=PRUNED_THROUGH_KEY, value=mark, updated_at=now)
            )
        return len(ids)
