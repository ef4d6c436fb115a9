"""The topic bus's governance and upkeep, through the use cases on a real runtime (SQLite, or
PostgreSQL in that pass): retention pruning by the maintenance sweep with the context's
clock, the per-agent publish quota, per-publish audit on flagged topics, and the domain events
of durable subscriptions."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path

import pytest
from opstage.app import topic_subscriptions as subs
from opstage.app import topics
from opstage.app.agents import register_agent
from opstage.app.audit import list_audit
from opstage.app.context import Actor, AppContext
from opstage.app.maintenance import run_maintenance
from opstage.app.tokens import create_token
from opstage.app.topic_quota import PublishQuota
from opstage.domain.errors import DomainError
from opstage.domain.events import SubscriptionChanged
from opstage.domain.topics import Delivered, Gap
from opstage.runtime import Runtime

from ..support.settings import migrated_settings

ACTOR = Actor("USER", "usr_test", role="owner")


@pytest.fixture
async def runtime(
    tmp_path: Path, database_factory: Callable[[Path], str | None]
) -> AsyncIterator[Runtime]:
    url = database_factory(tmp_path) or f"sqlite:///{tmp_path / 'gov.db'}"
    rt = await Runtime.start(await migrated_settings(tmp_path, url))
    try:
        yield rt
    finally:
        await rt.stop()


async def _agent(ctx: AppContext) -> str:
    _, raw = await create_token(
        ctx, Actor.system(), name="t", expires_in_seconds=None, agent_code=None
    )
    registered = await register_agent(
        ctx,
        Actor.system(),
        {"registrationToken": raw, "agent": {"code": "gov-" + secrets.token_hex(4)}},
    )
    agent_id: str = registered["agentId"]
    return agent_id


async def _publish(ctx: AppContext, agent: str, wire: str, payload: object) -> None:
    await topics.publish(ctx, agent, wire, payload, key=None, headers={}, idempotency_key=None)


async def test_the_sweep_prunes_past_retention_and_a_late_resume_gets_a_gap(
    runtime: Runtime,
) -> None:
    ctx = runtime.ctx
    agent = await _agent(ctx)
    kept = await topics.create_topic(ctx, ACTOR, topics.TopicSpec("g", "default", "forever", 1))
    short = await topics.create_topic(
        ctx, ACTOR, topics.TopicSpec("g", "default", "short", 1, retention_ms=60_000)
    )
    for i in range(3):
        await _publish(ctx, agent, short.wire, i)
        await _publish(ctx, agent, kept.wire, i)
    await run_maintenance(ctx)  # nothing is a minute old yet
    assert ctx.topics is not None
    engine = ctx.topics.engine
    assert (await engine.offsets(short.wire))[0].first == 0
    real = ctx.clock
    ctx.clock = lambda: real() + timedelta(minutes=2)  # the injectable clock moves, not us
    try:
        await run_maintenance(ctx)
    finally:
        ctx.clock = real
    assert (await engine.offsets(short.wire))[0].first == 3  # all pruned, offsets kept
    assert (await engine.offsets(kept.wire))[0].first == 0  # no retention: untouched
    await _publish(ctx, agent, short.wire, "after")
    stream = await topics.subscribe(
        ctx, agent, short.wire, "late", "latest", topics.ResumePoint(0, 0)
    )
    try:
        gap = await asyncio.wait_for(anext(stream), 5)
        assert gap == Gap(short.wire, 0, 1, 3, "retention")
        nxt = await asyncio.wait_for(anext(stream), 5)
        assert isinstance(nxt, Delivered) and (nxt.offset, nxt.payload) == (3, "after")
    finally:
        await stream.aclose()


async def test_the_publish_quota_is_a_token_bucket_per_agent(runtime: Runtime) -> None:
    ctx = runtime.ctx
    assert ctx.topics is not None
    now = [100.0]
    ctx.topics.quota = PublishQuota(rate=2, burst=3, clock=lambda: now[0])
    a, b = await _agent(ctx), await _agent(ctx)
    topic = await topics.create_topic(ctx, ACTOR, topics.TopicSpec("q", "default", "q", 1))
    for i in range(3):
        await _publish(ctx, a, topic.wire, i)
    with pytest.raises(DomainError) as limited:
        await _publish(ctx, a, topic.wire, "over")
    assert limited.value.code == "TOPIC_RATE_LIMITED"
    assert limited.value.retry_after_seconds == 1
    await _publish(ctx, b, topic.wire, "another agent has its own bucket")
    now[0] += 0.5  # one token back (2/s)
    await _publish(ctx, a, topic.wire, "refilled")
    with pytest.raises(DomainError):
        await _publish(ctx, a, topic.wire, "over again")
    assert (await ctx.topics.engine.offsets(topic.wire))[0].end == 5


async def test_publishes_are_audited_only_on_flagged_topics(runtime: Runtime) -> None:
    ctx = runtime.ctx
    agent = await _agent(ctx)
    loud = await topics.create_topic(
        ctx, ACTOR, topics.TopicSpec("a", "default", "loud", 1, audit_publish=True)
    )
    quiet = await topics.create_topic(ctx, ACTOR, topics.TopicSpec("a", "default", "quiet", 1))
    await _publish(ctx, agent, loud.wire, 1)
    await _publish(ctx, agent, quiet.wire, 1)
    rows, _ = await list_audit(ctx, action_prefix="topic.published", page=1, page_size=10)
    assert [(r["target_id"], r["metadata"]["offset"]) for r in rows] == [(loud.id, 0)]


async def test_subscription_changes_are_domain_events(runtime: Runtime) -> None:
    ctx = runtime.ctx
    agent = await _agent(ctx)
    topic = await topics.create_topic(ctx, ACTOR, topics.TopicSpec("e", "default", "ev", 1))
    dlq = await topics.create_topic(ctx, ACTOR, topics.TopicSpec("e", "default", "dlq", 1))
    with ctx.bus.subscribe("test") as seen:
        state = await subs.create_subscription(
            ctx, ACTOR, topic.wire, None, subs.SubscriptionSpec("s", "earliest", None, dlq.wire)
        )
        await _publish(ctx, agent, topic.wire, "a")
        await _publish(ctx, agent, topic.wire, "b")
        await subs.ack(ctx, ACTOR, topic.wire, "s", None, [(0, 0)])
        await subs.nack(ctx, ACTOR, topic.wire, "s", None, 0, 1, None)
        await subs.delete_subscription(ctx, ACTOR, topic.wire, "s", None)
        await asyncio.sleep(0.05)
        events = []
        while (item := seen.try_recv()) is not None:
            if isinstance(item, SubscriptionChanged):
                events.append((item.change, item.lag))
    sid = state.subscription.id
    assert events == [("created", 0), ("lag_changed", 1), ("dlq", None), ("deleted", None)], sid


async def test_a_member_joining_a_running_durable_group_is_not_a_redelivery(
    runtime: Runtime,
) -> None:
    ctx = runtime.ctx
    agent = await _agent(ctx)
    topic = await topics.create_topic(ctx, ACTOR, topics.TopicSpec("m", "default", "src", 2))
    dlq = await topics.create_topic(ctx, ACTOR, topics.TopicSpec("m", "default", "dlq", 1))
    await subs.create_subscription(
        ctx, ACTOR, topic.wire, None, subs.SubscriptionSpec("grp", "earliest", 1, dlq.wire)
    )
    await _publish(ctx, agent, topic.wire, "only")
    first = await topics.subscribe(ctx, agent, topic.wire, "grp", "latest", None)
    second = await topics.subscribe(ctx, agent, topic.wire, "grp", "latest", None)
    try:
        state = await subs.get_subscription(ctx, topic.wire, "grp", None)
        assert state.lag == 1  # not dead-lettered: one start of the group, one delivery
        assert ctx.topics is not None
        assert (await ctx.topics.engine.offsets(dlq.wire))[0].end == 0
    finally:
        await second.aclose()
        await first.aclose()
    # Once every member left, the next start is a redelivery: past max deliveries (1) → DLQ.
    again = await topics.subscribe(ctx, agent, topic.wire, "grp", "latest", None)
    await again.aclose()
    assert (await ctx.topics.engine.offsets(dlq.wire))[0].end == 1


async def test_a_deleted_dlq_topic_redelivers_instead_of_refusing_the_subscriber(
    runtime: Runtime,
) -> None:
    ctx = runtime.ctx
    agent = await _agent(ctx)
    topic = await topics.create_topic(ctx, ACTOR, topics.TopicSpec("x", "default", "src", 1))
    dlq = await topics.create_topic(ctx, ACTOR, topics.TopicSpec("x", "default", "dlq", 1))
    await subs.create_subscription(
        ctx, ACTOR, topic.wire, None, subs.SubscriptionSpec("s", "earliest", 1, dlq.wire)
    )
    await _publish(ctx, agent, topic.wire, "m")
    await topics.delete_topic(ctx, ACTOR, dlq.wire)
    for _ in range(3):  # past max deliveries, with nowhere to dead-letter it
        stream = await topics.subscribe(ctx, agent, topic.wire, "s", "latest", None)
        try:
            got = await asyncio.wait_for(anext(stream), 5)
            assert isinstance(got, Delivered) and got.payload == "m"
        finally:
            await stream.aclose()
