"""Cross-node wake-ups over PostgreSQL LISTEN/NOTIFY (store/pg_wake.py)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path

import pytest
from opstage.store.pg_wake import CHANNEL, MAX_PAYLOAD_BYTES, PgWakeListener, payloads

from ..conftest import ENGINE


def test_keys_go_once_each_in_order_and_no_payload_is_too_long() -> None:
    keys = [f"command:cmd_{i:026d}" for i in range(600)]
    sent = payloads(keys + keys[:10])  # a unit that touched a command twice sends it once
    assert len(sent) > 1
    assert all(len(p.encode()) <= MAX_PAYLOAD_BYTES for p in sent)
    assert [k for p in sent for k in p.split()] == keys
    assert payloads([]) == []


def test_a_node_marks_its_payloads_and_its_listener_passes_over_its_own() -> None:
    keys = [f"command:cmd_{i:026d}" for i in range(600)]
    sent = payloads(keys, "@node-a")
    assert len(sent) > 1 and all(p.startswith("@node-a ") for p in sent)
    assert all(len(p.encode()) <= MAX_PAYLOAD_BYTES for p in sent)
    assert [k for p in sent for k in p.split()[1:]] == keys
    assert payloads([], "@node-a") == []

    heard: list[list[str]] = []
    listener = PgWakeListener("unused", heard.append, lambda: None, origin="@node-a")
    listener._deliver(None, 1, CHANNEL, "@node-a agent:agt_own")  # woken by its own bus
    listener._deliver(None, 1, CHANNEL, "@node-b agent:agt_other command:cmd_1")
    listener._deliver(None, 1, CHANNEL, "agent:agt_unmarked")
    assert heard == [["agent:agt_other", "command:cmd_1"], ["agent:agt_unmarked"]]
    assert listener.status()["received"] == 2


@pytest.mark.skipif(ENGINE != "postgres", reason="needs PostgreSQL: runs in the PostgreSQL pass")
async def test_the_listener_hears_commits_and_reports_a_gap_after_losing_its_connection(
    tmp_path: Path, database_factory: Callable[[Path], str | None]
) -> None:
    import asyncpg

    url = database_factory(tmp_path)
    assert url is not None
    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    heard: list[list[str]] = []
    gaps: list[int] = []
    listener = PgWakeListener(dsn, heard.append, lambda: gaps.append(1))
    task = asyncio.create_task(listener.run())
    sender = await asyncpg.connect(dsn)
    try:
        await asyncio.wait_for(listener.connected.wait(), 10)
        assert gaps == [1]  # on connect: whatever was sent before is unknown
        async with sender.transaction():
            await sender.execute("SELECT pg_notify($1, $2)", CHANNEL, "agent:agt_1 command:cmd_2")
            await asyncio.sleep(0.2)
            assert heard == []  # not before the commit
        await _until(lambda: heard == [["agent:agt_1", "command:cmd_2"]])
        with contextlib.suppress(RuntimeError):
            async with sender.transaction():
                await sender.execute("SELECT pg_notify($1, 'agent:agt_rolled_back')", CHANNEL)
                raise RuntimeError("rolled back: nothing is delivered")
        # The listener's connection is killed: it reconnects and reports the gap.
        await sender.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND query LIKE 'LISTEN%' "
            "AND pid <> pg_backend_pid()"
        )
        await _until(lambda: len(gaps) == 2)
        await asyncio.wait_for(listener.connected.wait(), 10)
        await sender.execute("SELECT pg_notify($1, 'agent:agt_3')", CHANNEL)
        await _until(lambda: heard[-1:] == [["agent:agt_3"]])
        assert ["agent:agt_rolled_back"] not in heard
    finally:
        await sender.close()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, "condition not reached"
        await asyncio.sleep(0.02)
