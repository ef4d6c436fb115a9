"""The one place that reaches into aiosqlite: queue work on a connection's own thread.

aiosqlite runs every call on a thread that owns the sqlite3 connection, fed by a queue of
``(future, function)``. It offers no public way to run a function of ours there, and the fast
path needs one: a batch of statements in one hand-off instead of one per statement, and a
bus batch queued without waiting for it (ADR 0003, ADR 0004, ADR 0008). SQLAlchemy's own
aiosqlite adapter does the same thing (``Connection._conn`` and ``Connection._tx``, in its
isolation-level setter); ``Connection._running`` is checked as aiosqlite's own ``_execute``
does. Nothing else in the project touches aiosqlite's members; the version pin in
packages/opstage/pyproject.toml and ADR 0008's upgrade checklist are about this function.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

T = TypeVar("T")


def on_driver_thread(driver: Any, work: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
    """Queue ``work(raw sqlite3 connection)`` on ``driver``'s (an ``aiosqlite.Connection``)
    thread; the future resolves on the running loop. aiosqlite runs its queue in order, so
    anything queued on this connection afterwards runs after ``work``. Errors are the
    driver's own (``sqlite3.Error``); a closed or closing connection raises ``ValueError``
    here, as aiosqlite's own calls do (work queued behind its stop would never run)."""
    if not driver._running:
        raise ValueError("Connection closed")
    raw: sqlite3.Connection = driver._conn  # raises ValueError once the connection is closed
    future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
    driver._tx.put_nowait((future, partial(work, raw)))
    return future
