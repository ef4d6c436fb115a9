"""A PostgreSQL unit's tail in one statement (store/fastpath/pg_tail.py): what it stores is
what SQLAlchemy Core stores, it holds the event log's lock, and its wake-ups leave at commit."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from opstage.domain.errors import DuplicateRow
from opstage.domain.events import AuditRecorded
from opstage.store.engine import create_engines
from opstage.store.event_log import APPEND_LOCK_KEY
from opstage.store.fastpath.pg_tail import tail_work
from opstage.store.pg_wake import CHANNEL
from opstage.store.tables import audit_events
from opstage.store.uow import SqlUnitOfWork
from sqlalchemy import select, text

from ..conftest import ENGINE
from .test_driver import INSTANTS, METADATA, _audit, _migrated

needs_postgres = pytest.mark.skipif(
    ENGINE != "postgres", reason="needs PostgreSQL: runs in the PostgreSQL pass"
)


def test_an_empty_tail_is_nothing_and_wake_ups_alone_are_a_tail() -> None:
    assert tail_work([], None, 1, CHANNEL, []) is None
    assert tail_work([], None, 1, CHANNEL, ["agent:agt_1"]) is not None


def _unit(engines: Any, keys: list[str]) -> SqlUnitOfWork:
    return SqlUnitOfWork(engines, None, write=True, wake_keys=lambda _events: keys)


@pytest.fixture
def url(tmp_path: Path, database_factory: Callable[[Path], str | None]) -> str:
    """A migrated database of the test's own (these tests only run in the PostgreSQL pass)."""
    found = database_factory(tmp_path)
    assert found is not None
    _migrated(found)
    return found


@needs_postgres
def test_a_tail_stores_what_core_stores_logs_and_wakes_at_commit(url: str) -> None:
    import asyncpg

    async def go() -> None:
        engines = create_engines(url)
        listener = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
        heard: list[str] = []
        await listener.add_listener(CHANNEL, lambda *args: heard.append(args[-1]))
        try:
            pairs = enumerate(zip(INSTANTS, METADATA, strict=True))
            core = [_audit(i, t, m) for i, (t, m) in pairs]
            twins = [{**r, "id": r["id"].replace("aud_", "aux_")} for r in core]
            async with engines.writer.begin() as conn:
                await conn.execute(audit_events.insert(), core)
            event = AuditRecorded("aux_1", "bus.event.received", "SUCCESS", "BusEvent", "bev_x")
            async with _unit(engines, ["agent:agt_tail"]) as uow:
                await uow.insert_all([("audit_events", twins)])
                uow.record(event)
                await asyncio.sleep(0.2)
                assert heard == []  # nothing is sent before the commit
            async with engines.reader.connect() as conn:
                cols = "id, created_at, metadata::text, actor_id, message"
                raw = (await conn.execute(text(f"SELECT {cols} FROM audit_events"))).all()
                typed = (await conn.execute(select(audit_events))).mappings().all()
                logged = (
                    await conn.execute(text("SELECT kind, data::text FROM domain_event_log"))
                ).all()
            by_id = {r[0]: r[1:] for r in raw}
            as_read = {r["id"]: r for r in typed}
            for row in core:
                twin = row["id"].replace("aud_", "aux_")
                assert by_id[twin] == by_id[row["id"]], f"stored differently: {row['id']}"
                assert as_read[twin]["metadata"] == row["metadata"]
                assert as_read[twin]["created_at"] == row["created_at"]
            assert [k for k, _ in logged] == [event.kind]
            assert '"audit_id": "aux_1"' in logged[0][1].replace('":"', '": "')
            for _ in range(100):
                if heard:
                    break
                await asyncio.sleep(0.02)
            assert heard == ["agent:agt_tail"]
        finally:
            await listener.close()
            await engines.dispose()

    asyncio.run(go())


@needs_postgres
def test_a_tail_holds_the_log_lock_and_a_conflict_is_a_duplicate_row(url: str) -> None:
    async def go() -> None:
        engines = create_engines(url)
        try:
            first_done = asyncio.Event()
            second_done = asyncio.Event()

            async def first() -> None:
                async with _unit(engines, []) as uow:
                    await uow.insert_all([("audit_events", [_audit(1, INSTANTS[0], {})])])
                    uow.record(AuditRecorded("aud_1", "a", "SUCCESS", None, None))
                first_done.set()

            async def second() -> None:
                async with _unit(engines, []) as uow:
                    uow.record(AuditRecorded("aud_2", "b", "SUCCESS", None, None))
                second_done.set()

            # A third transaction holds the log's lock: both tails must wait for it.
            async with engines.writer.connect() as blocker:
                tx = await blocker.begin()
                await blocker.execute(
                    text("SELECT pg_advisory_xact_lock(:k)"), {"k": APPEND_LOCK_KEY}
                )
                tasks = [asyncio.create_task(first()), asyncio.create_task(second())]
                await asyncio.sleep(0.5)
                assert not first_done.is_set() and not second_done.is_set()
                await tx.commit()
            await asyncio.wait_for(asyncio.gather(*tasks), 10)

            with pytest.raises(DuplicateRow):
                async with _unit(engines, []) as uow:
                    await uow.insert_all([("audit_events", [_audit(1, INSTANTS[1], {})])])
        finally:
            await engines.dispose()

    asyncio.run(go())
