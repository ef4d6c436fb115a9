"""How commands reach the agent: long-poll when offered, interval polls when not, and through
a server restart in the middle of a long-poll."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from agent_harness import (
    Operator,
    RecordingTransport,
    ServerProcess,
    StablePortServer,
    agent_config,
    wait_until,
)
from opstage_agent import Agent, AsyncAgent


async def in_thread(fn: Any, *args: Any, **kw: Any) -> Any:
    return await asyncio.to_thread(fn, *args, **kw)


def test_sync_agent_polls_a_server_without_long_poll(
    polling_server: ServerProcess, polling_operator: Operator, tmp_path: Path
) -> None:
    transport = RecordingTransport()
    agent = Agent(agent_config(polling_server, polling_operator, tmp_path), transport=transport)

    @agent.action
    def ping() -> str:
        return "pong"

    with agent:
        agent.wait_ready(15)
        assert not agent.long_polling
        detail = polling_operator.sole_service(agent.agent_id or "")
        command = polling_operator.run(detail["id"], "ping")
    assert command["result"]["message"] == "pong"
    polls = transport.polls()
    assert len(polls) >= 2 and transport.long_polls_sent == 0
    assert all(p.params == {"limit": "8"} for p in polls)


async def test_async_agent_polls_a_server_without_long_poll(
    polling_server: ServerProcess, polling_operator: Operator, tmp_path: Path
) -> None:
    transport = RecordingTransport()
    agent = AsyncAgent(
        agent_config(polling_server, polling_operator, tmp_path), transport=transport
    )

    @agent.action
    async def ping() -> str:
        return "pong"

    async with agent:
        await agent.wait_ready(15)
        assert not agent.long_polling
        detail = await in_thread(polling_operator.sole_service, agent.agent_id)
        command = await in_thread(polling_operator.run, detail["id"], "ping")
    assert command["result"]["message"] == "pong"
    assert transport.long_polls_sent == 0


async def test_long_poll_delivers_at_once(
    server: ServerProcess, operator: Operator, tmp_path: Path
) -> None:
    # A poll interval far longer than the test: only the long-poll can deliver in time.
    config = agent_config(server, operator, tmp_path, command_poll_interval_seconds=60)
    transport = RecordingTransport()
    agent = AsyncAgent(config, transport=transport)
    started: list[float] = []

    @agent.action
    def ping() -> None:
        started.append(time.monotonic())

    async with agent:
        await agent.wait_ready(15)
        assert agent.long_polling
        detail = await in_thread(operator.sole_service, agent.agent_id)
        await in_thread(wait_until, lambda: transport.long_polls_sent >= 1, 10)
        await in_thread(operator.client.wait_parked)
        submitted = time.monotonic()
        command = await in_thread(operator.run, detail["id"], "ping")
    assert command["status"] == "SUCCEEDED"
    assert started[0] - submitted < 1.0
    assert any(p.params.get("waitSeconds") == "25" for p in transport.polls())


@pytest.mark.slow
async def test_a_server_restart_mid_long_poll_loses_no_command(
    restartable_server: StablePortServer, tmp_path: Path
) -> None:
    operator = await in_thread(Operator, restartable_server)
    transport = RecordingTransport()
    agent = AsyncAgent(agent_config(restartable_server, operator, tmp_path), transport=transport)
    ran: list[dict[str, Any]] = []

    @agent.action
    def record(payload: dict[str, Any]) -> dict[str, Any]:
        ran.append(payload)
        return payload

    try:
        async with agent:
            await agent.wait_ready(15)
            detail = await in_thread(operator.sole_service, agent.agent_id)
            await in_thread(wait_until, lambda: transport.long_polls_sent >= 1, 10)
            await in_thread(operator.client.wait_parked)  # its long poll, the only one here

            await in_thread(restartable_server.kill)  # the harshest restart: no goodbye
            await asyncio.sleep(1.0)  # the agent's polls and heartbeats now fail and back off
            await in_thread(restartable_server.start)
            operator.close()
            operator = await in_thread(Operator, restartable_server)

            # Submitted while the agent may still be backing off: it must arrive regardless.
            command = await in_thread(operator.run, detail["id"], "record", {"n": 1})
            assert command["status"] == "SUCCEEDED"
            assert ran == [{"n": 1}]
            standing = await in_thread(operator.agent, agent.agent_id)
            assert standing["status"] == "ONLINE"
    finally:
        operator.close()
