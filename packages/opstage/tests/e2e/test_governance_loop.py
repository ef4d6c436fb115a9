"""The whole governance loop over HTTP against a real server process.

login → token → register → heartbeat → report → prepare → execute → long-poll → result → audit
"""

from __future__ import annotations

import threading
import time
from typing import Any

from opstage_testing.clients import AdminClient, AgentClient, action, register, service
from opstage_testing.server import ServerProcess

from ..conftest import unique

ECHO_SCHEMA = {
    "type": "object",
    "properties": {"text": {"type": "string", "maxLength": 20}},
    "required": ["text"],
    "additionalProperties": False,
}


def _answer_next(agent: AgentClient, reply: dict[str, Any], seen: list[dict[str, Any]]) -> None:
    commands = agent.poll(wait=10)
    for c in commands:
        seen.append(c)
        r = agent.result(c["id"], **reply)
        assert r.status_code == 200, r.text


def test_full_loop(server: ServerProcess, admin: AdminClient) -> None:
    raw = admin.create_token(name="loop")
    assert raw.startswith("opstage_reg_")
    code = unique("loop")
    agent = register(server.url, raw, code, version="1.2.3", runtime="python")
    assert agent.agent_id.startswith("agt_")
    assert agent.token.startswith("opstage_agent_")

    beat = agent.heartbeat({"status": "UP"})
    assert beat["capabilities"]["longPoll"] is True

    svc_code = unique("svc")
    reported = agent.report(
        service(
            svc_code,
            action("echo", inputSchema=ECHO_SCHEMA, dangerLevel="LOW"),
            action("rotate", dangerLevel="HIGH", requiresConfirmation=True),
            configs=[
                {"key": "apiUrl", "type": "string", "valuePreview": "https://x.example"},
                {"key": "apiKey", "type": "string", "sensitive": True, "valuePreview": "sk-123"},
                {"key": "db_password", "type": "string", "valuePreview": "hunter2"},
            ],
        )
    )
    service_id = reported["services"][0]["id"]
    assert service_id.startswith("svc_")

    detail = admin.data("GET", f"/api/admin/capsule-services/{service_id}")
    assert detail["effectiveStatus"] == "HEALTHY"
    assert {a["name"] for a in detail["actions"]} == {"echo", "rotate"}
    previews = {c["key"]: c.get("valuePreview") for c in detail["configs"]}
    assert previews["apiUrl"] == "https://x.example"
    assert "sk-123" not in str(detail) and "hunter2" not in str(detail)

    # ACTION_PREPARE: the GET blocks until the agent answers its prepare command.
    seen: list[dict[str, Any]] = []
    prep_reply = {"success": True, "data": {"initialPayload": {"text": "hi"}, "state": 1}}
    t = threading.Thread(target=_answer_next, args=(agent, prep_reply, seen))
    t.start()
    prepared = admin.data("GET", f"/api/admin/capsule-services/{service_id}/actions/echo")
    t.join(15)
    assert seen and seen[0]["type"] == "ACTION_PREPARE"
    assert prepared["prepareCommand"]["status"] == "SUCCEEDED"
    assert prepared["action"]["name"] == "echo"

    # Bad payload: refused by the action's inputSchema before any command exists.
    r = admin.post(
        f"/api/admin/capsule-services/{service_id}/actions/echo",
        json={"payload": {"text": 5}},
    )
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "ACTION_PAYLOAD_INVALID"
    assert r.json()["error"]["details"]["issues"]

    # HIGH danger: refused without confirmation, accepted with it.
    r = admin.post(f"/api/admin/capsule-services/{service_id}/actions/rotate", json={})
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "ACTION_REQUIRES_CONFIRMATION"

    # Long-poll: the agent is already waiting when the operator submits.
    seen.clear()
    parked = admin.parked_polls()
    t = threading.Thread(
        target=_answer_next, args=(agent, {"success": True, "data": {"echo": "hello"}}, seen)
    )
    t.start()
    admin.wait_parked(parked + 1)
    started = time.perf_counter()
    cmd = admin.data(
        "POST",
        f"/api/admin/capsule-services/{service_id}/actions/echo",
        json={"payload": {"text": "hello"}},
    )
    t.join(15)
    assert seen, "long-poll never delivered the command"
    assert time.perf_counter() - started < 5
    assert seen[0]["id"] == cmd["id"]
    assert seen[0]["payload"] == {"text": "hello"}

    done = admin.data("GET", f"/api/admin/commands/{cmd['id']}")
    assert done["status"] == "SUCCEEDED"
    assert done["startedAt"] and done["completedAt"]
    assert done["durationMs"] is not None and done["durationMs"] >= 0
    assert done["result"]["data"] == {"echo": "hello"}

    # A terminal command refuses a second result.
    r = agent.result(cmd["id"], success=True)
    assert r.status_code == 409, r.text

    # Audit has the whole story, newest first, with the contract's action names.
    audit = admin.get("/api/admin/audit-events", params={"pageSize": 100}).json()["data"]
    names = {e["action"] for e in audit}
    for expected in (
        "registration_token.created",
        "registration_token.consumed",
        "agent.registered",
        "service.reported",
        "service.action.requested",
        "command.created",
        "command.completed",
    ):
        assert expected in names, expected


