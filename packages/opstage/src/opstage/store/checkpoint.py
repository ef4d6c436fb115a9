"""WAL checkpoints off the writer's path (SQLite).

By default SQLite checkpoints inside the committing connection once the WAL holds 1,000 pages:
one commit in every few pays for copying the WAL into the database and two fsyncs. On this
kind of machine that put a write unit's COMMIT at 1.6 ms on average during bus ingest and made
it the longest wait in the group-commit cycle (bench/README.md).

The server's writer connection therefore checkpoints only as a safety net
(``WRITER_AUTOCHECKPOINT_PAGES``), and this task runs ``PRAGMA wal_checkpoint(PASSIVE)`` every
``interval`` seconds on its own connection, in a thread: the copy and the fsyncs overlap with
the event loop on the other core, and never block a reader or the writer. Once a checkpoint has
caught up, the next write transaction starts the WAL over; under a load that never pauses, the
safety net does that when the WAL reaches its size, and by then it has little left to copy.
Durability is unchanged: a commit is in the WAL exactly as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import threading
from dataclasses import dataclass, field

log = logging.getLogger("opstage.store")

# The writer's own checkpoint threshold when this task runs (pages of 4 KiB: about 8 MiB). Low
# enough that, on a machine too busy to give this task its turn, the writer's catch-up copy
# stays short (a 40 MiB one stalled writers for over a second under the test suite's load).
WRITER_AUTOCHECKPOINT_PAGES = 2_000


@dataclass
class WalCheckpointer:
    path: str
    interval: float = 0.1
    busy_timeout_ms: int = 5000
    runs: int = 0
    copied_pages: int = 0
    _conn: sqlite3.Connection | None = None
    # A checkpoint still running in its thread when the task is cancelled must not see its
    # connection closed under it.
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def checkpoint(self) -> tuple[int, int, int]:
        """One PASSIVE checkpoint: (busy, WAL pages, pages checkpointed). Blocking."""
        with self._lock:
            if self._conn is None:
                self._conn = sqlite3.connect(
                    self.path, isolation_level=None, check_same_thread=False
                )
                self._conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout_ms)}")
            busy, pages, done = self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            self.runs += 1
            return int(busy), int(pages), int(done)

    async def run(self) -> None:
        last_done = 0
        try:
            while True:
                await asyncio.sleep(self.interval)
                try:
                    _, pages, done = await asyncio.to_thread(self.checkpoint)
                except sqlite3.Error as exc:  # busy or locked: the next round tries again
                    log.debug("WAL checkpoint skipped: %s", exc)
                    continue
                # ``done`` counts from the WAL's start, which rewinds when the WAL restarts.
                self.copied_pages += done - last_done if done >= last_done else done
                last_done = done if pages else 0
        finally:
            self.close()

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.close()
                self._conn = None
