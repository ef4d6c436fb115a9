"""The audit trail: append-only rows written in the same transaction as the change.

Reads for export walk the filtered set in keyset order, one short query per batch, so an export
of a million rows holds neither a million rows in memory nor one long transaction. Retention
deletes in small batches, each its own transaction, so writers never wait long for the lock.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Select, delete, or_, select

from opstage.domain.records import AuditRow
from opstage.store.base import Repo, SortSpec
from opstage.store.fastpath.execution import insert_rows
from opstage.store.tables import audit_events as a


def _filtered(
    stmt: Select[Any],
    *,
    actor_types: Sequence[str] = (),
    results: Sequence[str] = (),
    actions: Sequence[str] = (),
    target_type: str | None = None,
    target_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    action_prefix: str | None = None,
    walk_time_index: bool = False,
) -> Select[Any]:
    action_col: Any = a.c.action
    target_type_col: Any = a.c.target_type
    if walk_time_index:
        # ``x || ''`` is the same value, but no index can serve it: the planner keeps walking
        # the created_at index instead of sorting every match of an indexed filter.
        action_col = a.c.action.concat("")
        target_type_col = a.c.target_type.concat("")
    if action_prefix:
        stmt = stmt.where(a.c.action.startswith(action_prefix, autoescape=True))
    if actor_types:
        stmt = stmt.where(a.c.actor_type.in_(list(actor_types)))
    if results:
        stmt = stmt.where(a.c.result.in_(list(results)))
    if actions:
        stmt = stmt.where(action_col.in_(list(actions)))
    if target_type:
        stmt = stmt.where(target_type_col == target_type)
    if target_id:
        stmt = stmt.where(a.c.target_id == target_id)
    if since:
        stmt = stmt.where(a.c.created_at >= since)
    if until:
        stmt = stmt.where(a.c.created_at <= until)
    return stmt


class AuditRepo(Repo):
    async def insert(self, row: AuditRow) -> None:
        await self.conn.execute(a.insert().values(**row))

    async def insert_many(self, rows: Sequence[AuditRow]) -> None:
        await insert_rows(self.conn, a, cast(Sequence[dict[str, Any]], rows))

    async def get(self, audit_id: str) -> AuditRow | None:
        return await self.one(select(a).where(a.c.id == audit_id), AuditRow)

    async def list(
        self,
        *,
        actor_types: Sequence[str],
        results: Sequence[str],
        actions: Sequence[str],
        target_type: str | None,
        target_id: str | None,
        since: datetime | None,
        until: datetime | None,
        sort: SortSpec,
        page: int,
        page_size: int,
        action_prefix: str | None = None,
    ) -> tuple[builtins.list[AuditRow], int]:
        stmt = _filtered(
            select(a),
            actor_types=actor_types,
            results=results,
            actions=actions,
            target_type=target_type,
            target_id=target_id,
            since=since,
            until=until,
            action_prefix=action_prefix,
        )
        return await self.page(
            stmt,
            sort=sort,
            columns={"createdAt": a.c.created_at},
            tiebreak=a.c.id,
            page=page,
            page_size=page_size,
            record=AuditRow,
        )

    async def batch_after(
        self,
        *,
        after: tuple[datetime, str] | None,
        descending: bool,
        limit: int,
        actor_types: Sequence[str] = (),
        results: Sequence[str] = (),
        actions: Sequence[str] = (),
        target_type: str | None = None,
        target_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> builtins.list[AuditRow]:
        """The next ``limit`` rows of the filtered set in (createdAt, id) order, after a cursor.

        Each batch must cost about ``limit`` rows, not the whole filtered set: on SQLite, which
        has no statistics, an ``action`` filter would otherwise pick the action index and sort
        every matching row again for every batch (quadratic over an export). Walking the
        created_at index instead makes a whole export one pass. A ``targetId`` filter is
        selective enough that its own index wins, so it keeps the planner's choice.
        """
        walk = self.kind == "sqlite" and not target_id
        stmt = _filtered(
            select(a),
            actor_types=actor_types,
            results=results,
            actions=actions,
            target_type=target_type,
            target_id=target_id,
            since=since,
            until=until,
            walk_time_index=walk,
        )
        if after is not None:
            at, last_id = after
            # The range on created_at alone is what the index serves; the id breaks ties.
            if descending:
                stmt = stmt.where(a.c.created_at <= at, or_(a.c.created_at < at, a.c.id < last_id))
            else:
                stmt = stmt.where(a.c.created_at >= at, or_(a.c.created_at > at, a.c.id > last_id))
        if descending:
            stmt = stmt.order_by(a.c.created_at.desc(), a.c.id.desc())
        else:
            stmt = stmt.order_by(a.c.created_at.asc(), a.c.id.asc())
        return await self.all(stmt.limit(limit), AuditRow)

    async def prune_before(self, cutoff: datetime, limit: int) -> int:
        """Delete at most ``limit`` of the oldest rows created before ``cutoff``."""
        oldest = select(a.c.id).where(a.c.created_at < cutoff).order_by(a.c.created_at).limit(limit)
        result = await self.conn.execute(delete(a).where(a.c.id.in_(oldest)))
        return int(result.rowcount)
