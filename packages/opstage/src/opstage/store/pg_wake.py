"""Wake-ups across Opstage nodes that share one PostgreSQL database: LISTEN/NOTIFY.

A command created on node A must wake the agent long-polling node B (design §4). The node
that commits a unit which created commands or changed their status sends the waiters' keys
(``agent:<id>``, ``command:<id>``) with ``pg_notify`` *inside* that transaction, so
PostgreSQL delivers them exactly when the change is visible, and never for a rollback. Every
node keeps one connection listening on ``CHANNEL`` and hands the keys to its waiters, which
re-read the database: a duplicate or spurious key costs a query, never correctness.

A listener that loses its connection may miss keys, so after every (re)connect it reports a
gap and the caller wakes every waiter; the long-poll's periodic recheck stays as the last
bound. SQLite is one node, so nothing here runs there.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy.engine import URL

log = logging.getLogger("opstage.store")
CHANNEL = "opstage_wake"
# PostgreSQL refuses a NOTIFY payload of 8,000 bytes or more; keys are ASCII ids.
MAX_PAYLOAD_BYTES = 7_900
RETRY_SECONDS = (0.5, 1.0, 2.0, 5.0)


def payloads(keys: Iterable[str], origin: str = "") -> list[str]:
    """Distinct keys, space-separated, in as few payloads as the size limit allows; each
    payload starts with the sending node's ``origin`` token (``@…``) when there is one."""
    out: list[str] = []
    current: list[str] = [origin] if origin else []
    size = len(origin)
    for key in dict.fromkeys(keys):
        if len(current) > bool(origin) and size + 1 + len(key) > MAX_PAYLOAD_BYTES:
            out.append(" ".join(current))
            current, size = ([origin], len(origin)) if origin else ([], 0)
        current.append(key)
        size += len(key) + (1 if size else 0)
    if len(current) > bool(origin):
        out.append(" ".join(current))
    return out


def new_origin() -> str:
    """A node's token in its own payloads, so that its listener can pass over them."""
    return "@" + secrets.token_hex(8)


def listen_dsn(url: URL) -> str:
    """asyncpg's own DSN for the engine's database (the engine's URL names its dialect)."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


class PgWakeListener:
    """Listens on ``CHANNEL`` for as long as it runs, reconnecting after any loss."""

    def __init__(
        self,
        dsn: str,
        on_keys: Callable[[list[str]], None],
        on_gap: Callable[[], None],
        origin: str = "",
    ) -> None:
        self._dsn = dsn
        self._origin = origin
        self._on_keys = on_keys
        self._on_gap = on_gap
        self.connected = asyncio.Event()
        self.received = 0  # notifications heard
        self.connects = 0  # successful connects (1 + reconnects)

    def status(self) -> dict[str, Any]:
        """For runtime diagnostics: is this node hearing the others?"""
        return {
            "channel": CHANNEL,
            "connected": self.connected.is_set(),
            "received": self.received,
            "reconnects": max(0, self.connects - 1),
        }

    def _deliver(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        keys = payload.split()
        if keys and keys[0].startswith("@"):
            if keys[0] == self._origin:
                # This node's own commit: its waiters are woken by the domain event bus after
                # the commit's hooks have run (a prepared one-time secret is held by then). The
                # database can deliver the notification before those hooks, and a waiter woken
                # that early would read the result without its secret.
                return
            keys = keys[1:]
        self.received += 1
        self._on_keys(keys)

    async def run(self) -> None:
        import asyncpg

        failures = 0
        while True:
            try:
                conn = await asyncpg.connect(self._dsn)
            except (OSError, asyncpg.PostgresError) as exc:
                delay = RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)]
                failures += 1
                log.warning("wake listener cannot connect (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                continue
            failures = 0
            self.connects += 1
            try:
                await self._listen(conn)
            finally:
                self.connected.clear()
                if not conn.is_closed():
                    await conn.close(timeout=2)
            log.warning("wake listener lost its connection; reconnecting")

    async def _listen(self, conn: Any) -> None:
        """Until ``conn`` is lost."""
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _conn: lost.set())
        await conn.add_listener(CHANNEL, self._deliver)
        self.connected.set()
        self._on_gap()  # keys sent while this node was not listening are unknown
        await lost.wait()
