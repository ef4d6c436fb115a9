"""Group commit for Capsule Bus ingest.

Publishing comes in bursts, and one event in its own transaction costs about fourteen
statements (each a thread hand-off to the database driver), which capped ingest near a hundred
events a second. Each publish is handed to this writer instead; it folds everything that
arrived while the previous batch was committing into one transaction:

- the batch's read set (source and target services, actions, agents, routes, causes, stored
  idempotency keys) is read once, in one or two round trips, consistent because the batch
  holds the write lock (SQLite) or its own snapshot of those rows (PostgreSQL); a pipelined
  session keeps its references across its batches while the database does not change;
- events, commands and audit rows are inserted with one statement per table at the end.

The rules are ``app/bus_admission.py``'s, the same function the single-event path runs
(ADR 0009); the strategies here differ only in how they read its read set and how they write.
An event refused by a rule is refused alone. If the batch fails in the database, nothing of it
was committed and each event is run again on its own through ``bus.ingest_event``, so a
conflict (a retry of one key committed by another node) costs throughput, never correctness.
A publish is answered only after its batch has committed: an acknowledged event is durable,
with all of its commands.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

from opstage.app import bus
from opstage.app.bus_admission import (
    Admission,
    BusLimits,
    Publish,
    ReadSet,
    Wants,
    admit,
    release,
)
from opstage.app.context import Actor, BusIngest
from opstage.app.eventbus import DomainEventBus
from opstage.app.ports import BusSession
from opstage.domain.errors import DomainError

log = logging.getLogger("opstage.bus")
Row = dict[str, Any]
MAX_BATCH = 200
# How long one pipelined run of batches may keep the writer once another writer of this
# process waits for it (heartbeats, claims, admin changes wait at most this much longer under
# full ingest). Uncontended, a run goes on while publishes keep coming: ending it costs a
# drained pipeline and fresh reads, about a tenth of ingest throughput at one end per 50 ms.
SESSION_SECONDS = 0.05


class BatchContext(bus.BusContext, Protocol):
    """What the writer uses of the application context (``AppContext`` is one)."""

    bus: DomainEventBus


class PublishContext(bus.BusContext, Protocol):
    """What a publish uses (``AppContext`` is one; ADR 0010): this process's group-commit
    writer, None in one-off CLI runtimes that never start it."""

    bus_ingest: BusIngest | None


@dataclass(frozen=True, slots=True)
class _Publish(Publish):
    future: asyncio.Future[Row] = field(kw_only=True)


@dataclass
class _SessionReads:
    """What a run of batches (a session) has read, at one database version."""

    reads: ReadSet = field(default_factory=ReadSet)
    version: int | None = None  # the database's data_version they were read at

    def reset(self, version: int | None) -> None:
        self.reads, self.version = ReadSet(), version


class _NeedsUnit(Exception):
    """A batch a session cannot write (it frees an expired idempotency key: an UPDATE)."""


class UnitBatches:
    """Every engine: each batch in a unit of work of its own (``bus.admit_in_unit``)."""

    async def drain(self, writer: BusIngestWriter) -> None:
        await writer.process(writer.take(MAX_BATCH))


class PipelinedBatches:
    """SQLite: runs of batches on the writer connection, commits pipelined (ADR 0004)."""

    def __init__(self, sessions: Callable[[], BusSession]) -> None:
        self.sessions = sessions

    async def drain(self, writer: BusIngestWriter) -> None:
        await writer.run_session(self.sessions())


BatchStrategy = UnitBatches | PipelinedBatches


class BusIngestWriter:
    def __init__(self, ctx: BatchContext, strategy: BatchStrategy) -> None:
        self._ctx = ctx
        self.strategy = strategy
        self._pending: list[_Publish] = []
        self._requeued: list[_Publish] = []  # prepared from stale reads: prepare again
        self._slow: list[_Publish] = []  # for a unit of work (and, failing that, one by one)
        self._wake = asyncio.Event()
        self._want = 1  # pending publishes that wake the writer
        self._until_future: asyncio.Future[None] | None = None
        self._waiting = 0  # publishes submitted and not yet answered
        self.batches = 0
        self.events = 0
        self.fallbacks = 0

    async def submit(self, actor: Actor, agent_id: str, body: Row, key: str | None) -> Row:
        await bus.seed_window(self._ctx, agent_id)
        future: asyncio.Future[Row] = asyncio.get_running_loop().create_future()
        self._pending.append(_Publish(actor, agent_id, body, key, future=future))
        if len(self._pending) >= self._want:
            self._kick()
        self._waiting += 1
        try:
            return await future
        finally:
            self._waiting -= 1

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending or self._requeued or self._slow:
                if self._slow:
                    batch, self._slow = self._slow[:MAX_BATCH], self._slow[MAX_BATCH:]
                    await self.process(batch)
                else:
                    await self.strategy.drain(self)

    def take(self, size: int) -> list[_Publish]:
        """The oldest ``size`` pending publishes (those prepared from stale reads first)."""
        if self._requeued:
            self._pending[:0], self._requeued = self._requeued, []
        batch, self._pending = self._pending[:size], self._pending[size:]
        return batch

    async def process(self, batch: list[_Publish]) -> None:
        """One batch in one unit of work; if the database refuses it, each event alone."""
        ctx = self._ctx
        try:
            outcomes = await _ingest_batch(ctx, batch)
        except Exception:
            self.fallbacks += 1
            log.info("bus batch of %d failed; replaying it event by event", len(batch))
            for item in batch:
                if item.future.done():
                    continue
                try:
                    result = await bus.ingest_event(
                        ctx, item.actor, item.agent_id, item.body, item.key
                    )
                except Exception as exc:
                    if not item.future.done():
                        item.future.set_exception(exc)
                else:
                    if not item.future.done():
                        item.future.set_result(result)
            return
        self._count(batch)
        _answer(batch, outcomes)

    def _count(self, batch: list[_Publish]) -> None:
        """A committed batch (one prepared again after a stale read counts once)."""
        self.batches += 1
        self.events += len(batch)

    async def run_session(self, session: BusSession) -> None:
        """Batches back to back on the writer, each prepared while the previous one commits.

        Ends when nothing is pending or queued, or, once another writer of this process is
        waiting, after ``SESSION_SECONDS`` so that it gets its turn; a batch the session
        cannot write goes to a unit of work after it.
        """
        loop = asyncio.get_running_loop()
        seen = _SessionReads()
        end = loop.time() + SESSION_SECONDS
        async with session:
            while loop.time() < end or not session.contended():
                if self._requeued:
                    self._pending[:0], self._requeued = self._requeued, []
                running = session.unfinished()
                # Half of the publishers waiting for an answer: while one half's batch
                # commits, the other half's is prepared (one batch of everyone would leave
                # the loop idle during every commit, the publishers all waiting on it).
                size = min(MAX_BATCH, -(-self._waiting // 2))
                if running is not None and len(self._pending) < size:
                    await self._until(size, running)
                    continue
                if not self._pending:
                    return
                batch = self.take(size)
                try:
                    await self._prepare(session, seen, batch)
                except Exception as exc:
                    if not isinstance(exc, _NeedsUnit):
                        log.info("bus batch of %d not prepared in a session: %r", len(batch), exc)
                    self._slow.extend(batch)
                    return

    async def _until(self, pending: int, running: asyncio.Future[bool]) -> None:
        """Until ``pending`` publishes are pending or ``running`` has committed.

        One plain future that either resolves, not a task and ``asyncio.wait``: this runs
        once per batch on the busy event loop.
        """
        self._want = pending
        self._wake.clear()
        until = self._until_future = asyncio.get_running_loop().create_future()
        running.add_done_callback(self._resolve_until)
        try:
            await until
        finally:
            running.remove_done_callback(self._resolve_until)
            self._until_future = None
            self._want = 1

    def _resolve_until(self, _: object = None) -> None:
        until = self._until_future
        if until is not None and not until.done():
            until.set_result(None)

    def _kick(self) -> None:
        """Wake the writer, idle or waiting in ``_until``."""
        self._wake.set()
        self._resolve_until()

    async def _prepare(
        self, session: BusSession, seen: _SessionReads, batch: list[_Publish]
    ) -> None:
        ctx = self._ctx
        now = ctx.clock()
        wants = Wants.of(batch)
        if wants.key_pairs or seen.version is None or not seen.reads.covers(wants):
            read = await session.read(
                wants.source_codes, wants.event_types, wants.cause_ids, wants.key_pairs
            )
            if read.version != seen.version:
                seen.reset(read.version)
            seen.reads.merge(ReadSet.of(read.references, read.keys))
        else:
            seen.reads.keys = {}  # no keys in this batch
        version = seen.version
        assert version is not None
        admission = admit(batch, seen.reads, BusLimits.of(ctx.settings), ctx.bus_windows, now)
        if admission.writes.expired_keys:
            release(ctx.bus_windows, admission.slots)
            raise _NeedsUnit
        writes = admission.writes
        done = session.commit_later(writes.rows_by_table(), writes.events, version)
        done.add_done_callback(partial(self._committed, batch, admission, seen))

    def _committed(
        self,
        batch: list[_Publish],
        admission: Admission,
        seen: _SessionReads,
        done: asyncio.Future[bool],
    ) -> None:
        ctx = self._ctx
        error = None if done.cancelled() else done.exception()
        if not done.cancelled() and error is None and done.result():
            self._count(batch)
            _answer(batch, admission.outcomes)
            ctx.bus.publish_all(admission.writes.events)
            return
        release(ctx.bus_windows, admission.slots)
        if error is None and not done.cancelled():  # stale: another process wrote meanwhile
            seen.version = None
            self._requeued.extend(batch)
        else:
            log.info("bus batch of %d failed in a session: %r", len(batch), error)
            self._slow.extend(batch)
        self._kick()


def _answer(batch: Sequence[_Publish], outcomes: Sequence[Row | DomainError]) -> None:
    for item, outcome in zip(batch, outcomes, strict=True):
        if item.future.done():
            continue
        if isinstance(outcome, BaseException):
            item.future.set_exception(outcome)
        else:
            item.future.set_result(outcome)


async def _ingest_batch(ctx: BatchContext, batch: Sequence[Publish]) -> list[Row | DomainError]:
    return (await bus.admit_in_unit(ctx, batch)).outcomes


async def publish(
    ctx: PublishContext, actor: Actor, agent_id: str, body: Row, key: str | None
) -> Row:
    """A publish through the group-commit writer when this process runs one."""
    if ctx.bus_ingest is not None:
        return await ctx.bus_ingest.submit(actor, agent_id, body, key)
    return await bus.ingest_event(ctx, actor, agent_id, body, key)
