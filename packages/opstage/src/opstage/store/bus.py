"""Capsule Bus routes and stored events."""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import bindparam, delete, select, tuple_, update
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection

from opstage.domain.records import (
    ActionRow,
    AgentRow,
    BusEventRow,
    BusRouteChanges,
    BusRouteRow,
    JsonObject,
    ServiceWithAgent,
)
from opstage.domain.records import RoutingReferences as RoutingReferences
from opstage.store.agents import AGENT_BY_ID
from opstage.store.base import Repo
from opstage.store.fastpath.execution import Sql, in_driver, insert_rows
from opstage.store.fastpath.query import Query
from opstage.store.services import ACTION_BY_NAME, SERVICE_BY_CODE
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
_BY_KEY = Query(
    select(e).where(e.c.agent_id == bindparam("agent_id"), e.c.idempotency_key == bindparam("key"))
)


class BusRouteRepo(Repo):
    async def references(
        self, source_codes: Sequence[str], event_types: Sequence[str], event_ids: Sequence[str]
    ) -> RoutingReferences:
        return await routing_references(self.conn, source_codes, event_types, event_ids)

    async def get(self, route_id: str) -> BusRouteRow | None:
        return await self.one(select(r).where(r.c.id == route_id), BusRouteRow)

    async def insert(self, row: BusRouteRow) -> None:
        await self.conn.execute(r.insert().values(**row))

    async def update(self, route_id: str, values: BusRouteChanges) -> None:
        await self.conn.execute(update(r).where(r.c.id == route_id).values(**values))

    async def delete(self, route_id: str) -> None:
        await self.conn.execute(delete(r).where(r.c.id == route_id))

    async def list(self, *, page: int, page_size: int) -> tuple[builtins.list[BusRouteRow], int]:
        return await self.page(
            select(r),
            sort=[("createdAt", False)],
            columns={"createdAt": r.c.created_at},
            tiebreak=r.c.id,
            page=page,
            page_size=page_size,
            record=BusRouteRow,
        )

    async def candidates(self, event_type: str) -> builtins.list[BusRouteRow]:
        """Live routes for an event type, oldest first (filters are applied by the caller)."""
        rows = await _CANDIDATES.rows(self.conn, event_type=event_type)
        return cast("builtins.list[BusRouteRow]", rows)


_Raw = dict[Any, Any]
RawReferences = tuple[_Raw, _Raw, _Raw, _Raw, _Raw]


async def routing_references(
    conn: AsyncConnection,
    source_codes: Iterable[str],
    event_types: Iterable[str],
    event_ids: Iterable[str],
) -> RoutingReferences:
    """Source services, live routes, their targets (service, action, agent) and cause events.

    The same statements as ``get_by_code``, ``candidates``, ``action``, ``AgentRepo.get`` and
    ``BusEventRepo.get``; the targets depend on the routes found, so the whole walk runs where
    the driver runs rather than one round trip per read.
    """
    work = references_work(conn.dialect, source_codes, event_types, event_ids)
    return decode_references(conn.dialect, await in_driver(conn, work))


def references_work(
    dialect: Dialect,
    source_codes: Iterable[str],
    event_types: Iterable[str],
    event_ids: Iterable[str],
) -> Callable[[Sql], RawReferences]:
    """``routing_references``' reads, as work for ``in_driver`` (raw rows)."""
    code_at, action_at = (
        _CANDIDATES.index("target_service_code"),
        _CANDIDATES.index("target_action_name"),
    )
    id_at, agent_at = SERVICE_BY_CODE.index("id"), SERVICE_BY_CODE.index("agent_id")
    Raw = builtins.list[tuple[Any, ...]]

    def work(sql: Sql) -> RawReferences:
        services = {c: sql.fetch(*SERVICE_BY_CODE.bind(dialect, code=c)) for c in source_codes}
        routes = {t: sql.fetch(*_CANDIDATES.bind(dialect, event_type=t)) for t in event_types}
        events = {i: sql.fetch(*_EVENT.bind(dialect, id=i)) for i in event_ids}
        actions: dict[Any, Raw] = {}
        agents: dict[str, Raw] = {}
        for rows in routes.values():
            for route in rows:
                code, name = route[code_at], route[action_at]
                if code not in services:
                    services[code] = sql.fetch(*SERVICE_BY_CODE.bind(dialect, code=code))
                if not services[code]:
                    continue
                service_id, agent_id = services[code][0][id_at], services[code][0][agent_at]
                if (service_id, name) not in actions:
                    bound = ACTION_BY_NAME.bind(dialect, service_id=service_id, name=name)
                    actions[(service_id, name)] = sql.fetch(*bound)
                if agent_id not in agents:
                    agents[agent_id] = sql.fetch(*AGENT_BY_ID.bind(dialect, id=agent_id))
        return services, routes, actions, agents, events

    return work


