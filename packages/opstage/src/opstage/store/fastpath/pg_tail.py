"""A PostgreSQL write unit's tail as one statement.

A unit's tail is its buffered inserts (``insert_all``), the event log's rows under the log's
advisory lock, and the other nodes' wake-ups. Sent statement by statement that was six round
trips for a Capsule Bus batch — half of its thirteen — while the server and the database sat
half idle (ADR 0005). Here every table's rows travel as one array per
column (``INSERT … SELECT * FROM unnest($1::VARCHAR[], …)``), each in a data-modifying ``WITH``,
so the statement's text depends only on which tables have rows (the prepared statement is
reused whatever the row counts) and the database does one statement, not one per row. Each
``INSERT … unnest`` is rendered from the table's metadata by its ``InsertPlan``
(``inserts.py``: quoted names, each column's array cast), so every insert the fast path
buffers has a tail form and none is parsed back out of SQL text (ADR 0008).

Inside one statement the sub-statements run in no set order, so the two orderings that matter
are made data dependencies: the log's rows are joined to the lock's row, so the lock is held
before the first log id is drawn; foreign keys (a command's bus event) are checked at the end
of the statement, when every sibling's rows exist. Notifications are delivered at commit, as
``pg_notify`` always does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from opstage.store.fastpath.execution import Sql
from opstage.store.fastpath.inserts import Insert


def tail_work(
    inserts: Sequence[Insert],
    log_insert: Insert | None,
    lock_key: int,
    channel: str,
    messages: Sequence[str],
) -> Callable[[Sql], None] | None:
    """Work for ``in_driver`` doing the whole tail in one statement; None when there is
    nothing to do."""
    params: list[Any] = []

    def bind(value: Any, cast: str) -> str:
        params.append(value)
        return f"${len(params)}::{cast}"

    # Names come from the tables' metadata (``InsertPlan``), values only as parameters.
    ctes: list[str] = []
    for i, insert in enumerate(inserts):
        head, unnest = insert.plan.unnest(insert.params, bind)
        ctes.append(f"t{i} AS ({head} SELECT * FROM {unnest})")  # noqa: S608
    if log_insert is not None:
        ctes.append(f"lk AS (SELECT pg_advisory_xact_lock({bind(lock_key, 'BIGINT')}))")
        head, unnest = log_insert.plan.unnest(log_insert.params, bind)
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
