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
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from opstage.app import bus
from opstage.app.context import Actor, AppContext
from opstage.app.ports import UnitOfWork
from opstage.domain.errors import DomainError

log = logging.getLogger("opstage.bus")
Row = dict[str, Any]
MAX_BATCH = 200


@dataclass
class _Publish:
    actor: Actor
    agent_id: str
    body: Row
    key: str | None
    future: asyncio.Future[Row]


class _CachedRepo:
    """Serves repeated reads of one batch from memory; everything else goes through."""

    def __init__(self, repo: Any, cached: frozenset[str]) -> None:
        self._repo = repo
        self._memo: dict[tuple[str, tuple[Any, ...]], Any] = {}
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


class _BatchUnit:
    """The batch's view of one write unit of work: cached reads, buffered inserts."""

    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow
        self.services = _CachedRepo(uow.services, frozenset({"get_by_code", "action", "get"}))
        self.agents = _CachedRepo(uow.agents, frozenset({"get"}))
        self.bus_routes = _CachedRepo(uow.bus_routes, frozenset({"candidates"}))
        self.commands = _BufferedInserts(uow.commands)
        self.audit = _BufferedInserts(uow.audit)
        self.bus_events = _BufferedInserts(
            uow.bus_events, {"set_outcome": self._set_outcome, "get": self._get_event}
        )
        self._recorded = uow.events
        self._causes: dict[str, Row | None] = {}

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
        found: Row | None = await self.uow.bus_events.get(event_id)
        return found

    async def read_ahead(self, batch: list[_Publish]) -> None:
        """Everything routing will read for this batch, in one round trip."""
        refs = await self.uow.bus_routes.references(
            sorted({str(p.body["sourceServiceCode"]) for p in batch}),
            sorted({str(p.body["eventType"]) for p in batch}),
            sorted({str(p.body["causationId"]) for p in batch if p.body.get("causationId")}),
        )
        self.services.seed("get_by_code", refs.services_by_code)
        self.services.seed("action", refs.actions)
        self.bus_routes.seed("candidates", refs.routes_by_type)
        self.agents.seed("get", refs.agents)
        self._causes.update(refs.events)

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
        # Foreign keys: commands point at their bus event. The events recorded so far (bus
        # event, commands, audit) go to the event log in the same round trip.
        await self.uow.insert_all(
            [
                ("bus_events", self.bus_events.rows),
                ("commands", self.commands.rows),
                ("audit_events", self.audit.rows),
            ]
        )


class BusIngestWriter:
    def __init__(self) -> None:
        self._ctx: AppContext | None = None
        self._pending: list[_Publish] = []
        self._wake = asyncio.Event()
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
        self._wake.set()
        return await future

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
                await self._process(batch)

    async def _process(self, batch: list[_Publish]) -> None:
        assert self._ctx is not None
        ctx = self._ctx
        self.batches += 1
        self.events += len(batch)
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
        for item, outcome in zip(batch, outcomes, strict=True):
            if item.future.done():
                continue
            if isinstance(outcome, BaseException):
                item.future.set_exception(outcome)
            else:
                item.future.set_result(outcome)


async def _ingest_batch(ctx: AppContext, batch: list[_Publish]) -> list[Row | DomainError]:
    now = ctx.clock()
    since = now - timedelta(hours=ctx.settings.capsule_bus_idempotency_hours)
    taken: list[tuple[str, float]] = []
    outcomes: list[Row | DomainError] = []
    try:
        async with ctx.writer() as uow:
            unit = _BatchUnit(uow)
            await unit.read_ahead(batch)
            pairs = sorted({(p.agent_id, p.key) for p in batch if p.key})
            known: dict[tuple[str, str], Row] = await uow.bus_events.by_idempotency_keys(pairs)
            accepted: dict[tuple[str, str], Row] = {}
            for item in batch:
                mark = unit.mark()
                slot: list[tuple[str, float]] = []
                try:
                    outcome = await _one(unit, ctx, item, now, since, known, accepted, slot)
                except DomainError as exc:
                    unit.rollback_to(mark)
                    for agent_id, stamp in slot:
                        ctx.bus_windows.release(agent_id, stamp)
                    outcomes.append(exc)
                    continue
                taken.extend(slot)
                outcomes.append(outcome)
            await unit.flush()
    except BaseException:
        for agent_id, stamp in taken:
            ctx.bus_windows.release(agent_id, stamp)
        raise
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
                return bus.replay_of(found)
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
