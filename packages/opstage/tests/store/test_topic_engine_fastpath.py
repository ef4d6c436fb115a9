"""The embedded topic engine's publish batch and partition read go to SQLite's driver directly
(ADR 0018): no statement of theirs passes through SQLAlchemy's cursor execution, whose thread
round trips per step made the engine the publish path's bottleneck. Their results are the
contract suite's business; this pins the path they take."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opstage.domain.timeutil import utcnow
from opstage.domain.topics import OutgoingMessage, Topic
from opstage.store.engine import create_engines
from opstage.store.migrate import upgrade_async
from opstage.store.topic_engine import EmbeddedTopicEngine
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

pytestmark = pytest.mark.skipif(
    os.environ.get("OPSTAGE_TEST_ENGINE") == "postgres",
    reason="on PostgreSQL the driver-level statements run through exec_driver_sql, which "
    "fires the same event: there is nothing to tell apart",
)


@pytest.fixture
def statements() -> Iterator[Any]:
    """Counts the statements executed through SQLAlchemy on the engines it is given."""
    seen: list[str] = []
    hooked: list[Any] = []

    def on(engine: AsyncEngine) -> list[str]:
        def count(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
            seen.append(sql)

        event.listen(engine.sync_engine, "before_cursor_execute", count)
        hooked.append((engine.sync_engine, count))
        return seen

    yield on
    for target, fn in hooked:
        event.remove(target, "before_cursor_execute", fn)


async def test_a_publish_batch_and_a_read_bypass_core(tmp_path: Path, statements: Any) -> None:
    url = f"sqlite:///{tmp_path / 'engine.db'}"
    await upgrade_async(url)
    engines = create_engines(url)
    engine = EmbeddedTopicEngine(engines)
    topic = Topic("top_fp", "ns", "default", "fp", 3, 1, None, None, {}, utcnow())
    try:
        await engine.create_topic(topic)
        seen = statements(engines.writer)
        statements(engines.reader)
        receipts = await asyncio.gather(
            *(
                engine.publish(
                    topic.wire,
                    i % 3,
                    OutgoingMessage({"n": i}, f"k{i}", {}, "twin" if i in (4, 7) else None),
                )
                for i in range(24)
            )
        )
        delivered = await engine.read(topic.wire, 0, 0, 100)
        together = await engine.read_many(topic.wire, {0: 0, 1: 2, 2: 0}, 100)
        assert seen == []
        assert together[0] == delivered
        assert [m.offset for m in together[1]] == list(range(2, 7))  # 8 sent, a twin replayed
        assert len(together[2]) == 8
        # Dense offsets per partition; the idempotency twin replays the first one's receipt.
        assert receipts[7].replayed and (receipts[7].partition, receipts[7].offset) == (
            receipts[4].partition,
            receipts[4].offset,
        )
        assert [m.offset for m in delivered] == list(range(len(delivered)))
        assert [m.payload for m in delivered] == [{"n": i} for i in range(0, 24, 3)]
    finally:
        await engine.close()
        await engines.dispose()
