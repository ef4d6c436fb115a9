"""``publish`` on the topic bus, async and sync: the receipt, one key → one partition in order,
retries stored once (Idempotency-Key), and a typed error for a topic the agent cannot use."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path
from typing import Any

import pytest
from agent_harness import Operator, ServerProcess, StablePortServer, agent_config
from opstage_agent import Agent, AsyncAgent, TopicNotFoundError


def _topic(operator: Operator, **extra: Any) -> str:
    body = {"namespace": "sdk", "tenant": "default", "name": "t-" + secrets.token_hex(4), **extra}
    created: str = operator.client.data("POST", "/api/admin/topics", json=body)["topic"]
    return created


async def test_async_publish_returns_the_durable_receipt(
    server: ServerProcess, operator: Operator, tmp_path: Path
) -> None:
    topic = await asyncio.to_thread(_topic, operator)
    async with AsyncAgent(agent_config(server, operator, tmp_path, long_poll=False)) as agent:
        await agent.wait_ready(15)
        receipts = [
            await agent.publish(topic, {"seq": i}, key="order-1", headers={"trace": "x"})
            for i in range(4)
        ]
        assert {r.topic for r in receipts} == {topic}
        assert len({r.partition for r in receipts}) == 1
        assert [r.offset for r in receipts] == [0, 1, 2, 3]
        assert receipts[0].produced_at.endswith("Z") and not receipts[0].replayed
        # A retry of one publish (same key) is the first receipt, stored once.
        first = await agent.publish(topic, "once", idempotency_key="one")
        again = await agent.publish(topic, "once", idempotency_key="one")
        assert again.replayed and (again.partition, again.offset) == (
            first.partition,
            first.offset,
        )
        with pytest.raises(TopicNotFoundError) as missing:
            await agent.publish("sdk.default.never-made", 1)
        assert missing.value.status == 404 and missing.value.code == "TOPIC_NOT_FOUND"


def test_sync_publish_is_the_twin(
    server: ServerProcess, operator: Operator, tmp_path: Path
) -> None:
    topic = _topic(operator, partitions=1)
    with Agent(agent_config(server, operator, tmp_path, long_poll=False)) as agent:
        agent.wait_ready(15)
        one = agent.publish(topic, [1, 2, 3])
        two = agent.publish(topic, None, key="k")
    assert (one.partition, one.offset) == (0, 0)
    assert (two.partition, two.offset) == (0, 1)


async def test_subscribe_streams_and_resumes_across_a_server_restart(
    restartable_server: StablePortServer, tmp_path: Path
) -> None:
    server = restartable_server
    operator = Operator(server)
    try:
        topic = await asyncio.to_thread(_topic, operator, partitions=1)
        config = agent_config(server, operator, tmp_path, long_poll=False)
        async with AsyncAgent(config) as agent:
            await agent.wait_ready(15)
            for i in range(3):
                await agent.publish(topic, {"i": i}, key="k", headers={"h": str(i)})
            stream = agent.subscribe(topic, "sdk-group", start="earliest")
            first = [await asyncio.wait_for(anext(stream), 10) for _ in range(2)]
            assert [(m.id, m.payload, m.key, m.headers) for m in first] == [
                ("0:0", {"i": 0}, "k", {"h": "0"}),
                ("0:1", {"i": 1}, "k", {"h": "1"}),
            ]
            await asyncio.to_thread(server.stop)  # the stream drops
            await asyncio.to_thread(server.start)  # same port, same data
            operator.client.close()
            operator = Operator(server)
            await agent.publish(topic, {"i": 3}, key="k")
            rest = [await asyncio.wait_for(anext(stream), 30) for _ in range(2)]
            # Resumed after the last id it saw: nothing lost, nothing repeated (one partition).
            assert [m.payload for m in rest] == [{"i": 2}, {"i": 3}]
            await stream.aclose()  # type: ignore[attr-defined]
            with pytest.raises(TopicNotFoundError):
                await anext(agent.subscribe("sdk.default.never-made", "g"))
    finally:
        operator.close()


def test_sync_subscribe_is_the_twin(
    server: ServerProcess, operator: Operator, tmp_path: Path
) -> None:
    topic = _topic(operator, partitions=1)
    with Agent(agent_config(server, operator, tmp_path, long_poll=False)) as agent:
        agent.wait_ready(15)
        agent.publish(topic, "a")
        agent.publish(topic, "b")
        stream = agent.subscribe(topic, "sync-group", start="earliest")
        got = [next(stream).payload, next(stream).payload]
        stream.close()  # type: ignore[attr-defined]
    assert got == ["a", "b"]


async def test_durable_subscribe_resumes_from_what_was_acked(
    server: ServerProcess, operator: Operator, tmp_path: Path
) -> None:
    topic = await asyncio.to_thread(_topic, operator, partitions=1)
    async with AsyncAgent(agent_config(server, operator, tmp_path, long_poll=False)) as agent:
        await agent.wait_ready(15)
        for i in range(3):
            await agent.publish(topic, i)
        stream = agent.subscribe(topic, "sdk-durable", start="earliest", durable=True)
        first, second = [await asyncio.wait_for(anext(stream), 10) for _ in range(2)]
        assert await agent.ack("sdk-durable", first) == 2  # lag: two not acked
        await stream.aclose()  # type: ignore[attr-defined]
        # A new stream (another process could hold it): it starts at the commit, so the
        # message delivered but not acked comes again; the subscription is reused, not remade.
        again = agent.subscribe(topic, "sdk-durable", start="earliest", durable=True)
        resumed = [await asyncio.wait_for(anext(again), 10) for _ in range(2)]
        assert [m.payload for m in resumed] == [second.payload, 2]
        assert await agent.ack("sdk-durable", *resumed) == 0
        await again.aclose()  # type: ignore[attr-defined]


def test_sync_durable_subscribe_and_ack_are_the_twins(
    server: ServerProcess, operator: Operator, tmp_path: Path
) -> None:
    topic = _topic(operator, partitions=1)
    with Agent(agent_config(server, operator, tmp_path, long_poll=False)) as agent:
        agent.wait_ready(15)
        agent.publish(topic, "a")
        stream = agent.subscribe(topic, "sync-durable", start="earliest", durable=True)
        message = next(stream)
        assert agent.ack("sync-durable", message) == 0
        stream.close()  # type: ignore[attr-defined]
    assert message.payload == "a"
