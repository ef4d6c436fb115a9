"""Agents and their bearer tokens."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime
from typing import cast

from sqlalchemy import bindparam, case, func, or_, select, update

from opstage.domain.records import (
    AgentChanges,
    AgentContact,
    AgentCredential,
    AgentRow,
    AgentStatusRow,
    AgentTokenRow,
)
from opstage.store.base import Repo, SortSpec, like_pattern
from opstage.store.engine import json_dumps
from opstage.store.fastpath.query import Query, in_json_array
from opstage.store.fastpath.values import writer
from opstage.store.tables import UtcDateTime, agent_tokens, agents, capsule_services

LIVE_STATUSES = ("ONLINE", "PENDING")


AGENT_BY_ID = Query(select(agents).where(agents.c.id == bindparam("id")))
# The group-committed contact of agents already ONLINE (nearly every heartbeat and poll), on
# SQLite: one statement text for any batch, compiled once (ADR 0017).
TOUCH_ONLINE_SQLITE = Query(
    update(agents)
    # ``|| ''``: the batch's ids through the primary key, not every ONLINE agent through the
    # status index, which SQLite's planner prefers to a subquery's list.
    .where(in_json_array(agents.c.id, "ids"), agents.c.status.concat("") == "ONLINE")
    .values(last_heartbeat_at=bindparam("at"), updated_at=bindparam("at"))
    .returning(agents.c.id)
)
_stamp_sqlite = writer(agents.c.updated_at.type, "sqlite")
_CREDENTIAL = select(
    agent_tokens.c.id.label("token_id"),
    agent_tokens.c.status.label("token_status"),
    agent_tokens.c.agent_id,
    agents.c.status.label("agent_status"),
    agents.c.code.label("agent_code"),
).join(agents, agents.c.id == agent_tokens.c.agent_id)
# Every agent's first call after a start: compiled once, run in one hand-off (ADR 0017).
TOKEN_BY_HASH = Query(_CREDENTIAL.where(agent_tokens.c.token_hash == bindparam("token_hash")))
# The auth cache's bulk refresh (app/agents.py refresh_agent_auth), on SQLite (ADR 0017).
TOKENS_BY_HASHES_SQLITE = Query(
    _CREDENTIAL.add_columns(agent_tokens.c.token_hash).where(
        in_json_array(agent_tokens.c.token_hash, "hashes")
    )
)


class AgentRepo(Repo):
    async def get(self, agent_id: str) -> AgentRow | None:
        return cast("AgentRow | None", await AGENT_BY_ID.one(self.conn, id=agent_id))

    async def get_by_code(self, code: str) -> AgentRow | None:
        return await self.one(select(agents).where(agents.c.code == code), AgentRow)

    async def insert(self, row: AgentRow) -> None:
        await self.conn.execute(agents.insert().values(**row))

    async def update(self, agent_id: str, values: AgentChanges) -> int:
        result = await self.conn.execute(
            update(agents).where(agents.c.id == agent_id).values(**values)
        )
        return int(result.rowcount)

    async def list(
        self,
        *,
        statuses: Sequence[str],
        q: str | None,
        sort: SortSpec,
        page: int,
        page_size: int,
    ) -> tuple[builtins.list[AgentRow], int]:
        # An agent reads its stored status: ONLINE until the sweep stores OFFLINE (as the
        # reference); its services read STALE in between.
        stmt = select(agents)
        if statuses:
            stmt = stmt.where(agents.c.status.in_(list(statuses)))
        if q:
            pattern = like_pattern(q)
            stmt = stmt.where(
                or_(
                    agents.c.code.like(pattern, escape="\\"),
                    agents.c.name.like(pattern, escape="\\"),
                )
            )
        columns = {
            "createdAt": agents.c.created_at,
            "lastSeenAt": agents.c.last_heartbeat_at,
            "lastHeartbeatAt": agents.c.last_heartbeat_at,
            "name": agents.c.name,
            "code": agents.c.code,
        }
        return await self.page(
            stmt,
            sort=sort,
            columns=columns,
            tiebreak=agents.c.id,
            page=page,
            page_size=page_size,
            record=AgentRow,
        )

    async def service_counts(self, agent_ids: Sequence[str]) -> dict[str, int]:
        if not agent_ids:
            return {}
        rows = await self.conn.execute(
            select(capsule_services.c.agent_id, func.count())
            .where(capsule_services.c.agent_id.in_(list(agent_ids)))
            .group_by(capsule_services.c.agent_id)
        )
        return {agent_id: int(n) for agent_id, n in rows.all()}

    async def counts_by_status(self) -> dict[str, int]:
        rows = await self.conn.execute(
            select(agents.c.status, func.count()).group_by(agents.c.status)
        )
        return {status: int(n) for status, n in rows.all()}

    # --- tokens ---
    async def token_by_hash(self, token_hash: str) -> AgentCredential | None:
        found = await TOKEN_BY_HASH.one(self.conn, token_hash=token_hash)
        return cast("AgentCredential | None", found)

    async def tokens_by_hashes(self, token_hashes: Sequence[str]) -> dict[str, AgentCredential]:
        if not token_hashes:
            return {}
        if self.kind == "sqlite":
            rows = await TOKENS_BY_HASHES_SQLITE.rows(
                self.conn, hashes=json_dumps(list(token_hashes))
            )
        else:
            stmt = _CREDENTIAL.add_columns(agent_tokens.c.token_hash).where(
                agent_tokens.c.token_hash.in_(list(token_hashes))
            )
            rows = [dict(r) for r in (await self.conn.execute(stmt)).mappings().all()]
        out: dict[str, AgentCredential] = {}
        for row in rows:
            token_hash = row.pop("token_hash")
            out[token_hash] = cast(AgentCredential, row)
        return out

    async def insert_token(self, row: AgentTokenRow) -> None:
        await self.conn.execute(agent_tokens.insert().values(**row))

    async def revoke_active_tokens(self, agent_id: str, now: datetime) -> int:
        result = await self.conn.execute(
            update(agent_tokens)
            .where(agent_tokens.c.agent_id == agent_id, agent_tokens.c.status == "ACTIVE")
            .values(status="REVOKED", revoked_at=now)
        )
        return int(result.rowcount)

    # --- heartbeats (group commit) ---
    async def statuses(self, agent_ids: Sequence[str]) -> dict[str, AgentContact]:
        rows = await self.all(
            select(agents.c.id, agents.c.status, agents.c.last_heartbeat_at).where(
                agents.c.id.in_(list(agent_ids))
            ),
            AgentContact,
        )
        return {r["id"]: r for r in rows}

    async def touch_online(self, agent_ids: Sequence[str], at: datetime) -> int:
        """Record contact of agents that are ONLINE already (the steady state) in one statement.

        Returns how many it touched; the caller handles the others (status transitions).
        """
        if self.kind == "sqlite":
            ids = json_dumps(list(agent_ids))
            assert _stamp_sqlite is not None
            return len(await TOUCH_ONLINE_SQLITE.rows(self.conn, ids=ids, at=_stamp_sqlite(at)))
        result = await self.conn.execute(
            update(agents)
            .where(agents.c.id.in_(list(agent_ids)), agents.c.status == "ONLINE")
            .values(last_heartbeat_at=at, updated_at=at)
        )
        return int(result.rowcount)

    async def touch_many(self, agent_ids: Sequence[str], at: datetime) -> None:
        """Record contact: live or silent agents become ONLINE; disabled/revoked stay put."""
        await self.conn.execute(
            update(agents)
            .where(agents.c.id.in_(list(agent_ids)))
            .values(
                last_heartbeat_at=at,
                updated_at=at,
                status=case(
                    (agents.c.status.in_(["PENDING", "ONLINE", "OFFLINE"]), "ONLINE"),
                    else_=agents.c.status,
                ),
            )
        )

    async def mark_offline_if_stale(self, agent_id: str, cutoff: datetime, now: datetime) -> int:
        """Store OFFLINE only if the agent is still live and still silent since ``cutoff``.

        The condition is re-checked by the UPDATE itself, so a heartbeat that commits between
        the sweep's read and this write (PostgreSQL, READ COMMITTED) wins.
        """
        seen = func.coalesce(agents.c.last_heartbeat_at, agents.c.created_at, type_=UtcDateTime())
        result = await self.conn.execute(
            update(agents)
            .where(agents.c.id == agent_id, agents.c.status.in_(LIVE_STATUSES), seen < cutoff)
            .values(status="OFFLINE", updated_at=now)
        )
        return int(result.rowcount)

    async def stale_live(self, cutoff: datetime, limit: int = 500) -> builtins.list[AgentStatusRow]:
        seen = func.coalesce(agents.c.last_heartbeat_at, agents.c.created_at, type_=UtcDateTime())
        return await self.all(
            select(agents.c.id, agents.c.status)
            .where(agents.c.status.in_(LIVE_STATUSES), seen < cutoff)
            .limit(limit),
            AgentStatusRow,
        )
