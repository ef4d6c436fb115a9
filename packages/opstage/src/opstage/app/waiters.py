"""Wake-ups for requests that wait on the database: long-polls and prepare panels.

Keys are ``agent:<id>`` (a command was created for that agent) and ``command:<id>`` (that
command changed status). A subscriber on the domain event bus sets them. When the subscriber
lags, it cannot know what it missed, so it wakes everyone: waiters always re-read the
database after waking, so a spurious wake-up costs a query, never correctness.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Sequence

from opstage.app.eventbus import DomainEventBus, Lagged
from opstage.domain.events import CommandCreated, CommandStatusChanged, DomainEvent

log = logging.getLogger("opstage.waiters")


class PendingHint:
    """Skips the database on polls that cannot find anything (single-node engines only).

    Each agent has a version, bumped by every CommandCreated this node sees. A poll that found
    nothing records the version it read *before* its query as "clean". While the version is
    unchanged, nothing can be pending for that agent: any command committed before the read
    was visible to the query, and any committed after bumps the version. A lag forgets every
    clean mark, so a lost event costs a query, never a command.
    """

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._version: dict[str, int] = defaultdict(int)
        self._clean: dict[str, int] = {}
        # After ``warm``: the agents that had pending commands then, and the versions read
        # before that query; every other agent is clean at the version it had.
        self._warm: tuple[frozenset[str], dict[str, int]] | None = None
        self.skipped = 0

    def version(self, agent_id: str) -> int:
        return self._version[agent_id]

    def versions(self) -> dict[str, int]:
        """Every agent's version now (for ``warm``; an agent not listed is at 0)."""
        return dict(self._version)

    def surely_empty(self, agent_id: str) -> bool:
        if not self.enabled:
            return False
        clean = self._clean.get(agent_id)
        if clean is None and self._warm is not None and agent_id not in self._warm[0]:
            clean = self._warm[1].get(agent_id, 0)
        if clean == self._version[agent_id]:
            self.skipped += 1
            return True
        return False

    def warm(self, pending: frozenset[str], before: dict[str, int]) -> None:
        """Every agent outside ``pending`` (those with a pending command, read after
        ``before`` was taken) is clean: the first long-poll of each agent after a start then
        skips its probe, so a fleet reconnecting at once costs one query, not one per agent
        (ADR 0017)."""
        if self.enabled:
            self._warm = (pending, before)

    def mark_clean(self, agent_id: str, version: int) -> None:
        if self.enabled:
            self._clean[agent_id] = version

    def bump(self, agent_id: str) -> None:
        self._version[agent_id] += 1

    def forget(self) -> None:
        self._clean.clear()
        self._warm = None


def wake_keys(events: Sequence[DomainEvent]) -> list[str]:
    """The waiters' keys that ``events`` concern: whom a committed change should wake."""
    keys = []
    for event in events:
        if isinstance(event, CommandCreated):
            keys.append(f"agent:{event.agent_id}")
        elif isinstance(event, CommandStatusChanged):
            keys.append(f"command:{event.command_id}")
    return keys


class Waiters:
    def __init__(self, pending: PendingHint | None = None) -> None:
        self._events: dict[str, set[asyncio.Event]] = defaultdict(set)
        self.lag_wakeups = 0
        self.pending = pending or PendingHint(enabled=False)

    def register(self, key: str) -> asyncio.Event:
        event = asyncio.Event()
        self._events[key].add(event)
        return event

    def unregister(self, key: str, event: asyncio.Event) -> None:
        waiters = self._events.get(key)
        if waiters is not None:
            waiters.discard(event)
            if not waiters:
                del self._events[key]

    def notify(self, key: str) -> None:
        for event in self._events.get(key, ()):
            event.set()

    def notify_keys(self, keys: Sequence[str]) -> None:
        """Wake the waiters of ``keys``: from this node's events, or another node's
        (store/pg_wake.py)."""
        for key in keys:
            if key.startswith("agent:"):
                self.pending.bump(key.removeprefix("agent:"))
            self.notify(key)

    def notify_all(self) -> None:
        for waiters in self._events.values():
            for event in waiters:
                event.set()

    @property
    def waiting(self) -> int:
        return sum(len(w) for w in self._events.values())

    async def run(self, bus: DomainEventBus) -> None:
        wanted = (CommandCreated, CommandStatusChanged)
        with bus.subscribe("waiters", max(bus.capacity, 10_000), wanted) as sub:
            while True:
                item = await sub.recv()
                if isinstance(item, Lagged):
                    self.lag_wakeups += 1
                    log.warning("waiters lagged by %d events; waking every waiter", item.missed)
                    self.pending.forget()
                    self.notify_all()
                else:
                    self.notify_keys(wake_keys([item]))

    def recheck_after(self, remaining: float, recheck: float) -> float:
        """How long a parked request waits before it re-reads the database unwoken.

        A node that sees every command created (the pending hint on: one node on SQLite)
        loses no wake-up but to a lag, which wakes everyone: its rechecks would only be
        answered by the hint, so it waits out ``remaining`` on one timer (ADR 0017). Other
        nodes' wake-ups can be lost, so there a recheck every ``recheck`` seconds bounds them.
        """
        return remaining if self.pending.enabled else min(remaining, recheck)

    async def wait(self, event: asyncio.Event, timeout: float) -> bool:
        if timeout <= 0:
            return event.is_set()
        # A timer on the waiting task, not ``wait_for``'s task per wait: thousands of
        # long-polls park at once (ADR 0017).
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await event.wait()
        return event.is_set()