def test_failure_retry_and_cancel(admin: AdminClient, new_agent: Any) -> None:
    agent = new_agent()
    svc = agent.report(service(unique("svc"), action("work", timeoutSeconds=60)))["services"][0]
    path = f"/api/admin/capsule-services/{svc['id']}/actions/work"

    cmd = admin.data("POST", path, json={"payload": {}})
    (polled,) = agent.poll()
    assert polled["id"] == cmd["id"]
    running = admin.data("GET", f"/api/admin/commands/{cmd['id']}")
    assert running["status"] == "RUNNING"
    assert (
        agent.result(
            cmd["id"], success=False, error={"code": "BOOM", "message": "it broke"}
        ).status_code
        == 200
    )
    failed = admin.data("GET", f"/api/admin/commands/{cmd['id']}")
    assert failed["status"] == "FAILED"
    assert failed["errorCode"] == "BOOM"

    retried = admin.data("POST", f"/api/admin/commands/{cmd['id']}/retry", json={})
    assert retried["status"] == "PENDING"
    assert retried["retryOfCommandId"] == cmd["id"]

    cancelled = admin.data("POST", f"/api/admin/commands/{retried['id']}/cancel")
    assert cancelled["status"] == "CANCELLED"
    assert agent.poll() == []
    r = agent.result(retried["id"], success=True)
    assert r.status_code in (409, 410), r.text


def test_command_expires_by_action_timeout(make_server: Any) -> None:
    srv = make_server(OPSTAGE_MAINTENANCE_INTERVAL_SECONDS="1")
    with AdminClient(srv.url) as admin:
        admin.login()
        agent = register(srv.url, admin.create_token(), unique("exp"))
        svc = agent.report(service(unique("svc"), action("slow", timeoutSeconds=1)))["services"][0]
        cmd = admin.data(
            "POST", f"/api/admin/capsule-services/{svc['id']}/actions/slow", json={"payload": {}}
        )
        deadline = time.monotonic() + 10
        status = None
        while time.monotonic() < deadline:
            status = admin.data("GET", f"/api/admin/commands/{cmd['id']}")["status"]
            if status == "EXPIRED":
                break
            time.sleep(0.3)
        assert status == "EXPIRED"
        # An expired command is retryable.
        again = admin.data("POST", f"/api/admin/commands/{cmd['id']}/retry", json={})
        assert again["status"] == "PENDING"
        audit = admin.data(
            "GET", "/api/admin/audit-events", params={"action": "system.command.expired"}
        )
        # The sweep's row is the reference's: on the workspace, with the count (and the ids).
        assert any(cmd["id"] in e["metadata"].get("commandIds", []) for e in audit)
        agent.close()


def test_long_poll_times_out_empty(new_agent: Any) -> None:
    agent = new_agent()
    started = time.perf_counter()
    assert agent.poll(wait=1) == []
    elapsed = time.perf_counter() - started
    assert 0.9 <= elapsed < 3, elapsed


