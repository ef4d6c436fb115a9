"""Commands for agents and the results they report."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import exists, func, or_, select, update

from opstage.domain.records import CommandChanges, CommandResultRow, CommandRow
from opstage.store.base import Repo, SortSpec
from opstage.store.fastpath.execution import insert_rows
from opstage.store.tables import command_results, commands

c = commands


class CommandRepo(Repo):
    async def get(self, command_id: str) -> CommandRow | None:
        return await self.one(select(c).where(c.c.id == command_id), CommandRow)

    async def insert(self, row: CommandRow) -> None:
        await self.conn.execute(c.insert().values(**row))

    async def insert_many(self, rows: Sequence[CommandRow]) -> None:
        await insert_rows(self.conn, c, cast(Sequence[dict[str, Any]], rows))

    async def update(
        self,
        command_id: str,
        values: CommandChanges,
        *,
        only_statuses: Sequence[str] | None = None,
    ) -> int:
        stmt = update(c).where(c.c.id == command_id)
        if only_statuses is not None:
            stmt = stmt.where(c.c.status.in_(list(only_statuses)))
        return int((await self.conn.execute(stmt.values(**values))).rowcount)

    async def has_pending(self, agent_id: str) -> bool:
        stmt = select(exists().where(c.c.agent_id == agent_id, c.c.status == "PENDING"))
        return bool((await self.conn.execute(stmt)).scalar())

    async def agents_with_pending(self) -> frozenset[str]:
        rows = await self.conn.execute(
            select(c.c.agent_id).where(c.c.status == "PENDING").distinct()
        )
        return frozenset(rows.scalars().all())

    async def claim_pending(
        self, agent_id: str, limit: int, now: datetime
    ) -> builtins.list[CommandRow]:
        """PENDING → RUNNING for this agent's oldest commands, exactly once across pollers."""
        pick = (
            select(c.c.id)
            .where(
                c.c.agent_id == agent_id,
                c.c.status == "PENDING",
                or_(c.c.expires_at.is_(None), c.c.expires_at > now),
            )
            .order_by(c.c.created_at, c.c.id)
            .limit(limit)
        )
        if self.kind == "postgres":
            pick = pick.with_for_update(skip_locked=True)
        # One statement (UPDATE … RETURNING, SQLite ≥ 3.35 and PostgreSQL): the status test in
        # the WHERE keeps a command from being claimed twice by concurrent pollers.
        result = await self.conn.execute(
            update(c)
            .where(c.c.id.in_(pick.scalar_subquery()), c.c.status == "PENDING")
            .values(status="RUNNING", started_at=now, updated_at=now)
            .returning(*c.c)
        )
        rows = [cast(CommandRow, dict(r)) for r in result.mappings().all()]
        rows.sort(key=lambda r: (r["created_at"], r["id"]))
        return rows

    async def list(
        self,
        *,
        statuses: Sequence[str],
        types: Sequence[str],
        action_names: Sequence[str],
        service_ids: Sequence[str],
        agent_ids: Sequence[str],
        sort: SortSpec,
        page: int,
        page_size: int,
    ) -> tuple[builtins.list[CommandRow], int]:
        stmt = select(c)
        for column, values in (
            (c.c.status, statuses),
            (c.c.type, types),
            (c.c.action_name, action_names),
            (c.c.service_id, service_ids),
            (c.c.agent_id, agent_ids),
        ):
            if values:
                stmt = stmt.where(column.in_(list(values)))
        columns = {
            "createdAt": c.c.created_at,
            "finishedAt": c.c.completed_at,
            "completedAt": c.c.completed_at,
            "startedAt": c.c.started_at,
        }
        return await self.page(
            stmt,
            sort=sort,
            columns=columns,
            tiebreak=c.c.id,
            page=page,
            page_size=page_size,
            record=CommandRow,
        )

    async def due_for_expiry(self, now: datetime, limit: int = 500) -> builtins.list[CommandRow]:
        return await self.all(
            select(c)
            .where(
                c.c.status.in_(("PENDING", "RUNNING")),
                c.c.expires_at.is_not(None),
                c.c.expires_at < now,
            )
            .order_by(c.c.expires_at)
            .limit(limit),
            CommandRow,
        )

    async def counts_by_status(self) -> dict[str, int]:
        rows = await self.conn.execute(select(c.c.status, func.count()).group_by(c.c.status))
        return {status: int(n) for status, n in rows.all()}

    async def recent(self, limit: int) -> builtins.list[CommandRow]:
        return await self.all(
            select(c).order_by(c.c.created_at.desc(), c.c.id.desc()).limit(limit), CommandRow
        )

    # --- results ---
    async def result(self, command_id: str) -> CommandResultRow | None:
        return await self.one(
            select(command_results).where(command_results.c.command_id == command_id),
            CommandResultRow,
        )

    async def insert_result(self, row: CommandResultRow) -> None:
        await self.conn.execute(command_results.insert().values(**row))
