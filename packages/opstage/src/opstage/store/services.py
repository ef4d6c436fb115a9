"""Capsule Services with their declared configs and actions and latest health."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, and_, bindparam, case, delete, func, or_, select, update

from opstage.domain.records import (
    ActionRow,
    ConfigItemRow,
    HealthUpdate,
    ServiceChanges,
    ServiceHealth,
    ServiceHealthStatus,
    ServiceRow,
    ServiceStatusRow,
    ServiceWithAgent,
)
from opstage.domain.status import HEALTH_TO_SERVICE_STATUS, ServiceStatus, service_status_for_health
from opstage.store.base import Repo, SortSpec, like_pattern
from opstage.store.engine import json_dumps
from opstage.store.fastpath.query import Query, in_json_array
from opstage.store.fastpath.values import writer
from opstage.store.tables import action_definitions, agents, capsule_services, config_items

svc = capsule_services
SERVICE_STATUSES = tuple(s.value for s in ServiceStatus)


def status_for_health_sql() -> ColumnElement[Any]:
    """The stored status the service's current health gives (``service_status_for_health``)."""
    return case(
        *((svc.c.health_status == h.value, st.value) for h, st in HEALTH_TO_SERVICE_STATUS.items()),
        else_="UNKNOWN",
    )


# A heartbeat batch's health reads and its unchanged health's refresh, on SQLite: one statement
# text for any batch, compiled once (ADR 0017).
HEALTH_TARGETS_SQLITE = Query(
    select(
        svc.c.id, svc.c.agent_id, svc.c.health_status, svc.c.health_message, svc.c.health_details
    ).where(in_json_array(svc.c.agent_id, "ids"))
)
REFRESH_HEALTH_SQLITE = Query(
    update(svc)
    .where(in_json_array(svc.c.id, "ids"))
    .values(
        last_health_at=bindparam("at"), updated_at=bindparam("at"), status=status_for_health_sql()
    )
)
_stamp_sqlite = writer(svc.c.updated_at.type, "sqlite")


def effective_service_status_sql(
    now: datetime, offline_threshold_seconds: int, stale_threshold_seconds: int
) -> ColumnElement[Any]:
    """SQL twin of ``domain.status.effective_service_status`` over ``svc JOIN agents``."""
    heard_cutoff = now - timedelta(seconds=offline_threshold_seconds)
    stale_cutoff = now - timedelta(seconds=stale_threshold_seconds)
    heard = agents.c.last_heartbeat_at
    return case(
        (agents.c.status.in_(("OFFLINE", "DISABLED", "REVOKED")), "OFFLINE"),
        (or_(heard.is_(None), heard < heard_cutoff), "STALE"),
        (and_(svc.c.last_health_at.is_not(None), svc.c.last_health_at < stale_cutoff), "STALE"),
        (svc.c.status.in_(SERVICE_STATUSES), svc.c.status),
        else_="UNKNOWN",
    )


_WITH_AGENT = select(
    svc,
    agents.c.status.label("agent_status"),
    agents.c.last_heartbeat_at.label("agent_last_heartbeat_at"),
    agents.c.created_at.label("agent_created_at"),
).join(agents, agents.c.id == svc.c.agent_id)


_BY_ID = Query(_WITH_AGENT.where(svc.c.id == bindparam("id")))
SERVICE_BY_CODE = Query(_WITH_AGENT.where(svc.c.code == bindparam("code")))
ACTION_BY_NAME = Query(
    select(action_definitions).where(
        action_definitions.c.service_id == bindparam("service_id"),
        action_definitions.c.name == bindparam("name"),
    )
)


