"""What every repository shares: the connection, row conversion and pagination."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

Row = dict[str, Any]
SortSpec = Sequence[tuple[str, bool]]  # (field, descending)


class Repo:
    def __init__(self, conn: AsyncConnection, kind: str) -> None:
        self.conn = conn
        self.kind = kind

    async def one(self, stmt: Any) -> Row | None:
        row = (await self.conn.execute(stmt)).mappings().first()
        return dict(row) if row is not None else None

    async def all(self, stmt: Any) -> list[Row]:
        return [dict(r) for r in (await self.conn.execute(stmt)).mappings().all()]

    async def page(
        self,
        stmt: Select[Any],
        *,
        sort: SortSpec,
        columns: Mapping[str, ColumnElement[Any]],
        tiebreak: ColumnElement[Any],
        page: int,
        page_size: int,
    ) -> tuple[list[Row], int]:
        total = (
            await self.conn.execute(
                select(func.count()).select_from(stmt.order_by(None).subquery())
            )
        ).scalar_one()
        order = [columns[f].desc() if desc else columns[f].asc() for f, desc in sort]
        order.append(tiebreak.desc())
        rows = await self.all(stmt.order_by(*order).limit(page_size).offset((page - 1) * page_size))
        return rows, int(total)


def like_pattern(q: str) -> str:
    escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
