"""The domain event bus: bounded, never blocks a publisher, tells a slow reader what it missed."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import ClassVar

import pytest
from opstage.app.eventbus import DomainEventBus, Lagged
from opstage.domain.events import DomainEvent


@dataclass(frozen=True, slots=True)
class Tick(DomainEvent):
    kind: ClassVar[str] = "tick"
    n: int


def test_every_subscriber_gets_every_event_in_order() -> None:
    bus = DomainEventBus(capacity=10)
    a, b = bus.subscribe("a"), bus.subscribe("b")
    for i in range(5):
        bus.publish(Tick(i))
    assert [a.try_recv() for _ in range(5)] == [Tick(i) for i in range(5)]
    assert [b.try_recv() for _ in range(5)] == [Tick(i) for i in range(5)]
    assert a.try_recv() is None


@dataclass(frozen=True, slots=True)
class Tock(DomainEvent):
    kind: ClassVar[str] = "tock"
    n: int


def test_a_subscription_for_some_kinds_gets_only_those_in_order() -> None:
    bus = DomainEventBus(capacity=2)
    ticks, everything = bus.subscribe("ticks", kinds=[Tick]), bus.subscribe("all", 10)
    bus.publish_all([Tick(0), Tock(1), Tock(2), Tock(3), Tick(4)])
    bus.publish(Tock(5))
    assert [ticks.try_recv() for _ in range(3)] == [Tick(0), Tick(4), None]  # no lag: 2 fit
    assert [everything.try_recv() for _ in range(6)] == [
        Tick(0), Tock(1), Tock(2), Tock(3), Tick(4), Tock(5)
    ]  # fmt: skip
    assert bus.published_total == 6


def test_slow_subscriber_gets_one_lagged_signal_then_the_newest() -> None:
    bus = DomainEventBus(capacity=3)
    slow = bus.subscribe("slow")
    for i in range(10):
        bus.publish(Tick(i))  # never blocks, never raises
    assert slow.try_recv() == Lagged(7)
    assert [slow.try_recv() for _ in range(3)] == [Tick(7), Tick(8), Tick(9)]
    assert slow.try_recv() is None
    assert bus.dropped_total == 7
    assert bus.published_total == 10


def test_lag_of_one_reader_does_not_touch_another() -> None:
    bus = DomainEventBus(capacity=2)
    slow, fast = bus.subscribe("slow"), bus.subscribe("fast")
    for i in range(4):
        bus.publish(Tick(i))
        assert fast.try_recv() == Tick(i)
    assert slow.try_recv() == Lagged(2)
    assert bus.max_lag() == 2


async def test_recv_wakes_on_publish_and_close_ends_it() -> None:
    bus = DomainEventBus()
    sub = bus.subscribe()
    waiter = asyncio.create_task(sub.recv())
    await asyncio.sleep(0)
    bus.publish(Tick(1))
    assert await asyncio.wait_for(waiter, 1) == Tick(1)
    sub.close()
    assert bus.subscriber_count == 0
    with pytest.raises(asyncio.CancelledError):
        await sub.recv()


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError, match="capacity"):
        DomainEventBus(0)


def test_wake_rouses_the_named_subscriptions_without_an_event() -> None:
    """Another node's commit (ADR 0016): its live streams re-read the log, nothing is queued."""

    async def main() -> None:
        bus = DomainEventBus(capacity=10)
        stream, other = bus.subscribe("event-stream"), bus.subscribe("waiters")
        assert stream.try_recv() is None and other.try_recv() is None
        bus.wake("event-stream")
        await asyncio.wait_for(stream.wait(), 1)
        assert stream.try_recv() is None  # drained: the next wait blocks again
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(stream.wait(), 0.05)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(other.wait(), 0.05)
        bus.publish(Tick(1))
        await asyncio.wait_for(stream.wait(), 1)
        assert stream.try_recv() == Tick(1)

    asyncio.run(main())
