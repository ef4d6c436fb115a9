"""Test harness: real Opstage server processes, an operator client, and agent settings.

The server is the one in this repository, started by the fixtures both suites share
(``opstage_testing``, ADR 0013); the SDK itself never imports it, and these tests never import
the server's test package (``test_import.py`` fails if they do).
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from opstage_agent import AgentConfig
from opstage_testing.clients import AdminClient
from opstage_testing.inprocess import InProcessServer
from opstage_testing.server import ServerProcess, free_port

__all__ = [
    "ENGINE",
    "QUIET_SERVER",
    "Exchange",
    "Operator",
    "RecordingTransport",
    "ServerProcess",
    "StablePortServer",
    "agent_config",
    "read_token_file",
    "stop_server",
    "unique",
    "wait_until",
]

ENGINE = os.environ.get("OPSTAGE_TEST_ENGINE", "sqlite")
QUIET_SERVER = {"OPSTAGE_ACCESS_LOG": "false"}
TERMINAL = {"SUCCEEDED", "FAILED", "CANCELLED", "EXPIRED"}


@dataclass
class StablePortServer(ServerProcess):
    """A server that comes back on the same port after ``stop()`` (agents keep their URL)."""

    fixed_port: int = field(default_factory=free_port)

    def pick_port(self) -> int:
        return self.fixed_port


class Operator:
    """The console's side of a test: an owner session on one server."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.client = AdminClient(server.url).login()

    def close(self) -> None:
        self.client.close()

    def registration_token(self, **body: Any) -> str:
        return self.client.create_token(name=body.pop("name", "sdk test"), **body)

    def agent(self, agent_id: str) -> dict[str, Any]:
        data: dict[str, Any] = self.client.data("GET", f"/api/admin/agents/{agent_id}")
        return data

    def set_standing(self, agent_id: str, change: str) -> None:
        self.client.data("POST", f"/api/admin/agents/{agent_id}/{change}")

    def services_of(self, agent_id: str) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = self.client.data(
            "GET", "/api/admin/capsule-services", params={"agentId": agent_id}
        )
        return data

    def service(self, service_id: str) -> dict[str, Any]:
        data: dict[str, Any] = self.client.data("GET", f"/api/admin/capsule-services/{service_id}")
        return data

    def sole_service(self, agent_id: str) -> dict[str, Any]:
        services = self.services_of(agent_id)
        assert len(services) == 1, services
        return self.service(services[0]["id"])

    def submit(
        self,
        service_id: str,
        action: str,
        payload: dict[str, Any] | None = None,
        *,
        confirmation: bool | None = None,
    ) -> str:
        body: dict[str, Any] = {"payload": payload or {}}
        if confirmation is not None:
            body["confirmation"] = confirmation
        data = self.client.data(
            "POST", f"/api/admin/capsule-services/{service_id}/actions/{action}", json=body
        )
        command_id: str = data["id"]
        return command_id

    def command(self, command_id: str) -> dict[str, Any]:
        data: dict[str, Any] = self.client.data("GET", f"/api/admin/commands/{command_id}")
        return data

    def wait_command(self, command_id: str, timeout: float = 15.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            command = self.command(command_id)
            if command["status"] in TERMINAL:
                return command
            if time.monotonic() > deadline:
                raise AssertionError(f"command {command_id} still {command['status']}")
            time.sleep(0.05)

    def run(
        self, service_id: str, action: str, payload: dict[str, Any] | None = None, **kw: Any
    ) -> dict[str, Any]:
        return self.wait_command(self.submit(service_id, action, payload, **kw))

    def prepare(self, service_id: str, action: str) -> httpx.Response:
        return self.client.get(f"/api/admin/capsule-services/{service_id}/actions/{action}")


@dataclass(frozen=True)
class Exchange:
    method: str
    path: str
    params: dict[str, str]
    request_body: Any
    status: int
    response_body: Any


class RecordingTransport(httpx.AsyncBaseTransport):
    """The real HTTP transport, plus a record of every exchange (for contract checks)."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self.exchanges: list[Exchange] = []
        self.long_polls_sent = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if "waitSeconds" in request.url.params:
            self.long_polls_sent += 1
        response = await self._inner.handle_async_request(request)
        content = await response.aread()
        self.exchanges.append(
            Exchange(
                request.method,
                request.url.path,
                dict(request.url.params),
                json.loads(request.content) if request.content else None,
                response.status_code,
                json.loads(content) if content else None,
            )
        )
        headers = [
            (k, v)
            for k, v in response.headers.items()
            if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")
        ]
        return httpx.Response(
            response.status_code, headers=headers, content=content, request=request
        )

    async def aclose(self) -> None:
        await self._inner.aclose()

    def polls(self) -> list[Exchange]:
        return [e for e in self.exchanges if e.path.endswith("/commands")]


def stop_server(server: ServerProcess) -> None:
    """Tear down a test server quickly. A long-poll left parked by an agent that stopped keeps
    uvicorn's graceful shutdown waiting 5 s; a throwaway SQLite server can simply be killed, and
    one in this process stops without waiting for open connections."""
    if isinstance(server, InProcessServer):
        server.stop(wait_for_connections=False)
    elif ENGINE == "sqlite":
        server.kill()
    else:
        server.stop()


def wait_until(check: Callable[[], Any], timeout: float = 10.0, every: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(every)


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def agent_config(
    server: ServerProcess, operator: Operator, tmp_path: Path, **overrides: Any
) -> AgentConfig:
    """Settings for a fresh agent on ``server``: its own code, token and token file, and
    intervals short enough for tests."""
    code = overrides.pop("agent_code", None) or unique("sdk")
    values: dict[str, Any] = {
        "backend_url": server.url,
        "agent_code": code,
        "registration_token": operator.registration_token(),
        "token_file": tmp_path / f"{code}.token.json",
        "service_version": "1.0.0",
        "heartbeat_interval_seconds": 1.0,
        "command_poll_interval_seconds": 0.2,
        "retry_initial_seconds": 0.05,
        "retry_max_seconds": 0.5,
        "shutdown_grace_seconds": 2.0,
    }
    values.update(overrides)
    return AgentConfig(**values)


def read_token_file(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data
