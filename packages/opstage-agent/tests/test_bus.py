"""``publish_event``: the Capsule Bus routes the event to an action, and retries are safe."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from agent_harness import Operator, ServerProcess, agent_config, wait_until
from opstage_agent import AsyncAgent, BusUnavailableError


async def in_thread(fn: Any, *args: Any, **kw: Any) -> Any:
    return await asyncio.to_thread(fn, *args, **kw)


async def test_a_published_event_is_routed_to_an_action_once(
    polling_server: ServerProcess, polling_operator: Operator, tmp_path: Path
) -> None:
    agent = AsyncAgent(agent_config(polling_server, polling_operator, tmp_path))
    code = agent.config.effective_service_code
    received: list[dict[str, Any]] = []

    @agent.action(name="onThing", label="React to a new thing")
    def on_thing(payload: dict[str, Any]) -> None:
        received.append(payload)

    async with agent:
        await agent.wait_ready(15)
        await in_thread(
            polling_operator.client.data,
            "POST",
            "/api/admin/bus/routes",
            json={
                "name": f"{code} things",
                "status": "ENABLED",
                "match": {"eventType": "thing.created", "sourceServiceCode": code},
                "target": {"serviceCode": code, "actionName": "onThing"},
            },
        )
        first = await agent.publish_event(
            "thing.created", {"id": 7}, correlation_id="corr-7", idempotency_key="thing-7"
        )
        assert first.event_id.startswith("bev_") and not first.replay
        assert len(first.routed_commands) == 1
        # A retry of the same publish (same key) is answered from the first, creating nothing.
        again = await agent.publish_event("thing.created", {"id": 7}, idempotency_key="thing-7")
        assert again.replay and again.event_id == first.event_id
        await in_thread(wait_until, lambda: received, 10)
    assert len(received) == 1
    assert received[0]["payload"] == {"id": 7}
    assert received[0]["busEvent"]["correlationId"] == "corr-7"


async def test_without_the_bus_publish_event_says_so(
    server: ServerProcess, operator: Operator, tmp_path: Path
) -> None:
    async with AsyncAgent(agent_config(server, operator, tmp_path, long_poll=False)) as agent:
        await agent.wait_ready(15)
        with pytest.raises(BusUnavailableError) as caught:
            await agent.publish_event("demo.item.created", {"id": 1}, correlation_id="c-1")
    assert caught.value.status == 404
    assert caught.value.code in ("CAPSULE_BUS_DISABLED", "NOT_FOUND")
    assert "OPSTAGE_CAPSULE_BUS_ENABLED" in str(caught.value)
