"""Capsule Bus routes and stored events."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import bindparam, delete, select, tuple_, update

from opstage.store.base import Repo, Row
from opstage.store.driver import Query, insert_rows
from opstage.store.tables import bus_events, bus_routes

r = bus_routes
e = bus_events
_CANDIDATES = Query(
    select(r)
    .where(
        r.c.event_type == bindparam("event_type"),
        r.c.status.in_([bindparam("live", "ENABLED"), bindparam("trial", "DRY_RUN")]),
    )
    .order_by(r.c.created_at, r.c.id)
)
_EVENT = Query(select(e).where(e.c.id == bindparam("id")))


class BusRouteRepo(Repo):
    async def get(self, route_id: str) -> Row | None:
        return await self.one(select(r).where(r.c.id == route_id))

    async def insert(self, row: Row) -> None:
        await self.conn.execute(r.insert().values(**row))

    async def update(self, route_id: str, values: Row) -> None:
        await self.conn.execute(update(r).where(r.c.id == route_id).values(**values))

    async def delete(self, route_id: str) -> None:
        await self.conn.execute(delete(r).where(r.c.id == route_id))

    async def list(self, *, page: int, page_size: int) -> tuple[builtins.list[Row], int]:
        return await self.page(
            select(r),
            sort=[("createdAt", False)],
            columns={"createdAt": r.c.created_at},
            tiebreak=r.c.id,
            page=page,
            page_size=page_size,
        )

    async def candidates(self, event_type: str) -> builtins.list[Row]:
        """Live routes for an event type, oldest first (filters are applied by the caller)."""
        return await _CANDIDATES.rows(self.conn, event_type=event_type)


class BusEventRepo(Repo):
    async def get(self, event_id: str) -> Row | None:
        return await _EVENT.one(self.conn, id=event_id)

    async def by_idempotency_key(self, agent_id: str, key: str, since: datetime) -> Row | None:
        return await self.one(
            select(e).where(
                e.c.agent_id == agent_id, e.c.idempotency_key == key, e.c.accepted_at >= since
            )
        )

    async def by_idempotency_keys(
        self, pairs: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], Row]:
        """Stored events holding any of these (agent, key) pairs, whatever their age."""
        if not pairs:
            return {}
        rows = await self.all(
            select(e).where(tuple_(e.c.agent_id, e.c.idempotency_key).in_(list(pairs)))
        )
        return {(row["agent_id"], row["idempotency_key"]): row for row in rows}

    async def release_idempotency_key(self, agent_id: str, key: str, before: datetime) -> None:
        """An expired key (accepted before the replay window) may be used again."""
        await self.conn.execute(
            update(e)
            .where(e.c.agent_id == agent_id, e.c.idempotency_key == key, e.c.accepted_at < before)
            .values(idempotency_key=None)
        )

    async def insert(self, row: Row) -> None:
        await self.conn.execute(e.insert().values(**row))

    async def insert_many(self, rows: Sequence[Row]) -> None:
        await insert_rows(self.conn, e, rows)

    async def set_outcome(self, event_id: str, route_count: int, response: Row) -> None:
        await self.conn.execute(
            update(e).where(e.c.id == event_id).values(route_count=route_count, response=response)
        )

    async def recent_accepts(
        self, agent_id: str, since: datetime, limit: int
    ) -> builtins.list[datetime]:
        rows = await self.all(
            select(e.c.accepted_at)
            .where(e.c.agent_id == agent_id, e.c.accepted_at > since)
            .order_by(e.c.accepted_at.desc())
            .limit(limit)
        )
        return [row["accepted_at"] for row in rows]

    async def list(
        self, *, page: int, page_size: int, event_type: str | None = None
    ) -> tuple[builtins.list[Row], int]:
        stmt = select(e)
        if event_type:
            stmt = stmt.where(e.c.event_type == event_type)
        return await self.page(
            stmt,
            sort=[("acceptedAt", True)],
            columns={"acceptedAt": e.c.accepted_at},
            tiebreak=e.c.id,
            page=page,
            page_size=page_size,
        )

    async def latest(self, event_type: str, limit: int) -> builtins.list[Row]:
        return await self.all(
            select(e)
            .where(e.c.event_type == event_type)
            .order_by(e.c.accepted_at.desc(), e.c.id.desc())
            .limit(limit)
        )
