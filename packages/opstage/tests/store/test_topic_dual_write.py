"""Topic CRUD is a dual write (state row, then engine). Each rule is tested on each topic engine
(embedded, NATS, Kafka) with the real engine made to fail: a wrapper whose create or delete
raises, wired into a real runtime on the database under test (SQLite, or PostgreSQL)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from opstage.app import topics
from opstage.app.audit import list_audit
from opstage.app.context import Actor, AppContext
from opstage.app.topic_ports import TopicEngineError
from opstage.domain.errors import Conflict, Unavailable
from opstage.domain.topics import OutgoingMessage, Topic, TopicFilter
from opstage.pubsub.kafka import KafkaTopicEngine
from opstage.pubsub.nats import NatsTopicEngine
from opstage.runtime import Runtime
from opstage.store.topic_engine import EmbeddedTopicEngine
from opstage_testing.nats import NatsServer

from ..support.settings import migrated_settings

ACTOR = Actor("USER", "usr_test", role="owner")


class BrokenEngine:
    """An engine of the kind under test with its create or delete failing, as an unreachable
    broker would; everything else goes to the real engine."""

    fail_create = False
    fail_delete = False

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def create_topic(self, topic: Topic) -> None:
        if self.fail_create:
            raise TopicEngineError("engine down (create)")
        await self.inner.create_topic(topic)

    async def delete_topic(self, wire: str) -> None:
        if self.fail_delete:
            raise TopicEngineError("engine down (delete)")
        await self.inner.delete_topic(wire)


@pytest.fixture(scope="module")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path_factory.mktemp("nats")).start()
    yield server
    server.stop()


@pytest.fixture(params=["embedded", "nats", "kafka"])
async def runtime(
    request: pytest.FixtureRequest, tmp_path: Path, database_factory: Callable[[Path], str | None]
) -> AsyncIterator[Runtime]:
    url = database_factory(tmp_path) or f"sqlite:///{tmp_path / 'topics.db'}"
    rt = await Runtime.start(await migrated_settings(tmp_path, url))
    assert rt.ctx.topics is not None
    inner: Any
    if request.param == "nats":
        inner = NatsTopicEngine(request.getfixturevalue("nats_server").url)
    elif request.param == "kafka":
        inner = KafkaTopicEngine(request.getfixturevalue("kafka_broker").bootstrap)
    else:
        inner = EmbeddedTopicEngine(rt.engines)
    rt.ctx.topics.engine = BrokenEngine(inner)
    try:
        yield rt
    finally:
        await inner.close()
        await rt.stop()


def _engine(ctx: AppContext) -> BrokenEngine:
    assert ctx.topics is not None
    engine = ctx.topics.engine
    assert isinstance(engine, BrokenEngine)
    return engine


async def _rows(ctx: AppContext, name: str) -> list[Topic]:
    found, _ = await topics.list_topics(ctx, TopicFilter(name_prefix=name), 1, 100)
    return found


async def _actions(ctx: AppContext, topic_id: str) -> list[tuple[str, str]]:
    rows, _ = await list_audit(ctx, target_id=topic_id, page=1, page_size=100)
    return sorted((r["action"], r["result"]) for r in rows)


async def test_create_rolls_the_state_row_back_when_the_engine_fails(runtime: Runtime) -> None:
    ctx = runtime.ctx
    engine = _engine(ctx)
    engine.fail_create = True
    spec = topics.TopicSpec("ns", "default", "rollback")
    with pytest.raises(Unavailable) as failed:
        await topics.create_topic(ctx, ACTOR, spec)
    assert failed.value.code == "TOPIC_ENGINE_UNAVAILABLE"
    assert await _rows(ctx, "rollback") == []
    assert not await engine.topic_exists("ns.default.rollback")
    # The attempt is on the record: created, then rolled back.
    rows, _ = await list_audit(ctx, action_prefix="topic.", page=1, page_size=100)
    assert sorted((r["action"], r["result"]) for r in rows) == [
        ("topic.create_rolled_back", "FAILURE"),
        ("topic.created", "SUCCESS"),
    ]
    # Nothing is left that blocks the name once the engine is back.
    engine.fail_create = False
    made = await topics.create_topic(ctx, ACTOR, spec)
    assert [t.id for t in await _rows(ctx, "rollback")] == [made.id]
    assert await engine.topic_exists("ns.default.rollback")


async def test_an_engine_topic_created_outside_is_never_adopted(runtime: Runtime) -> None:
    ctx = runtime.ctx
    engine = _engine(ctx)
    outside = Topic("top_x", "ns", "default", "outside", 1, 1, None, None, {}, ctx.clock())
    await engine.create_topic(outside)
    receipt = await engine.publish(outside.wire, 0, OutgoingMessage({"theirs": True}))
    with pytest.raises(Conflict) as refused:
        await topics.create_topic(ctx, ACTOR, topics.TopicSpec("ns", "default", "outside"))
    assert refused.value.code == "TOPIC_EXISTS_IN_ENGINE"
    assert await _rows(ctx, "outside") == []
    # The engine's topic and its messages are left exactly as they were.
    assert await engine.topic_exists(outside.wire)
    (kept,) = await engine.read(outside.wire, 0, 0, 10)
    assert (kept.offset, kept.payload) == (receipt.offset, {"theirs": True})


async def test_delete_orphans_in_the_engine_rather_than_in_opstage(runtime: Runtime) -> None:
    ctx = runtime.ctx
    engine = _engine(ctx)
    made = await topics.create_topic(ctx, ACTOR, topics.TopicSpec("ns", "default", "orphan"))
    engine.fail_delete = True
    deleted, engine_deleted = await topics.delete_topic(ctx, ACTOR, made.wire)
    assert deleted.id == made.id and engine_deleted is False
    assert await _rows(ctx, "orphan") == []  # the state row went first
    assert await engine.topic_exists(made.wire)  # orphaned in the engine, for an operator
    assert await _actions(ctx, made.id) == [
        ("topic.created", "SUCCESS"),
        ("topic.deleted", "SUCCESS"),
        ("topic.engine_orphaned", "FAILURE"),
    ]
    # Re-creating the name does not adopt the orphan either.
    engine.fail_delete = False
    with pytest.raises(Conflict):
        await topics.create_topic(ctx, ACTOR, topics.TopicSpec("ns", "default", "orphan"))
    await engine.delete_topic(made.wire)  # the operator's cleanup
    await topics.create_topic(ctx, ACTOR, topics.TopicSpec("ns", "default", "orphan"))


async def test_delete_of_a_healthy_topic_removes_both(runtime: Runtime) -> None:
    ctx = runtime.ctx
    made = await topics.create_topic(ctx, ACTOR, topics.TopicSpec("ns", "default", "both"))
    _, engine_deleted = await topics.delete_topic(ctx, ACTOR, made.wire)
    assert engine_deleted is True
    assert not await _engine(ctx).topic_exists(made.wire)
