"""What every repository shares: the connection, row conversion and pagination.

Rows come back as the record type the caller names (``domain/records.py``, ADR 0011): the
driver's dict, typed for mypy, at no cost at run time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar, cast

from sqlalchemy import ColumnElement, Executable, RowMapping, Select, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

R = TypeVar("R")
SortSpec = Sequence[tuple[str, bool]]  # (field, descending)


class Repo:
    def __init__(self, conn: AsyncConnection, kind: str) -> None:
        self.conn = conn
        self.kind = kind

    async def one(self, stmt: Executable, record: type[R]) -> R | None:
        row = (await self.conn.execute(stmt)).mappings().first()
        return cast(R, dict(row)) if row is not None else None

    async def all(self, stmt: Executable, record: type[R]) -> list[R]:
        return [cast(R, dict(r)) for r in (await self.conn.execute(stmt)).mappings().all()]

    async def mapping(self, stmt: Executable) -> RowMapping | None:
        """The first row as read, for repositories that build their own records."""
        return (await self.conn.execute(stmt)).mappings().first()

    async def mappings(self, stmt: Executable) -> Sequence[RowMapping]:
        """Every row as read, for repositories that build their own records."""
        return (await self.conn.execute(stmt)).mappings().all()

    async def page(
        self,
        stmt: Select[Any],
        *,
        sort: SortSpec,
        columns: Mapping[str, ColumnElement[Any]],
        tiebreak: ColumnElement[Any],
        page: int,
        page_size: int,
        record: type[R],
    ) -> tuple[list[R], int]:
        total = (
            await self.conn.execute(
                select(func.count()).select_from(stmt.order_by(None).subquery())
            )
        ).scalar_one()
        order = [columns[f].desc() if desc else columns[f].asc() for f, desc in sort]
        order.append(tiebreak.desc())
        rows = await self.all(
            stmt.order_by(*order).limit(page_size).offset((page - 1) * page_size), record
        )
        return rows, int(total)


def like_pattern(q: str) -> str:
    escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
