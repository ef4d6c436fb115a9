"""Operators revoke, disable and rotate agents; the agent must say so clearly or recover."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from agent_harness import Operator, ServerProcess, agent_config, read_token_file, wait_until
from opstage_agent import (
    AgentRevokedError,
    AsyncAgent,
    AuthenticationError,
    Phase,
    RegistrationError,
)


async def in_thread(fn: Any, *args: Any, **kw: Any) -> Any:
    return await asyncio.to_thread(fn, *args, **kw)


async def test_a_revoked_agent_stops_with_a_clear_error_and_returns_with_a_scoped_token(
    server: ServerProcess, operator: Operator, tmp_path: Path
) -> None:
    config = agent_config(server, operator, tmp_path, long_poll=False)
    agent = AsyncAgent(config)

    @agent.action
    def ping() -> str:
        return "pong"

    await agent.start()
    await agent.wait_ready(15)
    agent_id = agent.agent_id
    assert agent_id is not None
    await in_thread(operator.set_standing, agent_id, "revoke")
    # Its registration token is spent, so it cannot come back on its own.
    with pytest.raises(RegistrationError) as caught:
        await asyncio.wait_for(agent.wait(), 15)
    assert caught.value.code == "REGISTRATION_TOKEN_USED"
    assert f"--agent-code {config.agent_code}" in str(caught.value)
    assert agent.phase is Phase.FAILED
    await agent.shutdown()

    # An unscoped token is not enough for a revoked agent ...
    plain = AsyncAgent(config.with_overrides(registration_token=operator.registration_token()))
    with pytest.raises(RegistrationError, match=f"--agent-code {config.agent_code}"):
        await plain.run()

    # ... a token scoped to its code is.
    scoped = await in_thread(operator.registration_token, agentCode=config.agent_code)
    back = AsyncAgent(config.with_overrides(registration_token=scoped))
    back.action(ping)
    async with back:
        await back.wait_ready(15)
        assert back.agent_id == agent_id
        record = await in_thread(operator.agent, agent_id)
        assert record["status"] == "ONLINE"
        detail = await in_thread(operator.sole_service, agent_id)
        done = await in_thread(operator.run, detail["id"], "ping")
        assert done["result"]["message"] == "pong"


async def test_revocation_without_a_registration_token_raises_agent_revoked(
    server: ServerProcess, operator: Operator, tmp_path: Path
) -> None:
    config = agent_config(server, operator, tmp_path, long_poll=False)
    async with AsyncAgent(config) as first:
        await first.wait_ready(15)
    assert first.agent_id is not None
    await in_thread(operator.set_standing, first.agent_id, "revoke")

    later = AsyncAgent(config.with_overrides(registration_token=None))
    with pytest.raises(AgentRevokedError) as caught:
        await later.run()
    assert caught.value.code == "AGENT_REVOKED" and caught.value.status == 403
    assert f"--agent-code {config.agent_code}" in str(caught.value)


async def test_a_rotated_token_is_replaced_by_registering_again(
    server: ServerProcess, operator: Operator, tmp_path: Path
) -> None:
    config = agent_config(server, operator, tmp_path, long_poll=False)
    async with AsyncAgent(config) as first:
        await first.wait_ready(15)
    assert config.token_file is not None
    stale = read_token_file(config.token_file)

    # Someone else registered the same code (a lost token file elsewhere): ours is rotated out.
    other = agent_config(server, operator, tmp_path / "elsewhere", agent_code=config.agent_code)
    async with AsyncAgent(other) as rotated:
        await rotated.wait_ready(15)

    without = AsyncAgent(config.with_overrides(registration_token=None))
    with pytest.raises(AuthenticationError, match="No registration token is configured"):
        await without.run()

    again = AsyncAgent(config.with_overrides(registration_token=operator.registration_token()))
    async with again:
        await again.wait_ready(15)
        assert again.agent_id == stale["agentId"]
    assert read_token_file(config.token_file)["agentToken"] != stale["agentToken"]


async def test_a_disabled_agent_waits_and_resumes_when_enabled(
    server: ServerProcess, operator: Operator, tmp_path: Path
) -> None:
    agent = AsyncAgent(agent_config(server, operator, tmp_path, long_poll=False))

    @agent.action
    def ping() -> str:
        return "pong"

    async with agent:
        await agent.wait_ready(15)
        assert agent.agent_id is not None
        detail = await in_thread(operator.sole_service, agent.agent_id)
        await in_thread(operator.set_standing, agent.agent_id, "disable")
        await in_thread(wait_until, lambda: agent.phase is Phase.DISABLED, 10)
        await in_thread(operator.set_standing, agent.agent_id, "enable")
        await in_thread(wait_until, lambda: agent.phase is Phase.ONLINE, 10)
        done = await in_thread(operator.run, detail["id"], "ping")
        assert done["status"] == "SUCCEEDED"
