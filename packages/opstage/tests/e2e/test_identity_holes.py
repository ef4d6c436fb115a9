"""Issue 6: the identity and confirmation holes of the reference, each shown closed over HTTP.

Each test fails against behaviour described as "today" in the issue (the reference server).
"""

from __future__ import annotations

import threading
from typing import Any

import httpx
from opstage_testing.clients import AdminClient, AgentClient, action, register, service
from opstage_testing.server import ServerProcess

from ..conftest import unique


def _register_raw(url: str, token: str, code: str) -> httpx.Response:
    body = {"registrationToken": token, "agent": {"code": code, "name": code}}
    return httpx.post(url + "/api/agents/register", json=body)


# 1. Agent identity cannot be taken over ------------------------------------------------------


def test_scoped_token_registers_only_its_code(server: ServerProcess, admin: AdminClient) -> None:
    code = unique("scoped")
    raw = admin.create_token(agentCode=code)
    r = _register_raw(server.url, raw, unique("other"))
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "REGISTRATION_TOKEN_SCOPE_MISMATCH"
    assert _register_raw(server.url, raw, code).status_code == 200


def test_lost_token_file_reregisters_and_is_audited_as_rotation(
    server: ServerProcess, admin: AdminClient
) -> None:
    code = unique("lost")
    first = register(server.url, admin.create_token(), code)
    second_token = admin.create_token()
    second = register(server.url, second_token, code)
    assert second.agent_id == first.agent_id
    old = first.post(f"/api/agents/{first.agent_id}/heartbeat", json={})
    assert old.status_code == 401
    assert old.json()["error"]["code"] == "AGENT_TOKEN_REVOKED"
    second.heartbeat()
    rotations = admin.data(
        "GET",
        "/api/admin/audit-events",
        params={"action": "agent.token.rotated", "targetId": first.agent_id},
    )
    assert len(rotations) == 1
    tokens = admin.data("GET", "/api/admin/registration-tokens", params={"pageSize": 100})
    used = next(t for t in tokens if t["agentId"] == first.agent_id and t["usedAt"])
    assert rotations[0]["metadata"]["registrationTokenId"]
    assert used["id"] in {rotations[0]["metadata"]["registrationTokenId"], tokens[0]["id"]}


def test_revoked_agent_stays_revoked_without_a_scoped_token(
    server: ServerProcess, admin: AdminClient
) -> None:
    code = unique("rev")
    agent = register(server.url, admin.create_token(), code)
    admin.data("POST", f"/api/admin/agents/{agent.agent_id}/revoke")
    r = _register_raw(server.url, admin.create_token(), code)
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "AGENT_REVOKED"
    assert admin.data("GET", f"/api/admin/agents/{agent.agent_id}")["status"] == "REVOKED"
    # Explicit operator intent: a token scoped to this code brings it back.
    back = register(server.url, admin.create_token(agentCode=code), code)
    assert back.agent_id == agent.agent_id
    assert admin.data("GET", f"/api/admin/agents/{agent.agent_id}")["status"] != "REVOKED"


def test_disabled_agent_reregisters_but_stays_disabled(
    server: ServerProcess, admin: AdminClient
) -> None:
    code = unique("dis")
    agent = register(server.url, admin.create_token(), code)
    admin.data("POST", f"/api/admin/agents/{agent.agent_id}/disable")
    again = register(server.url, admin.create_token(), code, online=False)
    assert admin.data("GET", f"/api/admin/agents/{agent.agent_id}")["status"] == "DISABLED"
    r = again.post(f"/api/agents/{again.agent_id}/heartbeat", json={})
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "AGENT_DISABLED"


# 2. A service belongs to one agent ------------------------------------------------------------


def test_service_code_cannot_be_claimed_by_another_agent(
    server: ServerProcess, admin: AdminClient, new_agent: Any
) -> None:
    owner, intruder = new_agent(), new_agent()
    code = unique("svc")
    svc = owner.report(service(code))["services"][0]
    r = intruder.post(
        f"/api/agents/{intruder.agent_id}/services/report", json={"services": [service(code)]}
    )
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "CAPSULE_SERVICE_CODE_TAKEN"
    # Nor at registration time.
    body = {
        "registrationToken": admin.create_token(),
        "agent": {"code": unique("intruder"), "name": "x"},
        "service": service(code),
    }
    r = httpx.post(server.url + "/api/agents/register", json=body)
    assert r.status_code == 409
    assert admin.data("GET", f"/api/admin/capsule-services/{svc['id']}")["agentId"] == (
        owner.agent_id
    )

    # The explicit, audited operator act moves it; then the old owner is the one refused.
    moved = admin.data(
        "POST",
        f"/api/admin/capsule-services/{svc['id']}/transfer",
        json={"agentId": intruder.agent_id},
    )
    assert moved["agentId"] == intruder.agent_id
    intruder.report(service(code))
    r = owner.post(
        f"/api/agents/{owner.agent_id}/services/report", json={"services": [service(code)]}
    )
    assert r.status_code == 409
    audit = admin.data("GET", "/api/admin/audit-events", params={"action": "service.owner.changed"})
    assert any(e["targetId"] == svc["id"] and e["actorType"] == "USER" for e in audit)


