"""Group commit for Capsule Bus ingest.

Publishing comes in bursts, and one event in its own transaction costs about fourteen
statements (each a thread hand-off to the database driver), which capped ingest near a hundred
events a second. Each publish is handed to this writer instead; it folds everything that
arrived while the previous batch was committing into one transaction:

- reference reads (source and target services, actions, agents, routes, causes) are made once
  per batch and then served from memory, consistent because the batch holds the write lock
  (SQLite) or its own snapshot of those rows (PostgreSQL);
- the batch's idempotency keys are looked up in one query;
- events, commands and audit rows are inserted with one statement per table at the end.

Every rule of ``bus.ingest_event`` holds per event and in the same order; an event refused by
a rule is refused alone (its buffered writes and domain events are dropped, its rate slot
given back). If the batch fails in the database, nothing of it was committed and each event
is run again on its own through ``bus.ingest_event``, so a conflict (a retry of one key
committed by another node) costs throughput, never correctness. A publish is answered only
after its batch has committed: an acknowledged event is durable, with all of its commands.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any, cast

from opstage.app import bus
from opstage.app.context import Actor, AppContext
from opstage.app.ports import BusSession, UnitOfWork
from opstage.domain.errors import DomainError
from opstage.domain.records import BusEventRow

log = logging.getLogger("opstage.bus")
Row = dict[str, Any]
Memo = dict[tuple[str, tuple[Any, ...]], Any]
MAX_BATCH = 200
# How long one pipelined run of batches may keep the writer once another writer of this
# process waits for it (heartbeats, claims, admin changes wait at most this much longer under
# full ingest). Uncontended, a run goes on while publishes keep coming: ending it costs a
# drained pipeline and fresh reads, about a tenth of ingest throughput at one end per 50 ms.
SESSION_SECONDS = 0.05


@dataclass
class _Publish:
    actor: Actor
    agent_id: str
    body: Row
    key: str | None
    future: asyncio.Future[Row]


class _CachedRepo:
    """Serves repeated reads of one batch from memory; everything else goes through."""

    def __init__(self, repo: Any, cached: frozenset[str], memo: Memo | None = None) -> None:
        self._repo = repo
        self._memo: Memo = {} if memo is None else memo
        for name in cached:
            setattr(self, name, self._memoised(self._memo, name, getattr(repo, name)))

    def seed(self, name: str, answers: dict[Any, Any]) -> None:
        """Answers read ahead: ``name(*args)`` for each args (a tuple, or one plain argument)."""
        for args, value in answers.items():
            self._memo[(name, args if isinstance(args, tuple) else (args,))] = value

    @staticmethod
    def _memoised(memo: dict[tuple[str, tuple[Any, ...]], Any], name: str, read: Any) -> Any:
        async def cached(*args: Any) -> Any:
            key = (name, args)
            if key not in memo:
                memo[key] = await read(*args)
            return memo[key]

        return cached

    def __getattr__(self, name: str) -> Any:  # only for what is not memoised
        return getattr(self._repo, name)


class _BufferedInserts:
    """``insert`` collects rows; the unit's ``flush`` writes them, one statement per table."""

    def __init__(self, repo: Any, extra: dict[str, Any] | None = None) -> None:
        self._repo = repo
        self.rows: list[Row] = []
        self._extra = extra or {}

    def __getattr__(self, name: str) -> Any:
        if name in self._extra:
            return self._extra[name]
        return getattr(self._repo, name)

    async def insert(self, row: Row) -> None:
        self.rows.append(row)


@dataclass
class _References:
    """Reads a run of batches share (a session), keyed as ``_CachedRepo`` keys them."""

    services: Memo = field(default_factory=dict)
    agents: Memo = field(default_factory=dict)
    routes: Memo = field(default_factory=dict)
    causes: dict[str, Row | None] = field(default_factory=dict)
    version: int | None = None  # the database's data_version they were read at

    def covers(self, codes: set[str], types: set[str], causes: set[str]) -> bool:
        return (
            self.version is not None
            and all(("get_by_code", (c,)) in self.services for c in codes)
            and all(("candidates", (t,)) in self.routes for t in types)
            and all(c in self.causes for c in causes)
        )

    def reset(self, version: int | None) -> None:
        for memo in (self.services, self.agents, self.routes):
            memo.clear()
        self.causes.clear()
        self.version = version


