"""Durable topic subscriptions and their committed offsets (ADR 0015), as typed records."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update

from opstage.domain.topics import CommittedOffset, Subscription
from opstage.store.base import Repo
from opstage.store.tables import topic_subscription_offsets as o
from opstage.store.tables import topic_subscriptions as s


def _subscription(row: Any) -> Subscription:
    return Subscription(
        id=row["id"],
        topic_id=row["topic_id"],
        topic=row["topic"],
        tenant=row["tenant"],
        name=row["name"],
        max_deliveries=row["max_deliveries"],
        dlq_topic=row["dlq_topic"],
        created_at=row["created_at"],
        created_by=row["created_by"],
    )


class SubscriptionRepo(Repo):
    async def insert(self, sub: Subscription, committed: dict[int, int], now: datetime) -> None:
        await self.conn.execute(
            s.insert().values(
                id=sub.id,
                topic_id=sub.topic_id,
                topic=sub.topic,
                tenant=sub.tenant,
                name=sub.name,
                max_deliveries=sub.max_deliveries,
                dlq_topic=sub.dlq_topic,
                created_by=sub.created_by,
                created_at=sub.created_at,
            )
        )
        await self.conn.execute(
            o.insert(),
            [
                {
                    "subscription_id": sub.id,
                    "partition": p,
                    "committed": offset,
                    "deliveries": 0,
                    "updated_at": now,
                }
                for p, offset in sorted(committed.items())
            ],
        )

    async def get(self, wire: str, name: str) -> Subscription | None:
        row = await self.one(select(s).where(s.c.topic == wire, s.c.name == name))
        return _subscription(row) if row is not None else None

    async def page_of(
        self, wire: str | None, tenants: tuple[str, ...] | None, page: int, page_size: int
    ) -> tuple[list[Subscription], int]:
        stmt = select(s)
        if wire is not None:
            stmt = stmt.where(s.c.topic == wire)
        if tenants is not None:
            stmt = stmt.where(s.c.tenant.in_(list(tenants)))
        total = (
            await self.conn.execute(select(func.count()).select_from(stmt.subquery()))
        ).scalar_one()
        rows = await self.all(
            stmt.order_by(s.c.topic.asc(), s.c.name.asc())
            .limit(page_size)
            .offset((page - 1) * page_size)
        )
        return [_subscription(r) for r in rows], int(total)

    async def all_subscriptions(self, limit: int) -> list[Subscription]:
        rows = await self.all(select(s).order_by(s.c.topic.asc(), s.c.name.asc()).limit(limit))
        return [_subscription(r) for r in rows]

    async def delete(self, subscription_id: str) -> bool:
        # Explicit, not only ON DELETE CASCADE: the offsets go in the same transaction on
        # every database, whatever its foreign-key setting.
        await self.conn.execute(delete(o).where(o.c.subscription_id == subscription_id))
        result = await self.conn.execute(delete(s).where(s.c.id == subscription_id))
        return bool(result.rowcount)

    async def delete_of_topic(self, wire: str) -> list[str]:
        ids = [r["id"] for r in await self.all(select(s.c.id).where(s.c.topic == wire))]
        if ids:
            await self.conn.execute(delete(o).where(o.c.subscription_id.in_(ids)))
            await self.conn.execute(delete(s).where(s.c.id.in_(ids)))
        return ids

    async def offsets(self, subscription_id: str) -> dict[int, CommittedOffset]:
        rows = await self.all(
            select(o.c.partition, o.c.committed, o.c.deliveries).where(
                o.c.subscription_id == subscription_id
            )
        )
        return {
            int(r["partition"]): CommittedOffset(
                int(r["partition"]), int(r["committed"]), int(r["deliveries"])
            )
            for r in rows
        }

    async def commit(
        self, subscription_id: str, commits: Iterable[tuple[int, int]], now: datetime
    ) -> None:
        """Move each partition's committed offset forward (never back): ``(partition, next)``.
        A move resets the partition's delivery count."""
        for partition, committed in commits:
            await self.conn.execute(
                update(o)
                .where(
                    o.c.subscription_id == subscription_id,
                    o.c.partition == partition,
                    o.c.committed < committed,
                )
                .values(committed=committed, deliveries=0, updated_at=now)
            )

    async def count_delivery(self, subscription_id: str, partition: int, now: datetime) -> None:
        await self.conn.execute(
            update(o)
            .where(o.c.subscription_id == subscription_id, o.c.partition == partition)
            .values(deliveries=o.c.deliveries + 1, updated_at=now)
        )
