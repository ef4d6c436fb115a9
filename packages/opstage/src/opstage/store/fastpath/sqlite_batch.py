"""A whole write transaction as one SQLite statement: rows in as JSON, a TEMP trigger fans out.

The sqlite3 module gives up the GIL for every statement it steps and its thread then waits
for the event loop to hand the GIL back; with the loop busy (ingest at full rate) a bus batch
of seven statements (``BEGIN IMMEDIATE``, the ``data_version`` check, four inserts,
``COMMIT``) spent most of its time waiting, and the writer thread became the bottleneck
(ADR 0004). Here the batch is one ``INSERT`` into a TEMP view whose
``INSTEAD OF`` trigger:

- checks ``data_version`` and aborts with ``STALE_MESSAGE`` if another connection committed
  since the reads the batch was prepared from;
- inserts each table's rows from a JSON array parameter (``json_each``), in the given order.

In autocommit mode one statement is one transaction: SQLite takes the write lock when the
statement starts (as ``BEGIN IMMEDIATE`` would), commits when it ends, and undoes all of it if
any part fails (a constraint, the stale check). Values go through JSON unchanged: timestamps
as SQLite's stored text, strings, integers, reals and ``NULL`` come back as themselves
(``json_extract``), booleans as 1 and 0, as binding does; a JSON column's value is written into the
batch as JSON by orjson and stored as its text (``->``), which is the text orjson writes for
it on the statement path (tests/store/test_sqlite_batch.py compares stored values and their
types with the statement path, tricky payloads included).

Binding the values instead (a multi-row ``INSERT`` into a view routed by part, one trigger
per table) cuts SQLite's work per batch 2.4-fold, but the writer thread then binds a
thousand values while holding the GIL the event loop is waiting for, and ingest fell in every
interleaved comparison (ADR 0004): unpacking JSON inside SQLite runs
without the GIL, which is why the rows travel as JSON.

The view and trigger are TEMP objects of the writer connection, created on first use for each
shape of batch (tables and their columns), rendered from the tables' metadata by the same
``InsertPlan`` as every other fast write (``inserts.py``, ADR 0008), so no migration owns them
and they always match the schema the rows were built for.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import Table
from sqlalchemy.dialects.sqlite.base import SQLiteDialect

from opstage.store.fastpath.inserts import InsertPlan, insert_plan
from opstage.store.fastpath.values import Row, timestamp_in

STALE_MESSAGE = "opstage: stale batch"
_SQLITE = SQLiteDialect()  # quoting and types only; the batch runs on the raw connection
_SQLITE_TIMESTAMP = timestamp_in("sqlite")
_CREATED_KEY = "opstage.sqlite_batch"  # in the pooled connection's info: shapes created


# Names come from the tables' metadata (quoted by the dialect), never from a request; every
# value is a bound parameter.
def _ddl(name: str, shape: Sequence[InsertPlan]) -> list[str]:
    params = ", ".join(f"NULL AS p{i}" for i in range(len(shape)))
    steps = [
        f"SELECT RAISE(ABORT, '{STALE_MESSAGE}') "  # noqa: S608 (see above)
        "WHERE (SELECT data_version FROM pragma_data_version) != NEW.version;"
    ]
    for i, plan in enumerate(shape):
        # JSON columns arrive as JSON and are stored as their text (``->``), exactly the text
        # orjson writes for them on the statement path; everything else as its SQL value
        # (``json_extract``: the same value as ``->>``, 22% fewer instructions per batch).
        # Measured with callgrind on a batch of 8 bus events.
        values = ", ".join(
            f"value->{n}" if j else f"json_extract(value, '$[{n}]')"
            for n, j in enumerate(plan.json)
        )
        steps.append(f"{plan.head} SELECT {values} FROM json_each(NEW.p{i});")  # noqa: S608
    return [
        f"CREATE TEMP VIEW IF NOT EXISTS {name} AS SELECT NULL AS version, {params}",
        f"CREATE TEMP TRIGGER IF NOT EXISTS {name}_insert INSTEAD OF INSERT ON {name} "
        f"BEGIN {' '.join(steps)} END",
    ]


_names: dict[tuple[str, ...], str] = {}


def _part(table: Table, rows: Sequence[Row], texts: dict[Any, Any]) -> tuple[InsertPlan, list[Any]]:
    """The table's plan and its rows as lists: timestamps as SQLite's stored text, JSON
    values as themselves (orjson writes them into the batch's JSON), the rest unchanged.

    ``texts`` holds the timestamps the batch has converted: its rows share a handful of
    instants (the batch's clock reading, expiries from it), so each is converted once.
    """
    plan = insert_plan(table, tuple(rows[0]), _SQLITE)
    values_of, stamps = plan.values_of, plan.timestamps
    if not stamps:
        return plan, [values_of(row) for row in rows]
    out = []
    for row in rows:
        values = list(values_of(row))
        for i in stamps:
            value = values[i]
            text = texts.get(value)
            if text is None and value is not None:
                text = texts[value] = _SQLITE_TIMESTAMP(value)
            values[i] = text
        out.append(values)
    return plan, out


def _name(shape: Sequence[InsertPlan]) -> str:
    # The statements' text is the shape: a column added to a table is a new shape.
    key = tuple(plan.head + str(plan.json) for plan in shape)
    name = _names.get(key)
    if name is None:
        digest = hashlib.sha256(repr(key).encode()).hexdigest()[:16]
        name = _names[key] = f"opstage_batch_{digest}"
    return name


class OneStatementBatch:
    """The statement and parameters that write ``parts`` in one transaction (see module)."""

    def __init__(self, parts: Sequence[tuple[Table, Sequence[Row]]], version: int) -> None:
        texts: dict[Any, Any] = {}
        built = [_part(table, rows, texts) for table, rows in parts if rows]
        shape = tuple(plan for plan, _ in built)
        self.name = _name(shape)
        self._shape = shape
        marks = ", ".join("?" for _ in range(len(shape) + 1))
        self.sql = f"INSERT INTO temp.{self.name} VALUES ({marks})"  # noqa: S608
        # The same orjson options as the JSON columns' serializer (store/engine.py), so a JSON
        # value is stored as the text the statement path would store.
        self.params: tuple[Any, ...] = (
            version,
            *(orjson.dumps(rows, option=orjson.OPT_NON_STR_KEYS).decode() for _, rows in built),
        )

    def run(self, raw: sqlite3.Connection, created: set[str]) -> bool:
        """Commits and answers True, or answers False (stale: nothing written)."""
        if self.name not in created:
            for ddl in _ddl(self.name, self._shape):
                raw.execute(ddl)
            created.add(self.name)
        try:
            raw.execute(self.sql, self.params)
        except sqlite3.IntegrityError as exc:
            if str(exc) == STALE_MESSAGE:
                return False
            raise
        return True


def created_shapes(info: dict[str, Any]) -> set[str]:
    """The batch shapes whose TEMP objects exist on this pooled connection."""
    shapes: set[str] = info.setdefault(_CREATED_KEY, set())
    return shapes
