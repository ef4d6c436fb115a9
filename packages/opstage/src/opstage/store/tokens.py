"""Registration tokens (only their SHA-256 hashes are stored)."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select, update

from opstage.domain.records import RegistrationTokenChanges, RegistrationTokenRow
from opstage.store.base import Repo, SortSpec
from opstage.store.tables import registration_tokens as t


class RegistrationTokenRepo(Repo):
    async def get(self, token_id: str) -> RegistrationTokenRow | None:
        return await self.one(select(t).where(t.c.id == token_id), RegistrationTokenRow)

    async def get_by_hash(self, token_hash: str) -> RegistrationTokenRow | None:
        return await self.one(select(t).where(t.c.token_hash == token_hash), RegistrationTokenRow)

    async def insert(self, row: RegistrationTokenRow) -> None:
        await self.conn.execute(t.insert().values(**row))

    async def update(
        self, token_id: str, values: RegistrationTokenChanges, *, only_status: str | None = None
    ) -> int:
        stmt = update(t).where(t.c.id == token_id)
        if only_status is not None:
            stmt = stmt.where(t.c.status == only_status)
        return int((await self.conn.execute(stmt.values(**values))).rowcount)

    async def delete(self, token_id: str) -> None:
        await self.conn.execute(delete(t).where(t.c.id == token_id))

    async def list(
        self, *, statuses: Sequence[str], sort: SortSpec, page: int, page_size: int
    ) -> tuple[builtins.list[RegistrationTokenRow], int]:
        stmt = select(t)
        if statuses:
            stmt = stmt.where(t.c.status.in_(list(statuses)))
        columns = {"createdAt": t.c.created_at, "expiresAt": t.c.expires_at, "name": t.c.name}
        return await self.page(
            stmt,
            sort=sort,
            columns=columns,
            tiebreak=t.c.id,
            page=page,
            page_size=page_size,
            record=RegistrationTokenRow,
        )

    async def expire_due(self, now: datetime) -> builtins.list[str]:
        found = await self.conn.execute(
            select(t.c.id).where(
                t.c.status == "ACTIVE", t.c.expires_at.is_not(None), t.c.expires_at < now
            )
        )
        ids = [str(i) for i in found.scalars().all()]
        if ids:
            await self.conn.execute(
                update(t)
                .where(t.c.id.in_(ids), t.c.status == "ACTIVE")
                .values(status="EXPIRED", updated_at=now)
            )
        return ids
