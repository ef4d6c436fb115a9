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

from opstage.app.eventbus import DomainEventBus, Lagged
from opstage.domain.events import CommandCreated, CommandStatusChanged

log = logging.getLogger("opstage.waiters")


class Waiters:
    def __init__(self) -> None:
        self._events: dict[str, set[asyncio.Event]] = defaultdict(set)
        self.lag_wakeups = 0

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

    def notify_all(self) -> None:
        for waiters in self._events.values():
            for event in waiters:
                event.set()

    @property
    def waiting(self) -> int:
        return sum(len(w) for w in self._events.values())

    async def run(self, bus: DomainEventBus) -> None:
        with bus.subscribe("waiters", capacity=max(bus.capacity, 10_000)) as sub:
            while True:
                item = await sub.recv()
                if isinstance(item, Lagged):
                    self.lag_wakeups += 1
                    log.warning("waiters lagged by %d events; waking every waiter", item.missed)
                    self.notify_all()
                elif isinstance(item, CommandCreated):
                    self.notify(f"agent:{item.agent_id}")
                elif isinstance(item, CommandStatusChanged):
                    self.notify(f"command:{item.command_id}")

    async def wait(self, event: asyncio.Event, timeout: float) -> bool:
        if timeout <= 0:
            return event.is_set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)
        return event.is_set()
