"""Runtime settings stored in the database (they override the environment's defaults)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update

from opstage.domain.records import Json
from opstage.store.base import Repo
from opstage.store.tables import system_settings as s


class SettingRepo(Repo):
    async def get(self, key: str) -> Json:
        """The stored value, or ``None`` when the key was never set."""
        return (await self.conn.execute(select(s.c.value).where(s.c.key == key))).scalar()

    async def put(self, key: str, value: Json, now: datetime) -> None:
        changed = await self.conn.execute(
            update(s).where(s.c.key == key).values(value=value, updated_at=now)
        )
        if not changed.rowcount:
            await self.conn.execute(s.insert().values(key=key, value=value, updated_at=now))
