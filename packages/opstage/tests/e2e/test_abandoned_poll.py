"""A parked long-poll whose agent hangs up claims nothing, and a kept-alive connection's next
polls still park and deliver (api/http_protocol.py's ``CONNECTION_LOST``, ADR 0019).

A command claimed for a closed socket would sit RUNNING until it expires instead of reaching
the agent's next poll.
"""

from __future__ import annotations

import socket
import time

from opstage_testing.clients import AdminClient, AgentClient, action, register, service
from opstage_testing.server import ServerProcess

from ..conftest import unique


def _agent_with_echo(server: ServerProcess, admin: AdminClient) -> tuple[AgentClient, str]:
    agent = register(server.url, admin.create_token(), unique("hangup"))
    agent.heartbeat({"status": "UP"})
    reported = agent.report(service(unique("svc"), action("echo", dangerLevel="LOW")))
    return agent, reported["services"][0]["id"]


def _poll_request(agent: AgentClient, wait: int) -> bytes:
    return (
        f"GET /api/agents/{agent.agent_id}/commands?waitSeconds={wait} HTTP/1.1\r\n"
        f"Host: x\r\nAuthorization: Bearer {agent.token}\r\n\r\n"
    ).encode()


def _until(condition: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_a_hung_up_poll_claims_nothing_and_the_next_poll_gets_the_command(
    server: ServerProcess, admin: AdminClient
) -> None:
    agent, service_id = _agent_with_echo(server, admin)
    host, port = server.url.removeprefix("http://").split(":")
    parked = admin.parked_polls()
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.sendall(_poll_request(agent, 20))
    admin.wait_parked(parked + 1)
    sock.close()
    # The server noticed: the poll is no longer parked (a poll that did not notice would stay
    # parked for its 20 s and claim the command below for a socket nobody reads).
    _until(lambda: admin.parked_polls() <= parked)

    cmd = admin.data(
        "POST", f"/api/admin/capsule-services/{service_id}/actions/echo", json={"payload": {}}
    )
    assert admin.data("GET", f"/api/admin/commands/{cmd['id']}")["status"] == "PENDING"
    delivered = agent.poll(wait=5)
    assert [c["id"] for c in delivered] == [cmd["id"]]


def test_polls_on_one_kept_alive_connection_each_park_and_deliver(
    server: ServerProcess, admin: AdminClient
) -> None:
    """The connection's lost-future is shared by its requests: one poll ending must not make
    the next one on the same connection look hung up."""
    agent, service_id = _agent_with_echo(server, admin)
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=15) as sock:
        stream = sock.makefile("rb")
        for _ in range(3):
            parked = admin.parked_polls()
            sock.sendall(_poll_request(agent, 10))
            admin.wait_parked(parked + 1)
            cmd = admin.data(
                "POST",
                f"/api/admin/capsule-services/{service_id}/actions/echo",
                json={"payload": {}},
            )
            status = stream.readline()
            assert status.startswith(b"HTTP/1.1 200"), status
            length = 0
            while (line := stream.readline()) != b"\r\n":
                name, _, value = line.decode().partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            body = stream.read(length)
            assert cmd["id"].encode() in body
