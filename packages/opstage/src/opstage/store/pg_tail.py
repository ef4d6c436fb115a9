"""A PostgreSQL write unit's tail as one statement.

A unit's tail is its buffered inserts (``insert_all``), the event log's rows under the log's
advisory lock, and the other nodes' wake-ups. Sent statement by statement that was six round
trips for a Capsule Bus batch — half of its thirteen — while the server and the database sat
half idle (ADR 0005). Here every table's rows travel as one array per
column (``INSERT … SELECT * FROM unnest($1::VARCHAR[], …)``), each in a data-modifying ``WITH``,
so the statement's text depends only on which tables have rows (the prepared statement is
reused whatever the row counts) and the database does one statement, not one per row.

Inside one statement the sub-statements run in no set order, so the two orderings that matter
are made data dependencies: the log's rows are joined to the lock's row, so the lock is held
before the first log id is drawn; foreign keys (a command's bus event) are checked at the end
of the statement, when every sibling's rows exist. Notifications are delivered at commit, as
``pg_notify`` always does.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from opstage.store.driver import Sql, Statement

_INSERT = re.compile(r"^INSERT INTO (\w+) \(([^)]*)\) VALUES \((.*)\)(?: RETURNING [\w.]+)?$")
_CAST = re.compile(r"^\$\d+::([A-Z][A-Z ]*)$")


def _unnest_insert(statement: Statement, bind: Callable[[Any, str], str]) -> str | None:
    """``INSERT … SELECT * FROM unnest(…)`` for a single-row ``INSERT`` and its rows, or None
    when the statement is not one of the plain, fully cast inserts ``insert_statement`` makes."""
    sql, rows = statement
    found = _INSERT.match(sql)
    if found is None:
        return None
    table, columns, values = found.groups()
    casts = [_CAST.match(v.strip()) for v in values.split(",")]
    if not rows or any(c is None for c in casts) or len(casts) != len(rows[0]):
        return None
    arrays = ", ".join(
        bind([row[i] for row in rows], f"{c.group(1)}[]")  # type: ignore[union-attr]
        for i, c in enumerate(casts)
    )
    # Names come from the compiled statement (the table metadata), values only as parameters.
    return f"INSERT INTO {table} ({columns}) SELECT * FROM unnest({arrays})"  # noqa: S608


def tail_work(
    inserts: Sequence[Statement],
    log_insert: Statement | None,
    lock_key: int,
    channel: str,
    messages: Sequence[str],
) -> Callable[[Sql], None] | None:
    """Work for ``in_driver`` doing the whole tail in one statement; None when there is
    nothing to do or a statement has a shape this does not know (the caller then sends the
    statements one by one)."""
    params: list[Any] = []

    def bind(value: Any, cast: str) -> str:
        params.append(value)
        return f"${len(params)}::{cast}"

    ctes: list[str] = []
    for i, statement in enumerate(inserts):
        insert = _unnest_insert(statement, bind)
        if insert is None:
            return None
        ctes.append(f"t{i} AS ({insert})")
    if log_insert is not None:
        insert = _unnest_insert(log_insert, bind)
        if insert is None:
            return None
        ctes.append(f"lk AS (SELECT pg_advisory_xact_lock({bind(lock_key, 'BIGINT')}))")
        head, _, unnest = insert.partition(" SELECT * FROM ")
        ctes.append(f"tl AS ({head} SELECT u.* FROM lk, {unnest} AS u)")  # noqa: S608
    if not ctes and not messages:
        return None
    main = (
        f"SELECT count(pg_notify({bind(channel, 'TEXT')}, m)) "  # noqa: S608
        f"FROM unnest({bind(list(messages), 'TEXT[]')}) AS m"
        if messages
        else "SELECT 1"
    )
    sql = (f"WITH {', '.join(ctes)} " if ctes else "") + main
    values = tuple(params)

    def work(db: Sql) -> None:
        db.fetch(sql, values)

    return work
