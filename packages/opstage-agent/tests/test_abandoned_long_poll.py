"""Server behaviour the SDK depends on, found while writing the SDK.

An agent that restarts or shuts down mid long-poll must not lose the next command: the
server used to keep the abandoned poll parked, claim the command (PENDING -> RUNNING) for
the closed socket, and leave it RUNNING until it expired.
"""

from __future__ import annotations

import socket
import time
from urllib.parse import urlsplit

from agent_harness import Operator, ServerProcess, unique
from opstage_testing.clients import action, register, service


def abandon_long_poll(operator: Operator, agent_id: str, token: str, wait: int) -> None:
    """Open a long-poll the way an agent would, then drop the connection (agent stopped)."""
    url = operator.server.url
    parked = operator.client.parked_polls()
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80)) as sock:
        request = (
            f"GET /api/agents/{agent_id}/commands?waitSeconds={wait} HTTP/1.1\r\n"
            f"Host: {parts.netloc}\r\nAuthorization: Bearer {token}\r\n\r\n"
        )
        sock.sendall(request.encode())
        operator.client.wait_parked(parked + 1)


def test_a_command_created_after_an_agent_dropped_its_long_poll_is_not_lost(
    server: ServerProcess, operator: Operator
) -> None:
    agent = register(server.url, operator.registration_token(), unique("orphan"))
    try:
        reported = agent.report(service(unique("orphan-svc"), action("ping")))
        service_id = reported["services"][0]["id"]
        abandon_long_poll(operator, agent.agent_id, agent.token, wait=10)
        time.sleep(0.2)

        command_id = operator.submit(service_id, "ping")
        time.sleep(0.5)
        # The agent is back (a new process): its first poll must get the command.
        delivered = [c["id"] for c in agent.poll()]
        assert delivered == [command_id], operator.command(command_id)["status"]
    finally:
        agent.close()
