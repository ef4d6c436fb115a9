"""``publish`` on the topic bus, async and sync: the receipt, one key → one partition in order,
retries stored once (Idempotency-Key), and a typed error for a topic the agent cannot use."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path
from typing import Any

import pytest
from agent_harness import Operator, ServerProcess, agent_config
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