def decode_references(dialect: Dialect, raw: RawReferences) -> RoutingReferences:
    services, routes, actions, agents, events = raw

    def one(query: Query, found: Any) -> Any:
        return query.decode(dialect, found)[0] if found else None

    # The records' types are the queries' columns (ADR 0011): the decoded dicts, unconverted.
    return RoutingReferences(
        services_by_code={
            k: cast("ServiceWithAgent | None", one(SERVICE_BY_CODE, v)) for k, v in services.items()
        },
        routes_by_type={
            k: cast("builtins.list[BusRouteRow]", _CANDIDATES.decode(dialect, v))
            for k, v in routes.items()
        },
        actions={k: cast("ActionRow | None", one(ACTION_BY_NAME, v)) for k, v in actions.items()},
        agents={k: cast("AgentRow | None", one(AGENT_BY_ID, v)) for k, v in agents.items()},
        events={k: cast("BusEventRow | None", one(_EVENT, v)) for k, v in events.items()},
    )


def idempotency_keys_work(
    dialect: Dialect, pairs: Sequence[tuple[str, str]]
) -> Callable[[Sql], dict[tuple[str, str], dict[str, Any]]]:
    """``by_idempotency_keys`` as work for ``in_driver``: one indexed lookup per pair."""

    def work(sql: Sql) -> dict[tuple[str, str], dict[str, Any]]:
        found = {}
        for agent_id, key in pairs:
            rows = sql.fetch(*_BY_KEY.bind(dialect, agent_id=agent_id, key=key))
            if rows:
                found[(agent_id, key)] = _BY_KEY.decode(dialect, rows)[0]
        return found

    return work


class BusEventRepo(Repo):
    async def get(self, event_id: str) -> BusEventRow | None:
        return cast("BusEventRow | None", await _EVENT.one(self.conn, id=event_id))

    async def by_idempotency_key(
        self, agent_id: str, key: str, since: datetime
    ) -> BusEventRow | None:
        return await self.one(
            select(e).where(
                e.c.agent_id == agent_id, e.c.idempotency_key == key, e.c.accepted_at >= since
            ),
            BusEventRow,
        )

    async def by_idempotency_keys(
        self, pairs: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], BusEventRow]:
        """Stored events holding any of these (agent, key) pairs, whatever their age."""
        if not pairs:
            return {}
        rows = await self.all(
            select(e).where(tuple_(e.c.agent_id, e.c.idempotency_key).in_(list(pairs))),
            BusEventRow,
        )
        return {(row["agent_id"], row["idempotency_key"] or ""): row for row in rows}

    async def release_idempotency_key(self, agent_id: str, key: str, before: datetime) -> None:
        """An expired key (accepted before the replay window) may be used again."""
        await self.conn.execute(
            update(e)
            .where(e.c.agent_id == agent_id, e.c.idempotency_key == key, e.c.accepted_at < before)
            .values(idempotency_key=None)
        )

    async def insert(self, row: BusEventRow) -> None:
        await self.conn.execute(e.insert().values(**row))

    async def insert_many(self, rows: Sequence[BusEventRow]) -> None:
        await insert_rows(self.conn, e, cast(Sequence[dict[str, Any]], rows))

    async def set_outcome(self, event_id: str, route_count: int, response: JsonObject) -> None:
        await self.conn.execute(
            update(e).where(e.c.id == event_id).values(route_count=route_count, response=response)
        )

    async def recent_accepts(
        self, agent_id: str, since: datetime, limit: int
    ) -> builtins.list[datetime]:
        rows = await self.conn.execute(
            select(e.c.accepted_at)
            .where(e.c.agent_id == agent_id, e.c.accepted_at > since)
            .order_by(e.c.accepted_at.desc())
            .limit(limit)
        )
        return list(rows.scalars().all())

    async def list(
        self, *, page: int, page_size: int, event_type: str | None = None
    ) -> tuple[builtins.list[BusEventRow], int]:
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
            record=BusEventRow,
        )

    async def latest(self, event_type: str, limit: int) -> builtins.list[BusEventRow]:
        return await self.all(
            select(e)
            .where(e.c.event_type == event_type)
            .order_by(e.c.accepted_at.desc(), e.c.id.desc())
            .limit(limit),
            BusEventRow,
        )
