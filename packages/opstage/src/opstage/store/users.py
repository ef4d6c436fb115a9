"""Admin users and their server-side sessions."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, or_, select, update

from opstage.domain.records import (
    SessionChanges,
    SessionRow,
    SessionWithUser,
    UserChanges,
    UserRow,
)
from opstage.store.base import Repo, SortSpec, like_pattern
from opstage.store.tables import sessions, users


class UserRepo(Repo):
    async def get(self, user_id: str) -> UserRow | None:
        return await self.one(select(users).where(users.c.id == user_id), UserRow)

    async def get_by_username_key(self, key: str) -> UserRow | None:
        """The user whose name folds to ``key`` (domain.identity.username_key)."""
        return await self.one(select(users).where(users.c.username_key == key), UserRow)

    async def count(self) -> int:
        return int((await self.conn.execute(select(func.count()).select_from(users))).scalar_one())

    async def count_active_owners(self) -> int:
        stmt = (
            select(func.count())
            .select_from(users)
            .where(users.c.role == "owner", users.c.status == "ACTIVE")
        )
        return int((await self.conn.execute(stmt)).scalar_one())

    async def lock_active_owners(self) -> int:
        """Count the active owners, row-locking them (PostgreSQL) until the transaction ends.

        Two concurrent demotions of the last two owners would otherwise both see two owners
        under READ COMMITTED; SQLite needs no lock (its write transactions are serial).
        """
        stmt = (
            select(users.c.id)
            .where(users.c.role == "owner", users.c.status == "ACTIVE")
            .with_for_update()
        )
        return len((await self.conn.execute(stmt)).all())

    async def insert(self, row: UserRow) -> None:
        await self.conn.execute(users.insert().values(**row))

    async def delete(self, user_id: str) -> int:
        return int((await self.conn.execute(delete(users).where(users.c.id == user_id))).rowcount)

    async def update(self, user_id: str, values: UserChanges) -> None:
        await self.conn.execute(update(users).where(users.c.id == user_id).values(**values))

    async def list(
        self,
        *,
        roles: Sequence[str],
        statuses: Sequence[str],
        q: str | None,
        sort: SortSpec,
        page: int,
        page_size: int,
    ) -> tuple[list[UserRow], int]:
        stmt = select(users)
        if roles:
            stmt = stmt.where(users.c.role.in_(list(roles)))
        if statuses:
            stmt = stmt.where(users.c.status.in_(list(statuses)))
        if q:
            p = like_pattern(q)
            stmt = stmt.where(
                or_(
                    users.c.username.like(p, escape="\\"), users.c.display_name.like(p, escape="\\")
                )
            )
        columns = {"createdAt": users.c.created_at, "username": users.c.username}
        return await self.page(
            stmt,
            sort=sort,
            columns=columns,
            tiebreak=users.c.id,
            page=page,
            page_size=page_size,
            record=UserRow,
        )


class SessionRepo(Repo):
    async def by_token_hash(self, token_hash: str) -> SessionWithUser | None:
        stmt = (
            select(
                sessions,
                users.c.username,
                users.c.display_name,
                users.c.role,
                users.c.status.label("user_status"),
                users.c.last_login_at,
                users.c.created_at.label("user_created_at"),
                users.c.updated_at.label("user_updated_at"),
            )
            .join(users, sessions.c.user_id == users.c.id)
            .where(sessions.c.token_hash == token_hash)
        )
        return await self.one(stmt, SessionWithUser)

    async def insert(self, row: SessionRow) -> None:
        await self.conn.execute(sessions.insert().values(**row))

    async def update(self, session_id: str, values: SessionChanges) -> None:
        await self.conn.execute(
            update(sessions).where(sessions.c.id == session_id).values(**values)
        )

    async def delete(self, session_id: str) -> None:
        await self.conn.execute(delete(sessions).where(sessions.c.id == session_id))

    async def delete_for_user(self, user_id: str, *, except_id: str | None = None) -> int:
        stmt = delete(sessions).where(sessions.c.user_id == user_id)
        if except_id:
            stmt = stmt.where(sessions.c.id != except_id)
        return int((await self.conn.execute(stmt)).rowcount)

    async def delete_expired(self, now: datetime) -> int:
        return int(
            (await self.conn.execute(delete(sessions).where(sessions.c.expires_at < now))).rowcount
        )
