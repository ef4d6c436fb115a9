"""The sync agent (a background thread) against a real server; restarts and the token file."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest
from agent_harness import Operator, ServerProcess, agent_config, read_token_file
from opstage_agent import (
    Agent,
    AgentNotRunningError,
    BusUnavailableError,
    ConfigurationError,
    Phase,
)


def test_sync_agent_runs_sync_and_async_handlers(
    server: ServerProcess, operator: Operator, tmp_path: Path
) -> None:
    agent = Agent(agent_config(server, operator, tmp_path))
    seen: dict[str, str] = {}

    @agent.action(label="Add")
    def add(payload: dict[str, Any]) -> dict[str, Any]:
        seen["add"] = threading.current_thread().name
        return {"sum": payload["a"] + payload["b"]}

    @agent.action(label="Async add")
    async def async_add(payload: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(0)
        seen["async_add"] = threading.current_thread().name
        return {"sum": payload["a"] + payload["b"]}

    with pytest.raises(AgentNotRunningError):
        agent.publish_event("x.y", {})
    with agent:
        agent.wait_ready(15)
        assert agent.phase is Phase.ONLINE and agent.long_polling
        detail = operator.sole_service(agent.agent_id or "")
        assert operator.run(detail["id"], "add", {"a": 2, "b": 3})["result"]["data"] == {"sum": 5}
        assert operator.run(detail["id"], "async_add", {"a": 1, "b": 1})["result"]["data"] == {
            "sum": 2
        }
        with pytest.raises(BusUnavailableError):
            agent.publish_event("demo.thing.happened", {"n": 1})
    assert seen["add"].startswith("opstage-agent")  # the agent's thread pool
    assert seen["async_add"] == "opstage-agent"  # the agent's own event loop thread
    assert agent.phase is Phase.STOPPED


def test_token_file_survives_restart_and_unknown_actions_are_reported(
    server: ServerProcess, operator: Operator, tmp_path: Path
) -> None:
    # Interval polling for the first run: a stopped long-poll would stay parked on the server
    # and could claim the command submitted below (see test_server_bugs.py).
    first = Agent(agent_config(server, operator, tmp_path, long_poll=False))

    @first.action(label="Retired soon")
    def retired() -> str:
        return "still here"

    with first:
        first.wait_ready(15)
        agent_id = first.agent_id
        service_id = operator.sole_service(agent_id or "")["id"]
    assert first.config.token_file is not None
    saved = read_token_file(first.config.token_file)
    assert saved["agentId"] == agent_id

    # Queued while the service is being redeployed without that action.
    pending = operator.submit(service_id, "retired")

    # No registration token this time: the credentials must come from the file.
    second = Agent(first.config.with_overrides(registration_token=None))
    with second:
        second.wait_ready(15)
        assert second.agent_id == agent_id
        command = operator.wait_command(pending)
    assert command["status"] == "FAILED"
    assert command["result"]["error"]["code"] == "ACTION_HANDLER_NOT_FOUND"
    assert read_token_file(first.config.token_file) == saved  # not re-registered


def test_a_corrupt_token_file_re_registers_with_a_registration_token(
    server: ServerProcess, operator: Operator, tmp_path: Path
) -> None:
    config = agent_config(server, operator, tmp_path, long_poll=False)
    with Agent(config) as agent:
        agent.wait_ready(15)
        agent_id = agent.agent_id
    assert config.token_file is not None
    old_token = read_token_file(config.token_file)["agentToken"]
    config.token_file.write_text("{ this is not json")

    without_token = Agent(config.with_overrides(registration_token=None))
    without_token.start()
    with pytest.raises(ConfigurationError, match="no registration token"):
        without_token.wait_ready(5)
    without_token.shutdown()

    # Same code, fresh registration token: the same agent, with a rotated token.
    again = Agent(config.with_overrides(registration_token=operator.registration_token()))
    with again:
        again.wait_ready(15)
        assert again.agent_id == agent_id
    saved = read_token_file(config.token_file)
    assert saved["agentId"] == agent_id and saved["agentToken"] != old_token
