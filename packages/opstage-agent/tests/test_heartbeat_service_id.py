"""Heartbeats name their service (``AgentHeartbeatRequest.serviceId``).

The reference server applies a heartbeat's health only when the heartbeat names the service;
an SDK that leaves ``serviceId`` out never changes its service's health there. What matters is
what the SDK sends, so the bodies are captured at the transport: against this repository's
server (which answers the id at registration), and against a stand-in answering exactly what
the reference server answers (no id at registration; ids in the report's answer).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
from agent_harness import Operator, RecordingTransport, ServerProcess, agent_config
from opstage_agent import AgentConfig, AsyncAgent, Health

SERVICE_ID = "svc_01JREFERENCE0000000000000"
AGENT_ID = "agt_01JREFERENCE0000000000000"


async def test_heartbeats_carry_the_service_id_learnt_at_registration(
    server: ServerProcess, operator: Operator, tmp_path: Path
) -> None:
    transport = RecordingTransport()
    config = agent_config(server, operator, tmp_path, heartbeat_interval_seconds=0.3)
    agent = AsyncAgent(config, transport=transport)
    agent.health(lambda: Health.degraded("warming up"))
    async with agent:
        await agent.wait_ready(15)
        await asyncio.sleep(1.0)
    (service,) = operator.services_of(agent.agent_id or "")
    (register,) = [e for e in transport.exchanges if e.path.endswith("/register")]
    assert register.response_body["data"]["serviceId"] == service["id"]
    beats = [e for e in transport.exchanges if e.path.endswith("/heartbeat")]
    assert len(beats) >= 2
    for beat in beats:
        assert beat.request_body == {
            "health": {"status": "DEGRADED", "message": "warming up"},
            "serviceId": service["id"],
        }
    # The registration carried the manifest; learning the id needed no extra report.
    assert [e for e in transport.exchanges if e.path.endswith("/services/report")] == []
    assert operator.client.data("GET", f"/api/admin/capsule-services/{service['id']}")[
        "healthStatus"
    ] == ("DEGRADED")


class ReferenceStandIn:
    """Answers as the reference server (CE v0.4 ``app.ts``) does, and keeps every body."""

    def __init__(self) -> None:
        self.bodies: list[tuple[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        path = request.url.path
        self.bodies.append((path, body))
        intervals = {"heartbeatIntervalSeconds": 30, "commandPollIntervalSeconds": 5}
        if path == "/api/agents/register":
            data: Any = {"agentId": AGENT_ID, "agentToken": "opstage_agent_x", **intervals}
        elif path.endswith("/services/report"):
            data = {
                "services": [
                    {"id": SERVICE_ID, "code": s["code"], "status": "HEALTHY"}
                    for s in body["services"]
                ]
            }
        elif path.endswith("/heartbeat"):
            data = intervals
        elif path.endswith("/commands"):
            data = []
        else:
            return httpx.Response(404, json={"success": False, "error": {"code": "NOT_FOUND"}})
        return httpx.Response(200, json={"success": True, "data": data})

    def sent(self, suffix: str) -> list[Any]:
        return [body for path, body in self.bodies if path.endswith(suffix)]


async def test_against_the_reference_answers_the_sdk_reports_to_learn_the_service_id(
    tmp_path: Path,
) -> None:
    stand_in = ReferenceStandIn()
    config = AgentConfig(
        backend_url="http://reference.invalid",
        agent_code="ref-agent",
        registration_token="opstage_reg_x",
        token_file=tmp_path / "ref.token.json",
        service_version="1.0.0",
        heartbeat_interval_seconds=0.2,
        command_poll_interval_seconds=0.2,
        retry_initial_seconds=0.05,
        retry_max_seconds=0.2,
        shutdown_grace_seconds=1.0,
    )
    agent = AsyncAgent(config, transport=httpx.MockTransport(stand_in))
    async with agent:
        await agent.wait_ready(10)
        await asyncio.sleep(0.7)
    (registered,) = stand_in.sent("/register")
    assert registered["service"]["code"] == config.effective_service_code
    # One report, right after the registration, whose answer names the service...
    assert len(stand_in.sent("/services/report")) == 1
    # ...so every heartbeat names it: the reference applies their health.
    beats = stand_in.sent("/heartbeat")
    assert len(beats) >= 2
    assert all(b.get("serviceId") == SERVICE_ID for b in beats), beats
    assert all(b["health"]["status"] == "UP" for b in beats)