class _BatchUnit:
    """The batch's view of one write unit of work: cached reads, buffered inserts."""

    def __init__(self, uow: UnitOfWork, refs: _References | None = None) -> None:
        refs = refs or _References()
        self.uow = uow
        self.services = _CachedRepo(
            uow.services, frozenset({"get_by_code", "action", "get"}), refs.services
        )
        self.agents = _CachedRepo(uow.agents, frozenset({"get"}), refs.agents)
        self.bus_routes = _CachedRepo(uow.bus_routes, frozenset({"candidates"}), refs.routes)
        self.commands = _BufferedInserts(uow.commands)
        self.audit = _BufferedInserts(uow.audit)
        self.bus_events = _BufferedInserts(
            uow.bus_events, {"set_outcome": self._set_outcome, "get": self._get_event}
        )
        self._recorded = uow.events
        self._causes = refs.causes

    def __getattr__(self, name: str) -> Any:
        return getattr(self.uow, name)

    def record(self, event: Any) -> None:
        self.uow.record(event)

    async def _set_outcome(self, event_id: str, route_count: int, response: Row) -> None:
        for row in reversed(self.bus_events.rows):
            if row["id"] == event_id:
                row["route_count"], row["response"] = route_count, response
                return
        await self.uow.bus_events.set_outcome(event_id, route_count, response)

    async def _get_event(self, event_id: str) -> Row | None:
        for row in self.bus_events.rows:
            if row["id"] == event_id:
                return row
        if event_id in self._causes:
            return self._causes[event_id]
        return cast("Row | None", await self.uow.bus_events.get(event_id))

    async def read_ahead(self, batch: list[_Publish]) -> None:
        """Everything routing will read for this batch, in one round trip."""
        codes, types, causes = _needs(batch)
        refs = await self.uow.bus_routes.references(sorted(codes), sorted(types), sorted(causes))
        self.seed(refs)

    def seed(self, refs: Any) -> None:
        self.services.seed("get_by_code", refs.services_by_code)
        self.services.seed("action", refs.actions)
        self.bus_routes.seed("candidates", refs.routes_by_type)
        self.agents.seed("get", refs.agents)
        self._causes.update(refs.events)

    def rows_by_table(self) -> list[tuple[str, list[Row]]]:
        # Foreign keys: commands point at their bus event.
        return [
            ("bus_events", self.bus_events.rows),
            ("commands", self.commands.rows),
            ("audit_events", self.audit.rows),
        ]

    def mark(self) -> tuple[int, int, int, int]:
        return (
            len(self.bus_events.rows),
            len(self.commands.rows),
            len(self.audit.rows),
            len(self._recorded),
        )

    def rollback_to(self, mark: tuple[int, int, int, int]) -> None:
        del self.bus_events.rows[mark[0] :]
        del self.commands.rows[mark[1] :]
        del self.audit.rows[mark[2] :]
        del self._recorded[mark[3] :]

    async def flush(self) -> None:
        # Written with the commit, in the same round trip as the event log and (SQLite) COMMIT.
        await self.uow.insert_all(self.rows_by_table())


def _needs(batch: list[_Publish]) -> tuple[set[str], set[str], set[str]]:
    """Source service codes, event types and cause event ids a batch's routing reads."""
    return (
        {str(p.body["sourceServiceCode"]) for p in batch},
        {str(p.body["eventType"]) for p in batch},
        {str(p.body["causationId"]) for p in batch if p.body.get("causationId")},
    )


class _Miss(Exception):
    """A read a session cannot serve from what it has read: the batch goes to a unit of work."""


class _Unread:
    """A repository inside a session: anything not already read is a miss."""

    def __getattr__(self, name: str) -> Any:
        async def miss(*_args: Any, **_kwargs: Any) -> Any:
            raise _Miss(name)

        return miss