def test_revoking_the_owner_frees_its_services(admin: AdminClient, new_agent: Any) -> None:
    owner, successor = new_agent(), new_agent()
    code = unique("svc")
    svc = owner.report(service(code))["services"][0]
    admin.data("POST", f"/api/admin/agents/{owner.agent_id}/revoke")
    assert successor.report(service(code))["services"][0]["id"] == svc["id"]


# 3. Preparing is an operator's act -----------------------------------------------------------


def test_prepare_needs_operator_role_and_csrf(
    server: ServerProcess, admin: AdminClient, new_agent: Any
) -> None:
    agent = new_agent()
    svc = agent.report(service(unique("svc"), action("mint")))["services"][0]
    path = f"/api/admin/capsule-services/{svc['id']}/actions/mint"

    viewer_name, viewer_pw = admin.create_user("viewer")
    with AdminClient(server.url) as viewer:
        viewer.login(viewer_name, viewer_pw)
        r = viewer.get(path)
        assert r.status_code == 403
        assert r.json()["error"]["code"] == "FORBIDDEN"

    # A top-level cross-site navigation carries the cookie but cannot set the header.
    r = httpx.get(server.url + path, cookies=admin.cookies)
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "CSRF_INVALID"
    assert agent.poll() == [], "a refused prepare must not reach the agent"


# 4. Confirmation cannot be bypassed ----------------------------------------------------------


def test_retry_of_a_dangerous_action_needs_confirmation_again(
    admin: AdminClient, new_agent: Any
) -> None:
    agent = new_agent()
    svc = agent.report(service(unique("svc"), action("wipe", dangerLevel="CRITICAL")))
    path = f"/api/admin/capsule-services/{svc['services'][0]['id']}/actions/wipe"
    cmd = admin.data("POST", path, json={"payload": {}, "confirmation": True})
    agent.poll()
    agent.result(cmd["id"], success=False, error={"code": "X", "message": "no"})
    r = admin.post(f"/api/admin/commands/{cmd['id']}/retry", json={})
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "ACTION_REQUIRES_CONFIRMATION"
    ok = admin.data("POST", f"/api/admin/commands/{cmd['id']}/retry", json={"confirmation": True})
    assert ok["status"] == "PENDING"


# 5. Generated secrets are shown once, to the person who asked -----------------------------


def _run_minting(admin: AdminClient, agent: AgentClient, path: str, secret: str) -> str:
    cmd = admin.data("POST", path, json={"payload": {}, "confirmation": True})
    (polled,) = agent.poll()
    agent.result(polled["id"], success=True, data={"generatedKey": secret, "keyId": "k1"})
    return str(cmd["id"])


def test_generated_secret_is_shown_once_to_its_creator(
    server: ServerProcess, admin: AdminClient, new_agent: Any
) -> None:
    agent = new_agent()
    svc = agent.report(service(unique("svc"), action("rotate", dangerLevel="HIGH")))
    path = f"/api/admin/capsule-services/{svc['services'][0]['id']}/actions/rotate"
    secret = "sk-live-" + unique("secret")
    command_id = _run_minting(admin, agent, path, secret)

    other_name, other_pw = admin.create_user("operator")
    with AdminClient(server.url) as other:
        other.login(other_name, other_pw)
        seen_by_other = other.data("GET", f"/api/admin/commands/{command_id}")
    assert secret not in str(seen_by_other)

    first = admin.data("GET", f"/api/admin/commands/{command_id}")
    assert first["result"]["data"]["generatedKey"] == secret
    assert first["result"]["data"]["keyId"] == "k1"
    second = admin.data("GET", f"/api/admin/commands/{command_id}")
    assert secret not in str(second)
    assert second["result"]["data"]["keyId"] == "k1"

    listing = admin.get("/api/admin/commands", params={"pageSize": 100}).text
    audit = admin.get("/api/admin/audit-events", params={"pageSize": 100}).text
    assert secret not in listing
    assert secret not in audit
    assert secret not in server.log()


def test_prepare_secret_reaches_only_the_preparer(
    server: ServerProcess, admin: AdminClient, new_agent: Any
) -> None:
    agent = new_agent()
    svc = agent.report(service(unique("svc"), action("issue")))["services"][0]
    secret = "pk-" + unique("prep")
    answered: list[str] = []

    def answer() -> None:
        for c in agent.poll(wait=10):
            answered.append(c["id"])
            agent.result(c["id"], success=True, data={"initialPayload": {}, "apiKey": secret})

    t = threading.Thread(target=answer)
    t.start()
    prepared = admin.data("GET", f"/api/admin/capsule-services/{svc['id']}/actions/issue")
    t.join(15)
    assert prepared["prepareCommand"]["result"]["data"]["apiKey"] == secret
    later = admin.data("GET", f"/api/admin/commands/{answered[0]}")
    assert secret not in str(later)
    assert secret not in server.log()
