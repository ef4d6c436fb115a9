"""Group commit of bus publishes: what HTTP tests cannot force (a batch the database rejects),
and the driver-level statements it runs on, read back against SQLAlchemy's own."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from opstage.app import bus_batch
from opstage.app.agents import AgentRegistration, register_agent
from opstage.app.bus_routes import create_route
from opstage.app.context import Actor
from opstage.app.heartbeats import Contact
from opstage.app.services import report_services
from opstage.app.tokens import create_token
from opstage.runtime import Runtime
from opstage.store.bus_session import BusWriterSession
from opstage.store.checkpoint import WRITER_AUTOCHECKPOINT_PAGES
from opstage.store.fastpath.query import Query
from opstage.store.tables import metadata
from opstage_testing.clients import route_spec
from opstage_testing.clients import service_report as service
from sqlalchemy import select

from ..support.settings import migrated_settings


async def _runtime(
    tmp_path: Path,
    database_factory: Callable[[Path], str | None] | None,
    name: str,
    **settings: Any,
) -> Runtime:
    """A started runtime on the engine under test (or SQLite without a factory)."""
    url = (database_factory and database_factory(tmp_path)) or f"sqlite:///{tmp_path / name}"
    config = await migrated_settings(tmp_path, url, capsule_bus_enabled=True, **settings)
    return await Runtime.start(config)


async def _agent(runtime: Runtime, code: str) -> str:
    """A registered agent (through the use cases, as an agent would), by its id."""
    system = Actor.system()
    _, raw = await create_token(
        runtime.ctx, system, name=code, expires_in_seconds=None, agent_code=None
    )
    body = AgentRegistration(registration_token=raw, code=code)
    return (await register_agent(runtime.ctx, system, body)).agent_id


async def test_a_batch_the_database_rejects_is_replayed_event_by_event(
    tmp_path: Path,
    database_factory: Callable[[Path], str | None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runtime = await _runtime(tmp_path, database_factory, "bus.db")
    try:
        ctx = runtime.ctx
        agent_id = await _publisher(runtime)

        failed: list[int] = []
        real = bus_batch._ingest_batch

        async def once_broken(c: Any, batch: list[Any]) -> Any:
            if not failed:
                failed.append(len(batch))
                raise RuntimeError("the database refused the batch")
            return await real(c, batch)

        monkeypatch.setattr(bus_batch, "_ingest_batch", once_broken)
        writer = ctx.bus_ingest
        assert writer is not None
        writer.strategy = bus_batch.UnitBatches()  # one unit of work per batch, as on PostgreSQL

        def publish(i: int, key: str | None) -> Any:
            body = {"eventType": "t", "sourceServiceCode": "pub-svc", "payload": {"i": i}}
            return writer.submit(Actor("AGENT", agent_id), agent_id, body, key)

        first = await asyncio.gather(*(publish(i, f"k{i}") for i in range(5)))
        assert failed and writer.fallbacks == 1
        assert len({r["eventId"] for r in first}) == 5  # each stored once, by the fallback
        # Retries of the same keys now go through a healthy batch and are replays.
        again = await asyncio.gather(*(publish(i, f"k{i}") for i in range(5)))
        assert [r["eventId"] for r in again] == [r["eventId"] for r in first]
        assert all(r.get("replay") for r in again)
        # A refusal inside a healthy batch is that event's alone.
        mixed = await asyncio.gather(
            publish(10, None),
            writer.submit(
                Actor("AGENT", agent_id),
                agent_id,
                {"eventType": "t", "sourceServiceCode": "nobody"},
                None,
            ),
            publish(11, None),
            return_exceptions=True,
        )
        assert isinstance(mixed[0], dict) and isinstance(mixed[2], dict)
        assert getattr(mixed[1], "code", None) == "BUS_SOURCE_SERVICE_NOT_FOUND"
        async with ctx.reader() as uow:
            _, total = await uow.bus_events.list(page=1, page_size=50)
        assert total == 7
    finally:
        await runtime.stop()


@pytest.mark.sqlite_only
async def test_a_session_batch_the_database_rejects_goes_to_a_unit_of_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = await _runtime(tmp_path, None, "session-fail.db")
    try:
        ctx = runtime.ctx
        agent_id = await _publisher(runtime)
        real = BusWriterSession.commit_later
        refused: list[int] = []

        def once_refused(self: BusWriterSession, rows: Any, events: Any, version: int) -> Any:
            if refused:
                return real(self, rows, events, version)
            refused.append(len(events))
            future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
            future.set_exception(sqlite3.OperationalError("disk I/O error"))
            return future

        monkeypatch.setattr(BusWriterSession, "commit_later", once_refused)
        writer = ctx.bus_ingest
        assert writer is not None
        body = {"eventType": "t", "sourceServiceCode": "pub-svc"}
        answers = await asyncio.gather(
            *(writer.submit(Actor("AGENT", agent_id), agent_id, dict(body), None) for _ in "ab")
        )
        assert refused, "the session never committed"
        assert len({a["eventId"] for a in answers}) == 2
        assert await _count(ctx, "bus_events") == 2  # once each, by the unit of work after
        assert await _count(ctx, "audit_events", "action = 'bus.event.received'") == 2
        assert len(ctx.bus_windows._times[agent_id]) == 2  # the refused batch gave its slots back
    finally:
        await runtime.stop()


@pytest.mark.sqlite_only
async def test_a_batch_prepared_before_another_process_wrote_is_prepared_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A session prepares batches from reads it keeps; a commit by another connection in
    between (here: the route disabled by another process) makes them stale, not wrong."""
    runtime = await _runtime(tmp_path, None, "stale.db")
    try:
        ctx = runtime.ctx
        system = Actor.system()
        ids = {code: await _agent(runtime, code) for code in ("src", "dst")}
        await report_services(ctx, Actor("AGENT", ids["src"]), ids["src"], [service("src-svc")])
        target = service("dst-svc", {"name": "ship", "label": "Ship"})
        await report_services(ctx, Actor("AGENT", ids["dst"]), ids["dst"], [target])
        await ctx.heartbeats.submit(Contact(ids["dst"], ctx.clock(), None, None))  # ONLINE
        route = await create_route(
            ctx,
            system,
            route_spec(
                {
                    "name": "r",
                    "status": "ENABLED",
                    "match": {"eventType": "t", "sourceServiceCode": "src-svc"},
                    "target": {"serviceCode": "dst-svc", "actionName": "ship"},
                }
            ),
        )
        db = tmp_path / "stale.db"
        real = BusWriterSession.commit_later
        prepared: list[int] = []

        def other_process_writes_first(
            self: BusWriterSession, rows: Any, events: Any, version: int
        ) -> Any:
            if not prepared:  # between this batch's reads and its commit
                other = sqlite3.connect(db, isolation_level=None)
                other.execute(
                    "UPDATE bus_routes SET status = 'DISABLED' WHERE id = ?", (route["id"],)
                )
                other.close()
            prepared.append(version)
            return real(self, rows, events, version)

        monkeypatch.setattr(BusWriterSession, "commit_later", other_process_writes_first)
        writer = ctx.bus_ingest
        assert writer is not None
        body = {"eventType": "t", "sourceServiceCode": "src-svc"}
        answer = await writer.submit(Actor("AGENT", ids["src"]), ids["src"], body, None)
        assert len(prepared) == 2 and prepared[0] != prepared[1]  # prepared again, fresh reads
        assert (writer.batches, writer.events) == (1, 1)  # counted once, when it committed
        assert answer["routedCommands"] == []  # the route was off before this event committed
        assert await _count(ctx, "commands") == 0
        assert await _count(ctx, "bus_events") == 1
    finally:
        await runtime.stop()


