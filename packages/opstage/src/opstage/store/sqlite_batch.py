"""A whole write transaction as one SQLite statement: rows in as JSON, a TEMP trigger fans out.

The sqlite3 module gives up the GIL for every statement it steps and its thread then waits
for the event loop to hand the GIL back; with the loop busy (ingest at full rate) a bus batch
of seven statements (``BEGIN IMMEDIATE``, the ``data_version`` check, four inserts,
``COMMIT``) spent most of its time waiting, and the writer thread became the bottleneck
(bench/README.md, session 6). Here the batch is one ``INSERT`` into a TEMP view whose
``INSTEAD OF`` trigger:

- checks ``data_version`` and aborts with ``STALE_MESSAGE`` if another connection committed
  since the reads the batch was prepared from;
- inserts each table's rows from a JSON array parameter (``json_each``), in the given order.

In autocommit mode one statement is one transaction: SQLite takes the write lock when the
statement starts (as ``BEGIN IMMEDIATE`` would), commits when it ends, and undoes all of it if
any part fails (a constraint, the stale check). Values go through JSON unchanged: they are
already what the driver would bind (text for timestamps and JSON columns, integers, reals,
``NULL``); ``->>`` gives each back as that SQL value, and booleans as 1 and 0, as binding does
(tests/e2e/test_bus_group_commit.py compares the stored bytes with the statement path).

The view and trigger are TEMP objects of the writer connection, created on first use for each
shape of batch (tables and their columns) from the rows themselves, so no migration owns them
and they always match the schema the rows were built for.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Sequence
from typing import Any

import orjson

from opstage.store.driver import Statement

STALE_MESSAGE = "opstage: stale batch"
_CREATED_KEY = "opstage.sqlite_batch"  # in the pooled connection's info: shapes created


def _columns(sql: str) -> tuple[str, str]:
    """(table, column list) of a single-row ``INSERT INTO t (a, b) VALUES (?, ?)``."""
    head = sql.split(" VALUES ", 1)[0]
    table, _, columns = head.removeprefix("INSERT INTO ").partition(" (")
    return table.strip(), columns.rstrip(")")


# Table and column names come from the INSERTs SQLAlchemy compiled from our own tables, never
# from a request; every value is a bound parameter.
def _ddl(name: str, shape: Sequence[tuple[str, str]]) -> list[str]:
    params = ", ".join(f"NULL AS p{i}" for i in range(len(shape)))
    steps = [
        f"SELECT RAISE(ABORT, '{STALE_MESSAGE}') "  # noqa: S608 (see above)
        "WHERE (SELECT data_version FROM pragma_data_version) != NEW.version;"
    ]
    for i, (table, columns) in enumerate(shape):
        values = ", ".join(f"value->>{j}" for j in range(len(columns.split(", "))))
        insert = f"INSERT INTO {table} ({columns}) SELECT {values}"
        steps.append(f"{insert} FROM json_each(NEW.p{i});")
    return [
        f"CREATE TEMP VIEW IF NOT EXISTS {name} AS SELECT NULL AS version, {params}",
        f"CREATE TEMP TRIGGER IF NOT EXISTS {name}_insert INSTEAD OF INSERT ON {name} "
        f"BEGIN {' '.join(steps)} END",
    ]


class OneStatementBatch:
    """The statement and parameters for ``statements`` as one transaction (see module)."""

    def __init__(self, statements: Sequence[Statement], version: int) -> None:
        shape = tuple(_columns(sql) for sql, _ in statements)
        digest = hashlib.sha256(repr(shape).encode()).hexdigest()[:16]
        self.name = f"opstage_batch_{digest}"
        self._shape = shape
        marks = ", ".join("?" for _ in range(len(shape) + 1))
        self.sql = f"INSERT INTO temp.{self.name} VALUES ({marks})"  # noqa: S608
        # orjson: the rows are tuples of str, int, float, bool and None.
        self.params: tuple[Any, ...] = (
            version,
            *(orjson.dumps(rows).decode() for _, rows in statements),
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