class _SessionView:
    """The ``UnitOfWork`` surface a batch's rules use, inside a session (no transaction open:
    reads come from the session's references, writes are buffered until ``commit_later``)."""

    write = True

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.events: list[Any] = []
        unread = _Unread()
        self.services = self.agents = self.bus_routes = unread
        self.commands = self.audit = self.bus_events = unread

    def record(self, event: Any) -> None:
        self.events.append(event)

    def after_commit(self, hook: Any) -> None:
        raise _Miss("after_commit")


class BusIngestWriter:
    def __init__(self) -> None:
        self._ctx: AppContext | None = None
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

    def bind(self, ctx: AppContext) -> None:
        self._ctx = ctx

    async def submit(
        self, ctx: AppContext, actor: Actor, agent_id: str, body: Row, key: str | None
    ) -> Row:
        await bus.seed_window(ctx, agent_id)
        future: asyncio.Future[Row] = asyncio.get_running_loop().create_future()
        self._pending.append(_Publish(actor, agent_id, body, key, future))
        if len(self._pending) >= self._want:
            self._kick()
        self._waiting += 1
        try:
            return await future
        finally:
            self._waiting -= 1

    async def run(self) -> None:
        assert self._ctx is not None
        ctx = self._ctx
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending or self._requeued or self._slow:
                if self._slow:
                    batch, self._slow = self._slow[:MAX_BATCH], self._slow[MAX_BATCH:]
                    await self._process(batch)
                elif ctx.bus_session is not None:
                    await self._run_session(ctx, ctx.bus_session())
                else:
                    batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
                    await self._process(batch)

    async def _process(self, batch: list[_Publish]) -> None:
        """One batch in one unit of work; if the database refuses it, each event alone."""
        assert self._ctx is not None
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

    async def _run_session(self, ctx: AppContext, session: BusSession) -> None:
        """Batches back to back on the writer, each prepared while the previous one commits.

        Ends when nothing is pending or queued, or, once another writer of this process is
        waiting, after ``SESSION_SECONDS`` so that it gets its turn; a batch the session
        cannot prepare from what it read goes to a unit of work after it.
        """
        loop = asyncio.get_running_loop()
        refs = _References()
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
                batch, self._pending = self._pending[:size], self._pending[size:]
                try:
                    await self._prepare(ctx, session, refs, batch)
                except Exception as exc:
                    if not isinstance(exc, _Miss):
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
        self, ctx: AppContext, session: BusSession, refs: _References, batch: list[_Publish]
    ) -> None:
        now = ctx.clock()
        since = now - timedelta(hours=ctx.settings.capsule_bus_idempotency_hours)
        pairs = sorted({(p.agent_id, p.key) for p in batch if p.key})
        codes, types, causes = _needs(batch)
        known: dict[tuple[str, str], Row] = {}
        view = _SessionView(ctx.db_kind)
        unit = _BatchUnit(cast(UnitOfWork, view), refs)
        if pairs or not refs.covers(codes, types, causes):
            read = await session.read(sorted(codes), sorted(types), sorted(causes), pairs)
            if read.version != refs.version:
                refs.reset(read.version)
            unit.seed(read.references)
            known = read.keys
        version = refs.version
        assert version is not None
        taken: list[tuple[str, float]] = []
        try:
            outcomes = await _apply_rules(unit, ctx, batch, now, since, known, taken)
        except BaseException:
            _release(ctx, taken)
            raise
        done = session.commit_later(unit.rows_by_table(), view.events, version)
        done.add_done_callback(partial(self._committed, batch, outcomes, taken, view.events, refs))

    def _committed(
        self,
        batch: list[_Publish],
        outcomes: list[Row | DomainError],
        taken: list[tuple[str, float]],
        events: list[Any],
        refs: _References,
        done: asyncio.Future[bool],
    ) -> None:
        assert self._ctx is not None
        error = None if done.cancelled() else done.exception()
        if not done.cancelled() and error is None and done.result():
            self._count(batch)
            _answer(batch, outcomes)
            self._ctx.bus.publish_all(events)
            return
        _release(self._ctx, taken)
        if error is None and not done.cancelled():  # stale: another process wrote meanwhile
            refs.version = None
            self._requeued.extend(batch)
        else:
            log.info("bus batch of %d failed in a session: %r", len(batch), error)
            self._slow.extend(batch)
        self._kick()


