"""Capsule Bus ingest and routing: an agent's event becomes operator-governed commands.

The rules are ``app/bus_admission.py``'s, written once (ADR 0009). This module is the plain
strategy: a batch (often of one) read and written in one unit of work, so one transaction
holds the event, every command it creates and every audit row, and a crash never leaves a
partial fan-out. The group-commit writer (``app/bus_batch.py``) uses it for any batch a
pipelined session cannot take, and as its fallback.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from opstage.app.bus_admission import (
    Admission,
    BusLimits,
    Publish,
    ReadSet,
    Wants,
    Writes,
    admit,
    outcome_event,
    release,
    route_event,
)
from opstage.app.bus_window import IngestWindows
from opstage.app.context import Actor, UnitContext
from opstage.app.outcomes import CommandOutcome, OutcomeSubscriber
from opstage.app.ports import UnitOfWork
from opstage.domain.errors import DomainError, DuplicateRow

Row = dict[str, Any]


class BusContext(UnitContext, Protocol):
    """What ingest uses of the application context (``AppContext`` is one)."""

    bus_windows: IngestWindows


def bus_disabled() -> DomainError:
    return DomainError(
        "Capsule Bus is disabled; set OPSTAGE_CAPSULE_BUS_ENABLED=true to enable it.",
        code="CAPSULE_BUS_DISABLED",
    )


async def seed_window(ctx: BusContext, agent_id: str) -> None:
    """The first publish after a start loads the agent's last minute from the database."""
    windows = ctx.bus_windows
    if not windows.seeded(agent_id):
        since = ctx.clock() - timedelta(seconds=60)
        async with ctx.reader() as uow:
            recent = await uow.bus_events.recent_accepts(
                agent_id, since, ctx.settings.capsule_bus_ingest_per_min
            )
        windows.seed(agent_id, [t.timestamp() for t in recent])


async def read_set(uow: UnitOfWork, wants: Wants) -> ReadSet:
    """The batch's read set through a unit of work: two round trips."""
    references = await uow.bus_routes.references(
        wants.source_codes, wants.event_types, wants.cause_ids
    )
    keys = await uow.bus_events.by_idempotency_keys(wants.key_pairs)
    return ReadSet.of(references, keys)


async def flush(uow: UnitOfWork, writes: Writes, since: datetime) -> None:
    """Admission's writes into ``uow``: inserts with the commit, in one round trip."""
    for agent_id, key in writes.expired_keys:
        await uow.bus_events.release_idempotency_key(agent_id, key, since)
    await uow.insert_all(writes.rows_by_table())
    for event in writes.events:
        uow.record(event)


async def admit_in_unit(ctx: BusContext, batch: Sequence[Publish]) -> Admission:
    """A batch read, admitted and written in one write unit of work (committed on return)."""
    now = ctx.clock()
    limits = BusLimits.of(ctx.settings)
    admission: Admission | None = None
    try:
        async with ctx.writer() as uow:
            reads = await read_set(uow, Wants.of(batch))
            admission = admit(batch, reads, limits, ctx.bus_windows, now)
            await flush(uow, admission.writes, now - timedelta(hours=limits.idempotency_hours))
    except BaseException:
        if admission is not None:
            release(ctx.bus_windows, admission.slots)
        raise
    return admission


async def ingest_event(
    ctx: BusContext, actor: Actor, agent_id: str, body: Row, idempotency_key: str | None
) -> Row:
    """One event in its own transaction: a batch of one (the group-commit writer's fallback)."""
    await seed_window(ctx, agent_id)
    publish = Publish(actor, agent_id, body, idempotency_key)
    try:
        admission = await admit_in_unit(ctx, [publish])
    except DuplicateRow:
        if not idempotency_key:
            raise
        # A concurrent retry with the same key committed first: the rules again see it.
        admission = await admit_in_unit(ctx, [publish])
    outcome = admission.outcomes[0]
    if isinstance(outcome, DomainError):
        raise outcome
    return outcome


def outcome_subscriber(ctx: BusContext) -> OutcomeSubscriber:
    """Stores a bus-created command's outcome as a bus event (``capsule_bus_outcome_events``)."""

    async def on_outcome(uow: UnitOfWork, outcome: CommandOutcome) -> None:
        if outcome.command.get("bus_event_id") and ctx.settings.capsule_bus_outcome_events:
            await record_outcome(uow, ctx, outcome)

    return on_outcome


async def record_outcome(uow: UnitOfWork, ctx: BusContext, outcome: CommandOutcome) -> None:
    """The outcome as a bus event caused by the original event, in the result's transaction.

    Routes may react to it; the depth guard ends any loop.
    """
    command = outcome.command
    cause = await uow.bus_events.get(command["bus_event_id"])
    service = await uow.services.get(command["service_id"])
    if cause is None or service is None:
        return
    if int(cause["depth"]) + 1 > ctx.settings.capsule_bus_max_depth:
        return
    event = outcome_event(command, cause, service, outcome.status, outcome.error_code, outcome.at)
    references = await uow.bus_routes.references([], [event["event_type"]], [])
    writes = Writes()
    limits = BusLimits.of(ctx.settings)
    route_event(writes, ReadSet.of(references, {}), limits, Actor.system(), event)
    await flush(uow, writes, outcome.at)
