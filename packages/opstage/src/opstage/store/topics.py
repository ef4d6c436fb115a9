"""The topic bus's state rows (``topics``) and agents' tenant grants, as typed records."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select

from opstage.domain.topics import DEFAULT_TENANT, Topic, TopicFilter
from opstage.store.base import Repo
from opstage.store.tables import agents as ag
from opstage.store.tables import topics as t


def _topic(row: Any) -> Topic:
    return Topic(
        id=row["id"],
        namespace=row["namespace"],
        tenant=row["tenant"],
        name=row["name"],
        partitions=row["partitions"],
        replication=row["replication"],
        retention_ms=row["retention_ms"],
        description=row["description"],
        labels=dict(row["labels"] or {}),
        created_at=row["created_at"],
        created_by=row["created_by"],
        audit_publish=bool(row["audit_publish"]),
    )


class TopicRepo(Repo):
    async def insert(self, topic: Topic) -> None:
        await self.conn.execute(
            t.insert().values(
                id=topic.id,
                namespace=topic.namespace,
                tenant=topic.tenant,
                name=topic.name,
                wire_name=topic.wire,
                partitions=topic.partitions,
                replication=topic.replication,
                retention_ms=topic.retention_ms,
                description=topic.description,
                labels=topic.labels,
                created_by=topic.created_by,
                created_at=topic.created_at,
                audit_publish=topic.audit_publish,
            )
        )

    async def get_by_wire(self, wire: str) -> Topic | None:
        row = await self.one(select(t).where(t.c.wire_name == wire))
        return _topic(row) if row is not None else None

    async def delete(self, topic_id: str) -> bool:
        result = await self.conn.execute(delete(t).where(t.c.id == topic_id))
        return bool(result.rowcount)

    async def list(self, where: TopicFilter, page: int, page_size: int) -> tuple[list[Topic], int]:
        stmt = select(t)
        if where.tenants is not None:
            stmt = stmt.where(t.c.tenant.in_(list(where.tenants)))
        if where.namespace:
            stmt = stmt.where(t.c.namespace == where.namespace)
        if where.name_prefix:
            stmt = stmt.where(t.c.name.startswith(where.name_prefix, autoescape=True))
        total = (
            await self.conn.execute(select(func.count()).select_from(stmt.subquery()))
        ).scalar_one()
        rows = await self.all(
            stmt.order_by(t.c.wire_name.asc()).limit(page_size).offset((page - 1) * page_size)
        )
        return [_topic(r) for r in rows], int(total)

    async def with_retention(self) -> tuple[Topic, ...]:
        rows = await self.all(
            select(t).where(t.c.retention_ms.is_not(None)).order_by(t.c.wire_name)
        )
        return tuple(_topic(r) for r in rows)

    async def agent_tenants(self, agent_id: str) -> tuple[str, ...]:
        """The tenants an agent may publish and subscribe in (the default when none granted)."""
        value = (
            await self.conn.execute(select(ag.c.topic_tenants).where(ag.c.id == agent_id))
        ).scalar_one_or_none()
        if not value:
            return (DEFAULT_TENANT,)
        return tuple(str(v) for v in value)
