"""The asyncio agent against a real server: the whole governance loop, handler by handler."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from agent_harness import (
    Operator,
    RecordingTransport,
    ServerProcess,
    agent_config,
    read_token_file,
    wait_until,
)
from opstage_agent import (
    ActionError,
    ActionResult,
    AsyncAgent,
    ConfigItem,
    Health,
    Phase,
    Prepared,
)

ECHO_SCHEMA = {
    "type": "object",
    "properties": {"text": {"type": "string"}},
    "required": ["text"],
}


async def in_thread(fn: Any, *args: Any, **kw: Any) -> Any:
    """Operator calls are blocking HTTP; keep them off the loop the agent runs on."""
    return await asyncio.to_thread(fn, *args, **kw)


class Service:
    """A small service with one handler of each kind, and what its handlers observed."""

    def __init__(self, agent: AsyncAgent) -> None:
        self.agent = agent
        self.state = "UP"
        self.threads: dict[str, str] = {}
        self.sync_cancelled = threading.Event()
        loop_thread = threading.current_thread().name

        @agent.health
        def health() -> Health:
            return Health(self.state, f"state is {self.state}")  # type: ignore[arg-type]

        @agent.configs
        def configs() -> list[ConfigItem]:
            return [
                ConfigItem("REGION", "eu-west-1", label="Region"),
                ConfigItem("API_KEY", "sk-live-123", sensitive=True),
            ]

        @agent.action(label="Echo", input_schema=ECHO_SCHEMA)
        def echo(payload: dict[str, Any]) -> dict[str, Any]:
            self.threads["echo"] = threading.current_thread().name
            return {"echo": payload["text"]}

        @agent.action(label="Async echo")
        async def async_echo(payload: dict[str, Any], context: Any) -> ActionResult:
            self.threads["async_echo"] = threading.current_thread().name
            await asyncio.sleep(0)
            return ActionResult(f"echoed by {context.command_id}", {"echo": payload})

        @agent.action(danger_level="MEDIUM")
        def explode(payload: dict[str, Any]) -> None:
            raise RuntimeError("the flux capacitor is empty")

        @agent.action
        async def refuse() -> None:
            raise ActionError("NOT_TODAY", "Refused on principle", {"retryAfter": "tomorrow"})

        @agent.action(timeout_seconds=0.5)
        async def slow_async() -> None:
            await asyncio.sleep(30)

        @agent.action(timeout_seconds=0.5)
        def slow_sync(payload: dict[str, Any], context: Any) -> None:
            deadline = time.monotonic() + 10
            while not context.cancelled and time.monotonic() < deadline:
                time.sleep(0.02)
            if context.cancelled:
                self.sync_cancelled.set()

        @agent.action
        def huge() -> dict[str, Any]:
            return {"blob": "x" * 1_100_000}

        @agent.action
        def astronomical() -> dict[str, Any]:
            return {"n": 10**30}  # beyond 64 bits: the server refuses such a result with 422

        @agent.action(label="Set state", danger_level="HIGH", confirm_required=True)
        def set_state(payload: dict[str, Any]) -> str:
            self.state = payload["state"]
            return f"now {self.state}"

        @agent.prepare("set_state")
        def prepare_state() -> Prepared:
            return Prepared(
                initial_payload={"state": "DEGRADED"}, current_state={"state": self.state}
            )

        self.loop_thread = loop_thread


@pytest.fixture
async def running(
    server: ServerProcess, operator: Operator, tmp_path: Path
) -> AsyncIterator[tuple[Service, dict[str, Any]]]:
    agent = AsyncAgent(agent_config(server, operator, tmp_path))
    service = Service(agent)
    async with agent:
        await agent.wait_ready(15)
        detail = await in_thread(operator.sole_service, agent.agent_id)
        yield service, detail


async def test_registers_reports_and_heartbeats(
    running: tuple[Service, dict[str, Any]], operator: Operator
) -> None:
    service, detail = running
    agent = service.agent
    assert agent.phase is Phase.ONLINE and agent.long_polling
    assert detail["code"] == agent.config.agent_code and detail["runtime"] == "python"
    assert detail["healthStatus"] == "UP" and detail["status"] == "HEALTHY"
    actions = {a["name"]: a for a in detail["actions"]}
    assert set(actions) >= {"echo", "async_echo", "explode", "set_state", "huge"}
    assert actions["set_state"]["dangerLevel"] == "HIGH"
    assert actions["set_state"]["requiresConfirmation"] is True
    assert actions["echo"]["inputSchema"] == ECHO_SCHEMA
    assert actions["slow_async"]["timeoutSeconds"] == 1
    configs = {c["key"]: c for c in detail["configs"]}
    assert configs["REGION"]["valuePreview"] == "eu-west-1"
    assert (
        configs["API_KEY"]["sensitive"] is True and configs["API_KEY"].get("valuePreview") is None
    )
    record = await in_thread(operator.agent, agent.agent_id)
    assert record["status"] == "ONLINE" and record["lastHeartbeatAt"]

    token_file = agent.config.token_file
    assert token_file is not None and (token_file.stat().st_mode & 0o777) == 0o600
    assert read_token_file(token_file)["agentId"] == agent.agent_id


async def test_sync_and_async_handlers_run_where_they_should(
    running: tuple[Service, dict[str, Any]], operator: Operator
) -> None:
    service, detail = running
    done = await in_thread(operator.run, detail["id"], "echo", {"text": "hi"})
    assert done["status"] == "SUCCEEDED" and done["result"]["data"] == {"echo": "hi"}
    assert service.threads["echo"].startswith("opstage-agent")  # the agent's pool, not the loop

    done = await in_thread(operator.run, detail["id"], "async_echo", {"n": 1})
    assert done["status"] == "SUCCEEDED"
    assert done["result"]["message"] == f"echoed by {done['id']}"
    assert done["result"]["data"] == {"echo": {"n": 1}}
    assert service.threads["async_echo"] == service.loop_thread
    assert done["result"]["startedAt"] <= done["result"]["finishedAt"]


async def test_failures_are_reported_with_their_codes(
    running: tuple[Service, dict[str, Any]], operator: Operator
) -> None:
    _, detail = running
    failed = await in_thread(operator.run, detail["id"], "explode")
    assert failed["status"] == "FAILED"
    assert failed["result"]["error"] == {
        "code": "ACTION_FAILED",
        "message": "the flux capacitor is empty",
        "details": {"exceptionType": "RuntimeError"},  # no traceback outside debug mode
    }
    refused = await in_thread(operator.run, detail["id"], "refuse")
    assert refused["result"]["error"]["code"] == "NOT_TODAY"
    assert refused["result"]["error"]["details"] == {"retryAfter": "tomorrow"}


async def test_handlers_time_out(
    running: tuple[Service, dict[str, Any]], operator: Operator
) -> None:
    service, detail = running
    a, s = await asyncio.gather(
        in_thread(operator.run, detail["id"], "slow_async"),
        in_thread(operator.run, detail["id"], "slow_sync"),
    )
    for command in (a, s):
        assert command["status"] == "FAILED"
        assert command["result"]["error"]["code"] == "ACTION_TIMEOUT"
        assert command["result"]["error"]["details"] == {"timeoutSeconds": 0.5}
    # The thread cannot be killed, but it was told to stop.
    assert await in_thread(service.sync_cancelled.wait, 5)


async def test_an_oversized_result_is_refused_locally(
    running: tuple[Service, dict[str, Any]], operator: Operator
) -> None:
    _, detail = running
    command = await in_thread(operator.run, detail["id"], "huge")
    assert command["status"] == "FAILED"
    error = command["result"]["error"]
    assert error["code"] == "COMMAND_RESULT_TOO_LARGE"
    assert "OPSTAGE_COMMAND_RESULT_MAX_BYTES" in error["message"]
    assert error["details"]["maxBytes"] == 1_000_000 and error["details"]["sizeBytes"] > 1_000_000


async def test_a_result_the_server_refuses_completes_the_command_as_failed(
    running: tuple[Service, dict[str, Any]], operator: Operator
) -> None:
    _, detail = running
    command = await in_thread(operator.run, detail["id"], "astronomical")
    assert command["status"] == "FAILED"
    error = command["result"]["error"]
    assert error["code"] == "ACTION_RESULT_INVALID"
    assert error["message"].startswith("Opstage refused the action's result")
    assert error["details"]["issues"][0]["path"] == "data.n"


async def test_prepare_then_confirmed_execute_changes_health(
    running: tuple[Service, dict[str, Any]], operator: Operator
) -> None:
    service, detail = running
    prepared = await in_thread(operator.prepare, detail["id"], "set_state")
    assert prepared.status_code == 200, prepared.text
    assert prepared.json()["data"]["initialPayload"] == {"state": "DEGRADED"}
    assert prepared.json()["data"]["currentState"] == {"state": "UP"}

    done = await in_thread(
        operator.run, detail["id"], "set_state", {"state": "DEGRADED"}, confirmation=True
    )
    assert done["result"]["message"] == "now DEGRADED"
    # The agent looks at health right after an action, so the change shows without waiting
    # for the next heartbeat.
    changed = await in_thread(
        wait_until,
        lambda: operator.service(detail["id"])["healthStatus"] == "DEGRADED",
        timeout=3,
    )
    assert changed
    service.state = "UP"


async def test_an_action_declared_later_is_reported(
    running: tuple[Service, dict[str, Any]], operator: Operator
) -> None:
    service, detail = running

    @service.agent.action(label="Late arrival")
    def late() -> str:
        return "here"

    def declared() -> bool:
        return "late" in {a["name"] for a in operator.service(detail["id"])["actions"]}

    await in_thread(wait_until, declared, 5)
    done = await in_thread(operator.run, detail["id"], "late")
    assert done["result"]["message"] == "here"


async def test_no_raw_token_reaches_the_log(
    server: ServerProcess, operator: Operator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = agent_config(server, operator, tmp_path)
    caplog.set_level(logging.DEBUG)  # every logger, httpx and httpcore included
    agent = AsyncAgent(config)

    @agent.action
    def fail() -> None:
        raise ValueError(f"leaking {config.registration_token} here")

    async with agent:
        await agent.wait_ready(15)
        detail = await in_thread(operator.sole_service, agent.agent_id)
        await in_thread(operator.run, detail["id"], "fail")
    assert config.token_file is not None
    agent_token = read_token_file(config.token_file)["agentToken"]
    assert config.registration_token not in caplog.text
    assert agent_token not in caplog.text
    assert "opstage_reg_***" in caplog.text  # the exception's message was masked, not dropped
    assert "ValueError" in caplog.text  # and its traceback is still there


async def test_shutdown_is_prompt_when_a_refresh_races_it(
    server: ServerProcess, operator: Operator, tmp_path: Path
) -> None:
    # An action finishing as shutdown begins wakes the heartbeat loop in the same tick as its
    # cancellation; asyncio.wait_for on 3.11 swallowed that cancellation and shutdown then
    # waited for the next heartbeat (60 s here).
    for _ in range(3):
        agent = AsyncAgent(
            agent_config(server, operator, tmp_path, heartbeat_interval_seconds=60, long_poll=False)
        )
        await agent.start()
        await agent.wait_ready(15)
        agent.refresh()
        await asyncio.wait_for(agent.shutdown(), 5)
        assert agent.phase is Phase.STOPPED


async def test_heartbeats_keep_coming_with_the_current_health(
    server: ServerProcess, operator: Operator, tmp_path: Path
) -> None:
    transport = RecordingTransport()
    config = agent_config(server, operator, tmp_path, heartbeat_interval_seconds=0.3)
    agent = AsyncAgent(config, transport=transport)
    agent.health(lambda: Health.degraded("warming up"))
    async with agent:
        await agent.wait_ready(15)
        await asyncio.sleep(1.5)
    beats = [e for e in transport.exchanges if e.path.endswith("/heartbeat")]
    assert len(beats) >= 3  # ~5 expected: 1.5 s at 0.3 s ± 10 %
    assert all(b.status == 200 for b in beats)
    # Each names its service, learnt from the registration (test_heartbeat_service_id.py).
    assert all(
        b.request_body
        == {
            "health": {"status": "DEGRADED", "message": "warming up"},
            "serviceId": agent.service_id,
        }
        for b in beats
    )
    assert agent.service_id is not None
    reports = [e for e in transport.exchanges if e.path.endswith("/services/report")]
    assert reports == []  # nothing changed: the registration carried the manifest