def _answer(batch: list[_Publish], outcomes: list[Row | DomainError]) -> None:
    for item, outcome in zip(batch, outcomes, strict=True):
        if item.future.done():
            continue
        if isinstance(outcome, BaseException):
            item.future.set_exception(outcome)
        else:
            item.future.set_result(outcome)


def _release(ctx: AppContext, taken: list[tuple[str, float]]) -> None:
    for agent_id, stamp in taken:
        ctx.bus_windows.release(agent_id, stamp)


async def _ingest_batch(ctx: AppContext, batch: list[_Publish]) -> list[Row | DomainError]:
    now = ctx.clock()
    since = now - timedelta(hours=ctx.settings.capsule_bus_idempotency_hours)
    taken: list[tuple[str, float]] = []
    try:
        async with ctx.writer() as uow:
            unit = _BatchUnit(uow)
            await unit.read_ahead(batch)
            pairs = sorted({(p.agent_id, p.key) for p in batch if p.key})
            known = cast(
                "dict[tuple[str, str], Row]", await uow.bus_events.by_idempotency_keys(pairs)
            )
            outcomes = await _apply_rules(unit, ctx, batch, now, since, known, taken)
            await unit.flush()
    except BaseException:
        _release(ctx, taken)
        raise
    return outcomes


async def _apply_rules(
    unit: _BatchUnit,
    ctx: AppContext,
    batch: list[_Publish],
    now: datetime,
    since: datetime,
    known: dict[tuple[str, str], Row],
    taken: list[tuple[str, float]],
) -> list[Row | DomainError]:
    """Every event's rules in order; a refused event is dropped alone (``taken``: the rate
    slots of the events kept)."""
    accepted: dict[tuple[str, str], Row] = {}
    outcomes: list[Row | DomainError] = []
    for item in batch:
        mark = unit.mark()
        slot: list[tuple[str, float]] = []
        try:
            outcome = await _one(unit, ctx, item, now, since, known, accepted, slot)
        except DomainError as exc:
            unit.rollback_to(mark)
            _release(ctx, slot)
            outcomes.append(exc)
            continue
        except BaseException:
            _release(ctx, slot)
            raise
        taken.extend(slot)
        outcomes.append(outcome)
    return outcomes


async def _one(
    unit: _BatchUnit,
    ctx: AppContext,
    item: _Publish,
    now: datetime,
    since: datetime,
    known: dict[tuple[str, str], Row],
    accepted: dict[tuple[str, str], Row],
    slot: list[tuple[str, float]],
) -> Row:
    """``bus.ingest_event``'s rules for one event of the batch, in the same order."""
    body, agent_id, key = item.body, item.agent_id, item.key
    source = bus.check_source(
        await unit.services.get_by_code(body["sourceServiceCode"]), body, agent_id
    )
    if key:
        earlier = accepted.get((agent_id, key))
        if earlier is not None:  # the same key twice in one batch: the second is a replay
            return {**earlier, "replay": True}
        found = known.get((agent_id, key))
        if found is not None:
            if found["accepted_at"] >= since:
                return bus.replay_of(cast("BusEventRow", found))
            await unit.uow.bus_events.release_idempotency_key(agent_id, key, since)
            del known[(agent_id, key)]
    stamp = now.timestamp()
    bus.reserve_slot(ctx, agent_id, stamp)
    slot.append((agent_id, stamp))
    view = cast(UnitOfWork, unit)
    event = await bus.new_event(view, ctx, agent_id, source, body, key, now)
    response = await bus.store_and_route(view, ctx, item.actor, event)
    if key:
        accepted[(agent_id, key)] = response
    return response


async def publish(ctx: AppContext, actor: Actor, agent_id: str, body: Row, key: str | None) -> Row:
    """A publish through the group-commit writer when this process runs one."""
    if ctx.bus_ingest is not None:
        return await ctx.bus_ingest.submit(ctx, actor, agent_id, body, key)
    return await bus.ingest_event(ctx, actor, agent_id, body, key)