class ServiceRepo(Repo):
    async def get(self, service_id: str) -> ServiceWithAgent | None:
        return cast("ServiceWithAgent | None", await _BY_ID.one(self.conn, id=service_id))

    async def get_by_code(self, code: str) -> ServiceWithAgent | None:
        return cast("ServiceWithAgent | None", await SERVICE_BY_CODE.one(self.conn, code=code))

    async def by_agent(self, agent_id: str) -> builtins.list[ServiceWithAgent]:
        return await self.all(
            _WITH_AGENT.where(svc.c.agent_id == agent_id).order_by(svc.c.created_at.desc()),
            ServiceWithAgent,
        )

    async def insert(self, row: ServiceRow) -> None:
        await self.conn.execute(svc.insert().values(**row))

    async def update(self, service_id: str, values: ServiceChanges) -> None:
        await self.conn.execute(update(svc).where(svc.c.id == service_id).values(**values))

    async def list(
        self,
        *,
        statuses: Sequence[str],
        health_statuses: Sequence[str],
        agent_ids: Sequence[str],
        q: str | None,
        sort: SortSpec,
        page: int,
        page_size: int,
        now: datetime,
        offline_threshold_seconds: int,
        stale_threshold_seconds: int,
    ) -> tuple[builtins.list[ServiceWithAgent], int]:
        stmt = _WITH_AGENT
        if statuses:
            eff = effective_service_status_sql(
                now, offline_threshold_seconds, stale_threshold_seconds
            )
            stmt = stmt.where(eff.in_(list(statuses)))
        if health_statuses:
            stmt = stmt.where(svc.c.health_status.in_(list(health_statuses)))
        if agent_ids:
            stmt = stmt.where(svc.c.agent_id.in_(list(agent_ids)))
        if q:
            p = like_pattern(q)
            stmt = stmt.where(or_(svc.c.code.like(p, escape="\\"), svc.c.name.like(p, escape="\\")))
        columns = {
            "createdAt": svc.c.created_at,
            "lastReportedAt": svc.c.last_reported_at,
            "code": svc.c.code,
            "name": svc.c.name,
        }
        return await self.page(
            stmt,
            sort=sort,
            columns=columns,
            tiebreak=svc.c.id,
            page=page,
            page_size=page_size,
            record=ServiceWithAgent,
        )

    async def counts_by_status(
        self, now: datetime, offline_threshold_seconds: int, stale_threshold_seconds: int
    ) -> dict[str, int]:
        eff = effective_service_status_sql(
            now, offline_threshold_seconds, stale_threshold_seconds
        ).label("s")
        rows = await self.conn.execute(
            select(eff, func.count())
            .select_from(svc.join(agents, agents.c.id == svc.c.agent_id))
            .group_by(eff)
        )
        return {status: int(n) for status, n in rows.all()}

    # --- declared configs and actions ---
    async def configs(self, service_id: str) -> builtins.list[ConfigItemRow]:
        return await self.all(
            select(config_items)
            .where(config_items.c.service_id == service_id)
            .order_by(config_items.c.key),  # the reference lists configs by key
            ConfigItemRow,
        )

    async def actions(self, service_id: str) -> builtins.list[ActionRow]:
        return await self.all(
            select(action_definitions)
            .where(action_definitions.c.service_id == service_id)
            .order_by(action_definitions.c.position),
            ActionRow,
        )

    async def action(self, service_id: str, name: str) -> ActionRow | None:
        found = await ACTION_BY_NAME.one(self.conn, service_id=service_id, name=name)
        return cast("ActionRow | None", found)

    async def replace_configs(self, service_id: str, items: builtins.list[ConfigItemRow]) -> None:
        await self.conn.execute(delete(config_items).where(config_items.c.service_id == service_id))
        if items:
            await self.conn.execute(config_items.insert(), items)

    async def replace_actions(self, service_id: str, items: builtins.list[ActionRow]) -> None:
        await self.conn.execute(
            delete(action_definitions).where(action_definitions.c.service_id == service_id)
        )
        if items:
            await self.conn.execute(action_definitions.insert(), items)

    async def action_ids(self, service_id: str) -> dict[str, tuple[str, datetime]]:
        rows = await self.conn.execute(
            select(
                action_definitions.c.name, action_definitions.c.id, action_definitions.c.created_at
            ).where(action_definitions.c.service_id == service_id)
        )
        return {name: (id_, created) for name, id_, created in rows.all()}

    async def config_ids(self, service_id: str) -> dict[str, str]:
        rows = await self.conn.execute(
            select(config_items.c.key, config_items.c.id).where(
                config_items.c.service_id == service_id
            )
        )
        return {key: id_ for key, id_ in rows.all()}

    async def health_targets(self, agent_ids: Sequence[str]) -> builtins.list[ServiceHealth]:
        if self.kind == "sqlite":
            found = await HEALTH_TARGETS_SQLITE.rows(self.conn, ids=json_dumps(list(agent_ids)))
            return cast("builtins.list[ServiceHealth]", found)
        return await self.all(
            select(
                svc.c.id,
                svc.c.agent_id,
                svc.c.health_status,
                svc.c.health_message,
                svc.c.health_details,
            ).where(svc.c.agent_id.in_(list(agent_ids))),
            ServiceHealth,
        )

    async def refresh_health(self, service_ids: Sequence[str], at: datetime) -> None:
        """The same health reported again: its time moves, and a report ends a stored STALE."""
        if service_ids and self.kind == "sqlite":
            assert _stamp_sqlite is not None
            stamp = _stamp_sqlite(at)
            ids = json_dumps(list(service_ids))
            await REFRESH_HEALTH_SQLITE.rows(self.conn, ids=ids, at=stamp)
        elif service_ids:
            await self.conn.execute(
                update(svc)
                .where(svc.c.id.in_(list(service_ids)))
                .values(last_health_at=at, updated_at=at, status=status_for_health_sql())
            )

    async def mark_stale_of_offline_agents(
        self, now: datetime, limit: int
    ) -> builtins.list[ServiceStatusRow]:
        """The sweep's step after agents went OFFLINE, as the reference's: their services are
        stored STALE with health UNKNOWN (those stored OFFLINE or STALE already stay).

        Returns the services it changed (id, agent, previous stored status), at most ``limit``.
        """
        offline = select(agents.c.id).where(agents.c.status == "OFFLINE")
        picked = await self.all(
            select(svc.c.id, svc.c.agent_id, svc.c.status)
            .where(svc.c.agent_id.in_(offline), svc.c.status.not_in(("OFFLINE", "STALE")))
            .order_by(svc.c.id)
            .limit(limit),
            ServiceStatusRow,
        )
        if not picked:
            return []
        # The UPDATE re-checks the condition: a heartbeat that committed in between wins.
        changed = await self.conn.execute(
            update(svc)
            .where(
                svc.c.id.in_([r["id"] for r in picked]),
                svc.c.agent_id.in_(offline),
                svc.c.status.not_in(("OFFLINE", "STALE")),
            )
            .values(status="STALE", health_status="UNKNOWN", updated_at=now)
            .returning(svc.c.id)
        )
        ids = set(changed.scalars().all())
        return [r for r in picked if r["id"] in ids]

    async def set_health_many(self, updates: Sequence[HealthUpdate]) -> None:
        if not updates:
            return
        at = bindparam("b_at", type_=svc.c.last_health_at.type)
        stmt = (
            update(svc)
            .where(svc.c.id == bindparam("b_id"))
            .values(
                health_status=bindparam("b_status"),
                health_message=bindparam("b_message"),
                health_details=bindparam("b_details", type_=svc.c.health_details.type),
                last_health_at=at,
                updated_at=bindparam("b_at2", type_=svc.c.updated_at.type),
                status=bindparam("b_stored"),
            )
        )
        await self.conn.execute(
            stmt,
            [
                {
                    "b_id": u["id"],
                    "b_status": u["health_status"],
                    "b_message": u["health_message"],
                    "b_details": u["health_details"],
                    "b_at": u["at"],
                    "b_at2": u["at"],
                    "b_stored": service_status_for_health(u["health_status"]).value,
                }
                for u in updates
            ],
        )

    async def sole_service_of(self, agent_id: str) -> ServiceHealthStatus | None:
        rows = await self.all(
            select(svc.c.id, svc.c.health_status).where(svc.c.agent_id == agent_id).limit(2),
            ServiceHealthStatus,
        )
        return rows[0] if len(rows) == 1 else None
