"""One set of admission rules for every ingest path (ADR 0009).

The single-event path (``bus.ingest_event``: the writer's fallback) and the group-committed
batch (``BusIngestWriter``: a pipelined session on SQLite, a unit of work per batch on
PostgreSQL) must give an event the same answer, whatever happened between its tries.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from opstage.app import bus
from opstage.app.agents import AgentRegistration, register_agent
from opstage.app.bus_batch import BusIngestWriter, UnitBatches
from opstage.app.context import Actor
from opstage.app.services import report_services, transfer_service
from opstage.app.tokens import create_token
from opstage.domain.errors import DomainError
from opstage.runtime import Runtime
from opstage_testing.clients import service_report as service

from ..support.settings import migrated_settings


async def _runtime(tmp_path: Path, database_factory: Callable[[Path], str | None]) -> Runtime:
    url = database_factory(tmp_path) or f"sqlite:///{tmp_path / 'admission.db'}"
    config = await migrated_settings(tmp_path, url, capsule_bus_enabled=True)
    return await Runtime.start(config)


async def _agent(runtime: Runtime, code: str) -> str:
    system = Actor.system()
    _, raw = await create_token(
        runtime.ctx, system, name=code, expires_in_seconds=None, agent_code=None
    )
    body = AgentRegistration(registration_token=raw, code=code)
    agent_id = (await register_agent(runtime.ctx, system, body)).agent_id
    return agent_id


async def _answer(call: Any) -> Any:
    try:
        return await call
    except DomainError as exc:
        return exc.code


async def test_a_retry_after_its_source_moved_gets_one_answer_on_every_path(
    tmp_path: Path, database_factory: Callable[[Path], str | None]
) -> None:
    """Ownership of the source is checked before the replay (the reference's order: source,
    then everything else), on the single path and on the batch alike."""
    runtime = await _runtime(tmp_path, database_factory)
    running: asyncio.Future[None] | None = None
    try:
        ctx = runtime.ctx
        writer = ctx.bus_ingest
        assert writer is not None
        publisher, other = await _agent(runtime, "pub"), await _agent(runtime, "other")
        actor = Actor("AGENT", publisher)
        reported = await report_services(ctx, actor, publisher, [service("pub-svc")])
        service_id = reported[0]["id"]
        body = {"eventType": "t", "sourceServiceCode": "pub-svc"}

        # The engine's own batch strategy (a pipelined session on SQLite) and, beside it, a
        # writer that takes a unit of work per batch on every engine.
        units = BusIngestWriter(ctx, UnitBatches())
        running = asyncio.ensure_future(units.run())

        paths: dict[str, Callable[[str], Any]] = {
            "single": lambda key: bus.ingest_event(ctx, actor, publisher, dict(body), key),
            "batch": lambda key: writer.submit(actor, publisher, dict(body), key),
            "unit batch": lambda key: units.submit(actor, publisher, dict(body), key),
        }
        first = {name: await call(f"key-{name}") for name, call in paths.items()}
        assert all("eventId" in answer for answer in first.values()), first

        await transfer_service(ctx, Actor.system(), service_id, other)
        retried = {name: await _answer(call(f"key-{name}")) for name, call in paths.items()}
        assert retried == dict.fromkeys(paths, "BUS_SOURCE_SERVICE_FORBIDDEN")
    finally:
        if running is not None:
            running.cancel()
        await runtime.stop()
