"""A failed prepare step answers 424 with the agent's own code, as the reference does.

The agent's code is not one of ours, so no table can give its status: it takes the status of
ACTION_PREPARE_FAILED, the code it stands for (ADR 0006).
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from opstage_testing.clients import AdminClient, AgentClient, action, register, service
from opstage_testing.server import ServerProcess

from ..conftest import unique


def _fail_next(agent: AgentClient, error: dict[str, Any]) -> None:
    for c in agent.poll(wait=10):
        r = agent.result(c["id"], success=False, error=error)
        assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    ("error", "code"),
    [
        ({"code": "DISK_FULL", "message": "No space left."}, "DISK_FULL"),
        ({"message": "It broke."}, "ACTION_FAILED"),  # no code: the server's default for it
    ],
)
def test_a_failed_prepare_answers_424_with_the_agents_code(
    server: ServerProcess, admin: AdminClient, error: dict[str, Any], code: str
) -> None:
    agent = register(server.url, admin.create_token(name="prep"), unique("prep"))
    reported = agent.report(service(unique("svc"), action("echo", dangerLevel="LOW")))
    service_id = reported["services"][0]["id"]
    t = threading.Thread(target=_fail_next, args=(agent, error))
    t.start()
    r = admin.get(f"/api/admin/capsule-services/{service_id}/actions/echo")
    t.join(15)
    assert r.status_code == 424, r.text
    body = r.json()["error"]
    assert body["code"] == code
    assert body["message"] == error["message"]
    assert body["details"]["commandStatus"] == "FAILED"
