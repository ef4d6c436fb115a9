"""Hot reads: a Core ``SELECT`` compiled once per dialect, bound positionally, decoded per
selected column's type (``values.reader``), so its rows equal what Core returns (ADR 0003)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection

from opstage.store.fastpath.execution import fetch
from opstage.store.fastpath.values import Convert, Row, reader

Columns = tuple[tuple[str, Convert | None], ...]
# SQL, positional bind names, bind defaults, selected columns with their decoders.
_QueryPlan = tuple[str, tuple[str, ...], dict[str, Any], Columns]


class Query:
    """A Core ``SELECT`` with named ``bindparam``s, compiled once per dialect.

    ``rows(conn, **params)`` returns the rows as dicts keyed by the selected column names; a
    ``bindparam`` given a value in the statement (e.g. a fixed ``IN`` list) keeps it unless
    passed. ``bind`` and ``decode`` are the two halves, for use inside ``in_driver``.
    """

    def __init__(self, stmt: Select[Any]) -> None:
        self.stmt = stmt
        self._plans: dict[str, _QueryPlan] = {}
        self.names = tuple(stmt.selected_columns.keys())

    def _plan(self, dialect: Dialect) -> _QueryPlan:
        plan = self._plans.get(dialect.name)
        if plan is None:
            compiled = self.stmt.compile(dialect=dialect)
            binds = tuple(compiled.positiontup or ())
            columns = tuple(
                (name, reader(col.type, dialect.name))
                for name, col in zip(self.names, self.stmt.selected_columns, strict=True)
            )
            plan = self._plans[dialect.name] = (str(compiled), binds, compiled.params, columns)
        return plan

    def bind(self, dialect: Dialect, **params: Any) -> tuple[str, tuple[Any, ...]]:
        sql, binds, defaults, _ = self._plan(dialect)
        return sql, tuple(params[name] if name in params else defaults[name] for name in binds)

    def decode(self, dialect: Dialect, found: Sequence[Sequence[Any]]) -> list[Row]:
        columns = self._plan(dialect)[3]
        return [
            {
                name: (v if conv is None else conv(v))
                for (name, conv), v in zip(columns, raw, strict=True)
            }
            for raw in found
        ]

    def index(self, name: str) -> int:
        """Where a selected column sits in a raw row (for work inside ``in_driver``)."""
        return self.names.index(name)

    async def rows(self, conn: AsyncConnection, **params: Any) -> list[Row]:
        sql, values = self.bind(conn.dialect, **params)
        return self.decode(conn.dialect, await fetch(conn, sql, values))

    async def one(self, conn: AsyncConnection, **params: Any) -> Row | None:
        found = await self.rows(conn, **params)
        return found[0] if found else None
