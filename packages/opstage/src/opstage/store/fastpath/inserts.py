"""A table's ``INSERT``, rendered from its ``Table`` metadata for every way the fast path writes.

One ``InsertPlan`` per table, column set and dialect holds what the metadata says (quoted
names, each column's type and so its value converter, PostgreSQL's cast) and renders:

- the single-row ``INSERT … VALUES`` (what SQLAlchemy Core compiles for the same columns; on
  PostgreSQL every value carries the bind cast asyncpg's dialect gives it);
- SQLite's multi-row ``VALUES (…), (…)`` for a chunk of rows;
- PostgreSQL's ``INSERT … SELECT * FROM unnest($1::T[], …)``, one array per column
  (``fastpath/pg_tail.py``);
- SQLite's JSON batch part, its columns and which of them hold JSON
  (``fastpath/sqlite_batch.py``).

No SQL text is parsed or rewritten anywhere: a column added to a ``Table`` shows up in every
rendering without a code change (ADR 0008; tests/store/test_fastpath_metadata.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from sqlalchemy import String, Table
from sqlalchemy.engine import Dialect

from opstage.store.fastpath.values import Convert, Row, is_json, is_timestamp, writer

MULTI_ROW_MAX = 256  # rows per multi-row INSERT (its text is cached per row count)
_SQLITE_MAX_VARIABLES = 32766  # SQLite's default limit on bound parameters since 3.32


def _pg_cast(column_type: Any, dialect: Dialect) -> str:
    # As SQLAlchemy's own bind casts: VARCHAR without a length (a cast to VARCHAR(n) would
    # truncate a long value silently where the INSERT refuses it).
    if isinstance(column_type, String):
        return "VARCHAR"
    return str(dialect.type_compiler_instance.process(column_type))


class InsertPlan:
    """``INSERT INTO table (columns)`` on one dialect, in every rendering the fast path uses."""

    def __init__(self, table: Table, columns: tuple[str, ...], dialect: Dialect) -> None:
        unknown = [name for name in columns if name not in table.c]
        if not columns or unknown:
            raise ValueError(f"cannot insert {columns} into {table.name}: unknown {unknown}")
        self.table = table
        self.columns = columns
        self.dialect = dialect.name
        quote = dialect.identifier_preparer
        self.head = (
            f"INSERT INTO {quote.format_table(table)} "
            f"({', '.join(quote.format_column(table.c[name]) for name in columns)})"
        )
        types = [table.c[name].type for name in columns]
        self.json = tuple(is_json(t) for t in types)
        self.timestamps = tuple(i for i, t in enumerate(types) if is_timestamp(t))
        self.converts: tuple[tuple[int, Convert], ...] = tuple(
            (i, conv) for i, t in enumerate(types) if (conv := writer(t, dialect.name)) is not None
        )
        self.casts = tuple(_pg_cast(t, dialect) for t in types) if self.dialect != "sqlite" else ()
        self.values_of: Callable[[Row], Any] = (
            itemgetter(*columns) if len(columns) > 1 else lambda row: (row[columns[0]],)
        )
        self._texts: dict[int, str] = {}
        self.sql = self.values_sql(1)

    @property
    def rows_per_statement(self) -> int:
        """SQLite: rows per multi-row ``INSERT``, within its limit on bound parameters."""
        return max(1, min(MULTI_ROW_MAX, _SQLITE_MAX_VARIABLES // len(self.columns)))

    def values_sql(self, rows: int) -> str:
        """``INSERT … VALUES`` for ``rows`` rows (PostgreSQL: one row, executed many times)."""
        text = self._texts.get(rows)
        if text is None:
            if self.dialect == "sqlite":
                group = f"({', '.join('?' for _ in self.columns)})"
                values = ", ".join([group] * rows)
            elif rows == 1:
                values = "(" + ", ".join(f"${i}::{c}" for i, c in enumerate(self.casts, 1)) + ")"
            else:
                raise ValueError("multi-row VALUES is rendered for SQLite only")
            text = self._texts[rows] = f"{self.head} VALUES {values}"
        return text

    def params(self, rows: Sequence[Row]) -> list[tuple[Any, ...]]:
        """Each row's values in column order, converted as the column's type stores them."""
        values_of, converts = self.values_of, self.converts
        if not converts:
            return [tuple(values_of(row)) for row in rows]
        out = []
        for row in rows:
            values = list(values_of(row))
            for i, conv in converts:
                values[i] = conv(values[i])
            out.append(tuple(values))
        return out

    def unnest(
        self, params: Sequence[tuple[Any, ...]], bind: Callable[[Any, str], str]
    ) -> tuple[str, str]:
        """PostgreSQL: the ``INSERT INTO …`` head and ``unnest(…)`` of one array per column,
        each bound through ``bind(value, cast)``, which answers the placeholder."""
        arrays = ", ".join(
            bind([row[i] for row in params], f"{cast}[]") for i, cast in enumerate(self.casts)
        )
        return self.head, f"unnest({arrays})"


_plans: dict[tuple[Table, tuple[str, ...], str], InsertPlan] = {}


def insert_plan(table: Table, columns: tuple[str, ...], dialect: Dialect) -> InsertPlan:
    key = (table, columns, dialect.name)
    plan = _plans.get(key)
    if plan is None:
        plan = _plans[key] = InsertPlan(table, columns, dialect)
    return plan


@dataclass(frozen=True)
class Insert:
    """Rows bound for one table, their values converted, ready for any rendering."""

    plan: InsertPlan
    params: list[tuple[Any, ...]]


def insert_statement(dialect: Dialect, table: Table, rows: Sequence[Row]) -> Insert:
    """The insert of ``rows`` (all with the same keys, in the same order) into ``table``."""
    plan = insert_plan(table, tuple(rows[0]), dialect)
    return Insert(plan, plan.params(rows))
