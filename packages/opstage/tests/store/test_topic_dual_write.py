"""Topic CRUD is a dual write (state row, then engine). Each rule is tested with a real engine
that fails: a subclass of the embedded engine whose create or delete raises, wired into a real
runtime on the engine under test (SQLite, or PostgreSQL in that pass)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from opstage.app import topics
from opstage.app.audit import list_audit
from opstage.app.context import Actor, AppContext
from opstage.app.topic_ports import TopicEngineError
from opstage.domain.errors import Conflict, Unavailable
from opstage.domain.topics import OutgoingMessage, Topic, TopicFilter
from opstage.runtime import Runtime
from opstage.store.topic_engine import EmbeddedTopicEngine

from ..support.settings import migrated_settings

ACTOR = Actor("USER", "usr_test", role="owner")


class BrokenEngine(EmbeddedTopicEngine):
    """The embedded engine with its create or delete failing, as an unreachable broker would."""

    fail_create = False
    fail_delete = False

    async def create_topic(self, topic: Topic) -> None:
        if self.fail_create:
            raise TopicEngineError("engine down (create)")
        await super().create_topic(topic)

    async def delete_topic(self, wire: str) -> None:
        if self.fail_delete:
            raise TopicEngineError("engine down (delete)")
        await super().delete_topic(wire)


@pytest.fixture
async def runtime(
    tmp_path: Path, database_factory: Callable[[Path], str | None]
) -> AsyncIterator[Runtime]:
    url = database_factory(tmp_path) or f"sqlite:///{tmp_path / 'topics.db'}"
    rt = await Runtime.start(await migrated_settings(tmp_path, url))
    assert rt.ctx.topics is not None
    rt.ctx.topics.engine = BrokenEngine(rt.engines)
    try:
        yield rt
    finally:
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
