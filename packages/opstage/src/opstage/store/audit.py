"""The audit trail: append-only rows written in the same transaction as the change."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select

from opstage.store.base import Repo, Row, SortSpec
from opstage.store.tables import audit_events as a


class AuditRepo(Repo):
    async def insert(self, row: Row) -> None:
        await self.conn.execute(a.insert().values(**row))

    async def get(self, audit_id: str) -> Row | None:
        return await self.one(select(a).where(a.c.id == audit_id))

    async def list(
        self, *, actor_types: Sequence[str], results: Sequence[str], actions: Sequence[str],
        target_type: str | None, target_id: str | None, since: datetime | None,
        until: datetime | None, sort: SortSpec, page: int, page_size: int,
    ) -> tuple[list[Row], int]:
        stmt = select(a)
        if actor_types:
            stmt = stmt.where(a.c.actor_type.in_(list(actor_types)))
        if results:
            stmt = stmt.where(a.c.result.in_(list(results)))
        if actions:
            stmt = stmt.where(a.c.action.in_(list(actions)))
        if target_type:
            stmt = stmt.where(a.c.target_type == target_type)
        if target_id:
            stmt = stmt.where(a.c.target_id == target_id)
        if since:
            stmt = stmt.where(a.c.created_at >= since)
        if until:
            stmt = stmt.where(a.c.created_at <= until)
        return await self.page(stmt, sort=sort, columns={"createdAt": a.c.created_at},
                               tiebreak=a.c.id, page=page, page_size=page_size)
