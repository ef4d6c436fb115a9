"""Hot reads: a Core ``SELECT`` (or ``UPDATE``, with or without ``RETURNING``) compiled once per
dialect, bound positionally, decoded per selected column's type (``values.reader``), so its
rows equal what Core returns (ADR 0003). ``in_json_array`` gives SQLite one statement for any
number of ids (ADR 0017)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, bindparam, func, select
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.dml import Update

from opstage.store.fastpath.execution import fetch
from opstage.store.fastpath.values import Convert, Row, reader

Columns = tuple[tuple[str, Convert | None], ...]
# SQL, positional bind names, bind defaults, selected columns with their decoders.
_QueryPlan = tuple[str, tuple[str, ...], dict[str, Any], Columns]


def in_json_array(column: ColumnElement[Any], name: str) -> ColumnElement[bool]:
    """``column IN`` the values of one JSON array bound as ``name`` (SQLite's ``json_each``).

    An expanding ``IN`` renders one parameter per value: SQLAlchemy compiles it again for
    every new count and SQLite prepares every new text again, which a group-committed batch
    of a few hundred ids paid on each statement. This text never changes.
    """
    each = func.json_each(bindparam(name)).table_valued("value")
    return column.in_(select(each.c.value))


class Query:
    """A Core ``SELECT`` with named ``bindparam``s, compiled once per dialect.

    ``rows(conn, **params)`` returns the rows as dicts keyed by the selected column names; a
    ``bindparam`` given a value in the statement (e.g. a fixed ``IN`` list) keeps it unless
    passed. ``bind`` and ``decode`` are the two halves, for use inside ``in_driver``.
    """

    def __init__(self, stmt: Select[Any] | Update) -> None:
        self.stmt = stmt
        self._plans: dict[str, _QueryPlan] = {}
        # An UPDATE's are its RETURNING columns (none: its rows are an empty list).
        self.names = tuple(map(str, stmt.exported_columns.keys()))

    def _plan(self, dialect: Dialect) -> _QueryPlan:
        plan = self._plans.get(dialect.name)
        if plan is None:
            compiled = self.stmt.compile(dialect=dialect)
            binds = tuple(compiled.positiontup or ())
            columns = tuple(
                (name, reader(col.type, dialect.name))
                for name, col in zip(self.names, self.stmt.exported_columns, strict=True)
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
