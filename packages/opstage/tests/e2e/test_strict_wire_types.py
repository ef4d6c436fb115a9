"""Issue 15, A7: booleans and enums on the wire are strict, over real HTTP.

A boolean is JSON ``true``/``false``; ``"yes"``, ``"on"``, ``"1"``, ``1`` and ``"true"`` are
``422 VALIDATION_FAILED``, never quietly read as ``true``. An enum is one of its members. A
registration is validated whole before its single-use token is spent.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from opstage_testing.clients import AdminClient, AgentClient, action, service
from opstage_testing.server import ServerProcess

from ..conftest import unique

LOOSE_BOOLEANS = ["yes", "on", "1", 1, 0, "true", "false", None]
LOOSE_BOOLEAN_IDS = ["yes", "on", "one-string", "one", "zero", "true-string", "false-str", "null"]


def _issue_paths(r: httpx.Response) -> list[str]:
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "VALIDATION_FAILED", error
    return [i["path"] for i in error["details"]["issues"]]


def _running_command(admin: AdminClient, agent: AgentClient) -> str:
    svc = agent.report(service(unique("svc"), action("ping")))["services"][0]
    cmd = admin.data(
        "POST", f"/api/admin/capsule-services/{svc['id']}/actions/ping", json={"payload": {}}
    )
    assert [c["id"] for c in agent.poll()] == [cmd["id"]]
    return str(cmd["id"])


@pytest.mark.parametrize("loose", LOOSE_BOOLEANS, ids=LOOSE_BOOLEAN_IDS)
def test_result_success_must_be_a_json_boolean(
    admin: AdminClient, new_agent: Any, loose: Any
) -> None:
    agent = new_agent()
    command_id = _running_command(admin, agent)
    r = agent.result(command_id, success=loose, message="done")
    assert _issue_paths(r) == ["success"]
    assert admin.data("GET", f"/api/admin/commands/{command_id}")["status"] == "RUNNING"
    # The same result with a real boolean is recorded as sent.
    r = agent.result(command_id, success=False, error={"code": "NOPE", "message": "no"})
    assert r.status_code == 200, r.text
    assert r.json()["data"]["success"] is False
    assert admin.data("GET", f"/api/admin/commands/{command_id}")["status"] == "FAILED"


@pytest.mark.parametrize("loose", LOOSE_BOOLEANS[:-1], ids=LOOSE_BOOLEAN_IDS[:-1])
def test_confirmation_gate_needs_a_json_true(
    admin: AdminClient, new_agent: Any, loose: Any
) -> None:
    agent = new_agent()
    svc = agent.report(service(unique("svc"), action("wipe", dangerLevel="CRITICAL")))
    path = f"/api/admin/capsule-services/{svc['services'][0]['id']}/actions/wipe"
    r = admin.post(path, json={"payload": {}, "confirmation": loose})
    assert _issue_paths(r) == ["confirmation"]
    assert agent.poll() == [], "a refused confirmation must not create a command"
    # Retrying needs a real boolean too.
    cmd = admin.data("POST", path, json={"payload": {}, "confirmation": True})
    agent.poll()
    agent.result(cmd["id"], success=False, error={"code": "X", "message": "no"})
    r = admin.post(f"/api/admin/commands/{cmd['id']}/retry", json={"confirmation": loose})
    assert _issue_paths(r) == ["confirmation"]
    assert agent.poll() == []


def _register(url: str, token: str, agent: dict[str, Any], **extra: Any) -> httpx.Response:
    body = {"registrationToken": token, "agent": agent, **extra}
    return httpx.post(url + "/api/agents/register", json=body, timeout=30)


@pytest.mark.parametrize("mode", ["sidecar", "external", "EMBEDDED", "Embedded", "", 1, True])
def test_unknown_agent_mode_is_refused_and_the_token_is_not_spent(
    server: ServerProcess, admin: AdminClient, mode: Any
) -> None:
    token = admin.create_token()
    code = unique("mode")
    r = _register(server.url, token, {"code": code, "mode": mode})
    assert _issue_paths(r) == ["agent.mode"]
    # The token is still good for a valid registration.
    r = _register(server.url, token, {"code": code, "mode": "embedded"})
    assert r.status_code == 200, r.text
    agent = admin.data("GET", f"/api/admin/agents/{r.json()['data']['agentId']}")
    assert agent["mode"] == "embedded"


def test_ophub_mode_is_still_accepted(server: ServerProcess, admin: AdminClient) -> None:
    r = _register(server.url, admin.create_token(), {"code": unique("hub"), "mode": "ophub"})
    assert r.status_code == 200, r.text


BAD_SERVICE_FIELDS = [
    ("runtime", "rust", "service.runtime"),
    ("runtime", "Python", "service.runtime"),
    ("health", {"status": "up"}, "service.health.status"),
    ("health", {"status": "HEALTHY"}, "service.health.status"),
    (
        "configs",
        [{"key": "K", "type": "string", "sensitive": "yes"}],
        "service.configs.0.sensitive",
    ),
    ("configs", [{"key": "K", "type": "string", "editable": 1}], "service.configs.0.editable"),
    (
        "actions",
        [{"name": "a", "label": "a", "requiresConfirmation": "on"}],
        "service.actions.0.requiresConfirmation",
    ),
    (
        "actions",
        [{"name": "a", "label": "a", "dangerLevel": "low"}],
        "service.actions.0.dangerLevel",
    ),
    (
        "actions",
        [{"name": "a", "label": "a", "timeoutSeconds": "30"}],
        "service.actions.0.timeoutSeconds",
    ),
]


@pytest.mark.parametrize(("field", "value", "path"), BAD_SERVICE_FIELDS)
def test_a_loose_service_field_refuses_the_registration_before_the_token_is_spent(
    server: ServerProcess, admin: AdminClient, field: str, value: Any, path: str
) -> None:
    token = admin.create_token()
    code = unique("reg")
    svc = {**service(unique("svc")), field: value}
    assert _issue_paths(_register(server.url, token, {"code": code}, service=svc)) == [path]
    r = _register(server.url, token, {"code": code}, service=service(unique("svc")))
    assert r.status_code == 200, r.text


def test_an_invalid_action_schema_refuses_the_registration_before_the_token_is_spent(
    server: ServerProcess, admin: AdminClient
) -> None:
    token = admin.create_token()
    code = unique("reg")
    bad = service(unique("svc"), action("a", inputSchema={"type": "no-such-type"}))
    r = _register(server.url, token, {"code": code}, service=bad)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "CAPSULE_SERVICE_MANIFEST_INVALID"
    r = _register(server.url, token, {"code": code}, service=service(unique("svc")))
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("loose", ["yes", "on", "1", 1, "true"])
def test_heartbeat_and_report_booleans_and_enums_are_strict(new_agent: Any, loose: Any) -> None:
    agent = new_agent()
    r = agent.post(f"/api/agents/{agent.agent_id}/heartbeat", json={"health": {"status": loose}})
    assert _issue_paths(r) == ["health.status"]
    bad = service(unique("svc"), configs=[{"key": "K", "type": "string", "sensitive": loose}])
    r = agent.post(f"/api/agents/{agent.agent_id}/services/report", json={"services": [bad]})
    assert _issue_paths(r) == ["services.0.configs.0.sensitive"]


def test_integers_and_enums_of_operator_bodies_are_strict(admin: AdminClient) -> None:
    r = admin.post("/api/admin/registration-tokens", json={"expiresInSeconds": "3600"})
    assert _issue_paths(r) == ["expiresInSeconds"]
    r = admin.post(
        "/api/admin/users",
        json={"username": unique("u"), "password": "x" * 16, "role": "OWNER"},
    )
    assert _issue_paths(r) == ["role"]
    r = admin.patch("/api/admin/users/usr_nonexistent", json={"status": "disabled"})
    assert _issue_paths(r) == ["status"]


@pytest.mark.parametrize("loose", ["yes", "on", "1", 1, "true"])
def test_bus_booleans_are_strict(world: Any, loose: Any) -> None:
    # The publish goes through the agents' hot path (api/hotpath.py), not FastAPI's routes.
    r = world.publish(routePolicy={"dryRun": loose})
    assert _issue_paths(r) == ["routePolicy.dryRun"]
    body = {
        "name": "r",
        "match": {"eventType": world.event_type},
        "target": {"serviceCode": world.target_code, "actionName": "refund"},
        "preApproved": loose,
    }
    r = world.ops.post("/api/admin/bus/routes", json=body)
    assert _issue_paths(r) == ["preApproved"]
    r = world.ops.post("/api/admin/bus/routes", json={**body, "preApproved": False, "status": "on"})
    assert _issue_paths(r) == ["status"]