@pytest.mark.sqlite_only
async def test_a_session_keeps_the_writer_until_another_writer_waits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under steady ingest one session runs on (ending one drains the pipeline); a unit of
    work that asks for the writer meanwhile gets it within about SESSION_SECONDS."""
    monkeypatch.setattr(bus_batch, "SESSION_SECONDS", 0.02)
    runtime = await _runtime(
        tmp_path, None, "session-run.db", capsule_bus_ingest_per_min=10_000_000
    )
    try:
        ctx = runtime.ctx
        agent_id = await _publisher(runtime)
        writer = ctx.bus_ingest
        assert writer is not None and isinstance(writer.strategy, bus_batch.PipelinedBatches)
        factory = writer.strategy.sessions
        sessions: list[float] = []

        def counted() -> Any:
            sessions.append(asyncio.get_running_loop().time())
            return factory()

        writer.strategy = bus_batch.PipelinedBatches(counted)
        loop = asyncio.get_running_loop()
        stop = loop.time() + 1.2
        body = {"eventType": "t", "sourceServiceCode": "pub-svc"}

        async def publisher() -> None:
            while loop.time() < stop:
                await writer.submit(Actor("AGENT", agent_id), agent_id, dict(body), None)

        publishers = [asyncio.ensure_future(publisher()) for _ in range(8)]
        await asyncio.sleep(0.6)
        quiet = len(sessions)
        asked = loop.time()
        async with ctx.writer() as uow:  # any other writer: a heartbeat, an admin change
            waited = loop.time() - asked
            await uow.conn.exec_driver_sql("SELECT 1")
        await asyncio.gather(*publishers)
        # 0.6 s of steady ingest would be some 30 sessions if each ended after 20 ms.
        assert quiet <= 5, f"{quiet} sessions in 0.6 s without another writer"
        assert waited < 0.3, f"another writer waited {waited:.3f} s for the session"
        assert len(sessions) > quiet  # the session ended for it, and ingest went on after
    finally:
        await runtime.stop()


async def _publisher(runtime: Runtime) -> str:
    """An agent that owns the service ``pub-svc``, by its id."""
    agent_id = await _agent(runtime, "pub")
    actor = Actor("AGENT", agent_id)
    await report_services(runtime.ctx, actor, agent_id, [service("pub-svc")])
    return agent_id


async def _count(ctx: Any, table: str, where: str = "1 = 1") -> int:
    async with ctx.reader() as uow:
        found = await uow.conn.exec_driver_sql(f"SELECT count(*) FROM {table} WHERE {where}")
        return int(found.scalar())


def _typed(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: (type(v), v, getattr(v, "tzinfo", None)) for k, v in r.items()} for r in rows]


async def test_driver_reads_equal_core_reads_on_every_table(
    tmp_path: Path, database_factory: Callable[[Path], str | None]
) -> None:
    """store/fastpath's decoders against SQLAlchemy's, on rows the real use cases wrote."""
    runtime = await _runtime(tmp_path, database_factory, "reads.db")
    try:
        ctx = runtime.ctx
        system = Actor.system()
        ids = {code: await _agent(runtime, code) for code in ("src", "dst")}
        await report_services(ctx, Actor("AGENT", ids["src"]), ids["src"], [service("src-svc")])
        target = service("dst-svc", {"name": "ship", "label": "Ship", "inputSchema": {}})
        await report_services(ctx, Actor("AGENT", ids["dst"]), ids["dst"], [target])
        await ctx.heartbeats.submit(Contact(ids["dst"], ctx.clock(), None, None))  # ONLINE
        route = {
            "name": "r",
            "status": "ENABLED",
            "match": {"eventType": "t", "sourceServiceCode": "src-svc"},
            "target": {"serviceCode": "dst-svc", "actionName": "ship"},
            "filters": [{"path": "/payload/n", "op": "exists"}],
        }
        await create_route(ctx, system, route_spec(route))
        writer = ctx.bus_ingest
        assert writer is not None
        body = {"eventType": "t", "sourceServiceCode": "src-svc", "payload": {"n": 1.5}}
        answer = await writer.submit(Actor("AGENT", ids["src"]), ids["src"], body, "key-1")
        assert answer["routedCommands"][0]["status"] == "CREATED", answer
        async with ctx.reader() as uow:
            for table in metadata.sorted_tables:
                stmt = select(table).order_by(*table.primary_key.columns)
                core = [dict(r) for r in (await uow.conn.execute(stmt)).mappings().all()]
                driver = await Query(stmt).rows(uow.conn)
                assert _typed(driver) == _typed(core), table.name  # 1 == True: compare types too
                assert core or table.name not in {"bus_events", "commands", "audit_events"}
    finally:
        await runtime.stop()


@pytest.mark.sqlite_only
async def test_wal_is_checkpointed_in_the_background(tmp_path: Path) -> None:
    """The writer only checkpoints as a safety net; the runtime's task copies the WAL."""
    runtime = await _runtime(tmp_path, None, "wal.db")
    try:
        ctx = runtime.ctx
        checkpointer = runtime.checkpointer
        assert checkpointer is not None
        async with ctx.writer() as uow:
            level = (await uow.conn.exec_driver_sql("PRAGMA wal_autocheckpoint")).scalar()
        assert level == WRITER_AUTOCHECKPOINT_PAGES
        system = Actor.system()
        for i in range(30):  # thirty write units: well under the writer's own threshold
            await create_token(ctx, system, name=f"t{i}", expires_in_seconds=None, agent_code=None)
        deadline = asyncio.get_running_loop().time() + 10
        while checkpointer.copied_pages == 0:
            assert asyncio.get_running_loop().time() < deadline, "no background checkpoint"
            await asyncio.sleep(0.05)
        assert checkpointer.runs >= 1
    finally:
        await runtime.stop()
    assert runtime.checkpointer is not None and runtime.checkpointer._conn is None  # closed
