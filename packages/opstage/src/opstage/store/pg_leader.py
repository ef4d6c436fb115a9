"""Leader election among Opstage nodes that share one PostgreSQL database (ADR 0007).

The leader holds a session-level advisory lock on a connection of its own. PostgreSQL releases
the lock when that session ends — the node stopped, was killed, or lost the network — and the
next ``hold`` of another node takes it. A node never holds the lock without having checked, on
its most recent ``hold``, that its connection still answers: when the check fails it drops the
connection (so the lock, if the server still thinks it is held, is released with it) and reports
that it does not lead.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("opstage.store")
# Advisory lock keys are per database; this one is Opstage's maintenance leader ("OPSTMNT1").
MAINTENANCE_LOCK_KEY = 0x4F5053544D4E5431
TIMEOUT_SECONDS = 5.0


class PgLeaderLock:
    election: str | None = "postgres-advisory-lock"

    def __init__(self, dsn: str, key: int = MAINTENANCE_LOCK_KEY) -> None:
        self._dsn = dsn
        self._key = key
        self._conn: Any = None
        self.held = False

    async def hold(self) -> bool:
        import asyncpg

        try:
            if self._conn is None or self._conn.is_closed():
                self.held = False
                self._conn = await asyncpg.connect(self._dsn, timeout=TIMEOUT_SECONDS)
            if self.held:
                await self._conn.fetchval("SELECT 1", timeout=TIMEOUT_SECONDS)
            else:
                self.held = bool(
                    await self._conn.fetchval(
                        "SELECT pg_try_advisory_lock($1)", self._key, timeout=TIMEOUT_SECONDS
                    )
                )
                if self.held:
                    log.info("this node now leads the maintenance sweeps")
        except Exception as exc:  # any failure (timeout, lost connection): not the leader
            if self.held:
                log.warning("lost the maintenance lead (%s)", exc)
            self._drop()
        return self.held

    def _drop(self) -> None:
        self.held = False
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            conn.terminate()  # ends the session, and with it the lock

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        self.held = False
        if conn is not None and not conn.is_closed():
            try:
                await conn.close(timeout=2)
            except Exception:
                conn.terminate()
