"""The durable domain-event log, followed live (design.md section 5.1).

Every ``DomainEvent`` a committed unit of work recorded is also a row of the event log, written
in the same transaction; its id is what a live-stream client resumes from (``Last-Event-ID``).

:func:`follow` reads the log after a cursor and then waits. The in-process domain event bus
only *wakes* it: whatever woke it (an event, or a ``Lagged`` signal after a burst), it reads
the log after its cursor again, so ids, order and completeness always come from the log and a
lagging subscriber cannot lose anything. A periodic re-read (``event_stream_poll_seconds``)
picks up events committed by other processes (the CLI) and is the safety net for other nodes
on a shared PostgreSQL, whose commits wake it at once through LISTEN/NOTIFY or the NATS relay
(ADR 0016).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from opstage.app.context import UnitContext
from opstage.app.eventbus import DomainEventBus

READ_BATCH = 200
# The bus subscriptions of live streams, woken by another node's commit (ADR 0016).
STREAM_SUBSCRIPTION = "event-stream"
# The cross-node wake-up key of "this unit appended to the event log" (store/pg_wake.py).
LOG_WAKE_KEY = "event-log"
PRUNE_BATCH = 5000


class FollowContext(UnitContext, Protocol):
    """What following the log live uses beyond units of work (``AppContext`` is one; ADR 0010):
    the in-process domain event bus, which only wakes a follower."""

    bus: DomainEventBus


@dataclass(frozen=True, slots=True)
class LoggedEvent:
    id: int
    kind: str
    data: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Gap:
    """The client asked for history that is no longer (or never was) in the log."""

    requested_after: int
    resume_after: int
    oldest_available: int | None
    reason: str  # "pruned" | "unknown"


@dataclass(frozen=True, slots=True)
class Ready:
    """The stream is live: everything after ``last_event_id`` will be delivered."""

    last_event_id: int


@dataclass(frozen=True, slots=True)
class KeepAlive:
    pass


StreamItem = LoggedEvent | Gap | Ready | KeepAlive


async def _start(ctx: UnitContext, after: int | None) -> tuple[int, Gap | None]:
    async with ctx.reader() as uow:
        oldest, newest, pruned_through = await uow.event_log.bounds()
    head = max(newest or 0, pruned_through)
    if after is None:
        return head, None
    if after < pruned_through:
        return pruned_through, Gap(after, pruned_through, oldest, "pruned")
    if after > head:
        # An id this log never handed out (another database, a restored backup): start afresh.
        return head, Gap(after, head, oldest, "unknown")
    return after, None


async def read_after(
    ctx: UnitContext, cursor: int, kinds: Sequence[str] = (), limit: int = READ_BATCH
) -> tuple[list[LoggedEvent], int]:
    async with ctx.reader() as uow:
        rows, moved_to = await uow.event_log.after(cursor, limit, kinds)
    events = [LoggedEvent(int(r["id"]), r["kind"], r["data"], r["created_at"]) for r in rows]
    return events, moved_to


async def follow(
    ctx: FollowContext, after: int | None, *, kinds: Sequence[str] = ()
) -> AsyncIterator[StreamItem]:
    """Events after ``after`` (or from now), then live ones, with keep-alives; never ends."""
    settings = ctx.settings
    keepalive = settings.event_stream_keepalive_seconds
    poll = min(settings.event_stream_poll_seconds, keepalive)
    loop = asyncio.get_running_loop()
    # Subscribe before reading, so nothing committed in between goes unnoticed.
    with ctx.bus.subscribe(STREAM_SUBSCRIPTION, capacity=256) as sub:
        cursor, gap = await _start(ctx, after)
        if gap is not None:
            yield gap
        yield Ready(cursor)
        next_keepalive = loop.time() + keepalive
        while True:
            while True:
                events, moved_to = await read_after(ctx, cursor, kinds)
                for event in events:
                    yield event
                if moved_to == cursor:
                    break
                cursor = moved_to
            timeout = min(poll, max(0.0, next_keepalive - loop.time()))
            with contextlib.suppress(TimeoutError):
                # An event of this process, or a wake-up for another node's (ADR 0016).
                await asyncio.wait_for(sub.wait(), timeout)
            while sub.try_recv() is not None:  # one re-read answers every queued wake-up
                pass
            if loop.time() >= next_keepalive:
                yield KeepAlive()
                next_keepalive = loop.time() + keepalive


async def log_bounds(ctx: UnitContext) -> dict[str, Any]:
    async with ctx.reader() as uow:
        oldest, newest, pruned_through = await uow.event_log.bounds()
    return {"oldestId": oldest, "lastId": newest, "prunedThrough": pruned_through}


async def prune_event_log(ctx: UnitContext, now: datetime | None = None) -> int:
    """Delete events past retention, in short batches (never one long write lock)."""
    hours = ctx.settings.event_log_retention_hours
    if hours <= 0:
        return 0
    now = now or ctx.clock()
    cutoff = now - timedelta(hours=hours)
    async with ctx.reader() as uow:
        through = await uow.event_log.last_id_before(cutoff)
    if through is None:
        return 0
    removed = 0
    while True:
        async with ctx.writer() as uow:
            n: int = await uow.event_log.prune_batch(through, PRUNE_BATCH, now)
        removed += n
        if n < PRUNE_BATCH:
            return removed