def test_result_too_large(make_server: Any) -> None:
    srv = make_server(OPSTAGE_COMMAND_RESULT_MAX_BYTES="1000")
    with AdminClient(srv.url) as admin:
        admin.login()
        agent = register(srv.url, admin.create_token(), unique("big"))
        svc = agent.report(service(unique("svc"), action("dump")))["services"][0]
        cmd = admin.data(
            "POST", f"/api/admin/capsule-services/{svc['id']}/actions/dump", json={"payload": {}}
        )
        agent.poll()
        r = agent.result(cmd["id"], success=True, data={"blob": "x" * 5000})
        assert r.status_code == 413
        assert r.json()["error"]["code"] == "COMMAND_RESULT_TOO_LARGE"
        big = agent.result(cmd["id"], success=True, data={"blob": "x" * 200_000})
        assert big.status_code == 413
        assert big.json()["error"]["code"] == "COMMAND_RESULT_TOO_LARGE"
        # Nothing was lost: the command still accepts a result of the right size.
        assert agent.result(cmd["id"], success=True, data={"ok": 1}).status_code == 200
        agent.close()


def test_concurrent_heartbeats_from_many_agents_all_succeed(new_agent: Any) -> None:
    """Group commit folds many agents into one statement; that must never fail a request."""
    import concurrent.futures

    agents = [new_agent() for _ in range(12)]
    for a in agents:
        a.report(service(unique("svc")))

    def beat(agent: AgentClient) -> list[int]:
        return [
            agent.post(
                f"/api/agents/{agent.agent_id}/heartbeat", json={"health": {"status": "UP"}}
            ).status_code
            for _ in range(10)
        ]

    with concurrent.futures.ThreadPoolExecutor(len(agents)) as pool:
        codes = [c for batch in pool.map(beat, agents) for c in batch]
    assert codes == [200] * len(codes)


def test_repeated_health_moves_its_time_and_a_change_is_stored(
    admin: AdminClient, new_agent: Any
) -> None:
    """An unchanged health takes the one-statement path; it must still refresh its time."""
    agent = new_agent()
    service_id = agent.report(service(unique("svc")))["services"][0]["id"]

    def health() -> dict[str, Any]:
        got: dict[str, Any] = admin.data("GET", f"/api/admin/capsule-services/{service_id}")
        return dict(got["health"])

    agent.heartbeat({"status": "UP", "message": "fine", "details": {"q": 1}})
    first = health()
    time.sleep(0.05)
    agent.heartbeat({"status": "UP", "message": "fine", "details": {"q": 1}})
    second = health()
    assert (second["status"], second["message"], second["details"]) == ("UP", "fine", {"q": 1})
    assert second["reportedAt"] > first["reportedAt"]
    agent.heartbeat({"status": "UP", "message": "fine", "details": {"q": 2}})
    assert health()["details"] == {"q": 2}
    agent.heartbeat({"status": "DOWN", "message": "broken"})
    third = health()
    assert (third["status"], third["message"], third["details"]) == ("DOWN", "broken", {})


def test_hot_path_speaks_the_same_errors(new_agent: Any) -> None:
    agent = new_agent()
    path = f"/api/agents/{agent.agent_id}"
    bad = agent.post(
        path + "/heartbeat", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert bad.status_code == 422
    assert bad.json()["error"]["code"] == "VALIDATION_FAILED"
    assert bad.json()["error"]["details"]["issues"]
    wrong_type = agent.post(
        path + "/heartbeat", content=b"hello", headers={"Content-Type": "text/plain"}
    )
    assert wrong_type.status_code == 415
    negative = agent.get(path + "/commands", params={"waitSeconds": "-1"})
    assert negative.status_code == 422
    health = agent.post(path + "/heartbeat", json={"health": {"status": "SIDEWAYS"}})
    assert health.status_code == 422
    assert agent.get(path + "/commands", params={"limit": "abc"}).status_code == 200
    assert "x-request-id" in agent.post(path + "/heartbeat", json={}).headers
    # Sized, not chunked, like FastAPI's own JSON responses.
    for answer in (bad, agent.post(path + "/heartbeat", json={})):
        assert answer.headers["content-length"] == str(len(answer.content))
        assert "transfer-encoding" not in answer.headers
