"""The in-process domain event bus (design.md section 5.1).

A broadcast with a bounded ring buffer per subscriber. Publishing never blocks and never
fails: when a subscriber's buffer is full its oldest event is dropped and the subscriber's
next ``recv()`` returns one :class:`Lagged` carrying the number it missed, so it can backfill
from the durable log instead of silently going wrong. Events are published by the unit of
work only after its transaction commits.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from opstage.domain.events import DomainEvent


@dataclass(frozen=True, slots=True)
class Lagged:
    missed: int


class Subscription:
    def __init__(
        self,
        bus: DomainEventBus,
        capacity: int,
        name: str,
        kinds: frozenset[type[DomainEvent]] | None = None,
    ) -> None:
        self._bus = bus
        # Only these event types are offered (None: all). A bus ingest batch publishes five
        # events per bus event; the waiters want one of them.
        self.kinds = kinds
        self._buffer: deque[DomainEvent] = deque()
        self._capacity = capacity
        self._missed = 0
        self._wakeup = asyncio.Event()
        self.name = name
        self.closed = False

    def _offer(self, event: DomainEvent) -> None:
        if len(self._buffer) >= self._capacity:
            self._buffer.popleft()
            self._missed += 1
            self._bus.dropped_total += 1
        self._buffer.append(event)
        self._wakeup.set()

    @property
    def pending(self) -> int:
        return len(self._buffer)

    def try_recv(self) -> DomainEvent | Lagged | None:
        if self._missed:
            missed, self._missed = self._missed, 0
            return Lagged(missed)
        if self._buffer:
            return self._buffer.popleft()
        self._wakeup.clear()
        return None

    async def recv(self) -> DomainEvent | Lagged:
        while True:
            item = self.try_recv()
            if item is not None:
                return item
            if self.closed:
                raise asyncio.CancelledError("subscription closed")
            await self._wakeup.wait()

    async def wait(self) -> None:
        """Until an event is buffered or the subscription is woken (:meth:`DomainEventBus.wake`);
        the caller drains with :meth:`try_recv`, which re-arms it."""
        if self.closed:
            raise asyncio.CancelledError("subscription closed")
        await self._wakeup.wait()

    def close(self) -> None:
        self.closed = True
        self._bus._subscribers.discard(self)
        self._wakeup.set()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class DomainEventBus:
    def __init__(self, capacity: int = 1000) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._subscribers: set[Subscription] = set()
        self.published_total = 0
        self.dropped_total = 0

    def subscribe(
        self,
        name: str = "anonymous",
        capacity: int | None = None,
        kinds: Iterable[type[DomainEvent]] | None = None,
    ) -> Subscription:
        wanted = None if kinds is None else frozenset(kinds)
        sub = Subscription(self, capacity or self.capacity, name, wanted)
        self._subscribers.add(sub)
        return sub

    def publish(self, event: DomainEvent) -> None:
        self.publish_all((event,))

    def publish_all(self, events: Sequence[DomainEvent]) -> None:
        self.published_total += len(events)
        for sub in tuple(self._subscribers):
            kinds = sub.kinds
            for event in events:
                if kinds is None or type(event) in kinds:
                    sub._offer(event)

    def wake(self, name: str) -> None:
        """Wake the subscriptions called ``name`` without an event: something they follow
        changed elsewhere (another node's commit, ADR 0016) and they re-read it."""
        for sub in tuple(self._subscribers):
            if sub.name == name:
                sub._wakeup.set()

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    def max_lag(self) -> int:
        return max((s.pending for s in self._subscribers), default=0)
