"""The OpenAPI document says what the server really answers (issue 17; ADR 0012).

A real server is driven through a representative request of every operation of its own
document (lists, gets, creates, changes, and errors), and every answer's body is validated
against the schema the document declares for that operation and status. An answer whose status
the operation does not declare fails too. The document itself is validated as OpenAPI 3.1.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from openapi_spec_validator import validate
from opstage_testing.clients import AdminClient, AgentClient, action, service
from opstage_testing.inprocess import InProcessServer
from opstage_testing.server import ServerProcess

from ..conftest import ENGINE, unique


@dataclass
class Answer:
    method: str
    template: str
    response: httpx.Response


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory, database_factory: Any) -> Iterator[ServerProcess]:
    data_dir: Path = tmp_path_factory.mktemp("openapi")
    server = InProcessServer(
        data_dir,
        database_factory(data_dir, migrated=True),
        {"OPSTAGE_CAPSULE_BUS_ENABLED": "true", "OPSTAGE_LONG_POLL_MAX_SECONDS": "1"},
    ).start()
    yield server
    server.stop()


class Recorder:
    def __init__(self) -> None:
        self.answers: list[Answer] = []

    def __call__(
        self, client: httpx.Client, method: str, template: str, status: int, **kw: Any
    ) -> Any:
        path = template.format(**kw.pop("ids", {}))
        r = client.request(method, path, **kw)
        assert r.status_code == status, f"{method} {path} -> {r.status_code} {r.text[:500]}"
        self.answers.append(Answer(method, template, r))
        if r.headers.get("content-type", "").startswith("application/json"):
            return r.json().get("data")
        return None


def _prepare(rec: Recorder, admin: AdminClient, agent: AgentClient, ids: dict[str, str]) -> None:
    """The prepare GET waits for the agent's answer: the agent polls and answers it meanwhile."""
    template = "/api/admin/capsule-services/{serviceId}/actions/{actionName}"
    with ThreadPoolExecutor(1) as pool:
        asked = pool.submit(rec, admin, "GET", template, 200, ids=ids)
        for _ in range(20):
            prepare = [c for c in agent.poll(wait=1) if c["type"] == "ACTION_PREPARE"]
            if prepare:
                answer = {"initialPayload": {"n": 3}, "currentState": {"up": True}}
                assert agent.result(prepare[0]["id"], success=True, data=answer).status_code == 200
                break
        asked.result(timeout=30)


def _subscriptions(rec: Recorder, admin: AdminClient, agent: AgentClient, topic: str) -> None:
    """Durable subscriptions (ADR 0015): the admin's and the agent's, ack and nack."""
    tid = {"topic": topic}
    admin_sub = {**tid, "name": "admin-sub"}
    rec(
        admin,
        "POST",
        "/api/admin/topics/{topic}/subscriptions",
        200,
        ids=tid,
        json={"name": "admin-sub"},
    )
    rec(
        admin,
        "POST",
        "/api/admin/topics/{topic}/subscriptions",
        409,
        ids=tid,
        json={"name": "admin-sub"},
    )
    rec(admin, "GET", "/api/admin/topics/{topic}/subscriptions", 200, ids=tid)
    rec(admin, "GET", "/api/admin/topics/{topic}/subscriptions/{name}", 200, ids=admin_sub)
    rec(
        admin,
        "GET",
        "/api/admin/topics/{topic}/subscriptions/{name}",
        404,
        ids={**tid, "name": "x"},
    )
    aid = {"agentId": agent.agent_id}
    mine = {**aid, "name": "agent-sub"}
    body = {"topic": topic, "name": "agent-sub", "from": "earliest"}
    rec(agent, "POST", "/api/agents/{agentId}/topics/subscriptions", 200, ids=aid, json=body)
    rec(
        agent,
        "POST",
        "/api/agents/{agentId}/topics/subscriptions",
        422,
        ids=aid,
        json={"name": "n"},
    )
    rec(agent, "GET", "/api/agents/{agentId}/topics/subscriptions", 200, ids=aid)
    rec(
        agent, "GET", "/api/agents/{agentId}/topics/subscriptions/{name}", 200, ids=mine, params=tid
    )
    ack = {"topic": topic, "offsets": [{"partition": 0, "offset": 0}]}
    sub = "/api/agents/{agentId}/topics/subscriptions/{name}"
    rec(agent, "POST", sub + "/ack", 200, ids=mine, json=ack)
    nack = {"topic": topic, "partition": 0, "offset": 0, "reason": "retry"}
    # No DLQ topic: the nack is refused (409 TOPIC_SUBSCRIPTION_NO_DLQ).
    rec(agent, "POST", sub + "/nack", 409, ids=mine, json=nack)
    rec(agent, "DELETE", sub, 200, ids=mine, params=tid)
    rec(admin, "DELETE", "/api/admin/topics/{topic}/subscriptions/{name}", 200, ids=admin_sub)


def exercise(url: str) -> list[Answer]:
    """One or more real answers for every operation of the document."""
    rec = Recorder()
    anon = httpx.Client(base_url=url, timeout=30)
    admin = AdminClient(url)
    rec(admin, "POST", "/api/admin/auth/login", 401, json={"username": "x", "password": "y"})
    rec(admin, "POST", "/api/admin/auth/login", 422, json={"username": ""})
    admin.login()
    rec(anon, "GET", "/health", 200)
    rec(anon, "GET", "/api/system/health", 200)
    rec(anon, "GET", "/api/system/version", 200)
    rec(anon, "GET", "/api/admin/auth/me", 401)
    rec(admin, "GET", "/api/admin/auth/me", 200)
    csrf = rec(admin, "GET", "/api/admin/auth/csrf", 200)
    admin.csrf = csrf["csrfToken"]

    # Users.
    rec(admin, "GET", "/api/admin/users", 200, params={"sort": "username"})
    rec(admin, "GET", "/api/admin/users", 422, params={"sort": "nope"})
    user = rec(
        admin,
        "POST",
        "/api/admin/users",
        200,
        json={"username": unique("u"), "password": "a-long-password-1", "role": "viewer"},
    )
    uid = {"userId": user["id"]}
    rec(admin, "PATCH", "/api/admin/users/{userId}", 200, ids=uid, json={"role": "operator"})
    rec(
        admin,
        "PATCH",
        "/api/admin/users/{userId}",
        404,
        ids={"userId": "usr_x"},
        json={"role": "viewer"},
    )
    rec(
        admin,
        "POST",
        "/api/admin/users/{userId}/reset-password",
        200,
        ids=uid,
        json={"password": "another-long-password-2"},
    )
    rec(admin, "DELETE", "/api/admin/users/{userId}", 200, ids=uid)
    rec(admin, "POST", "/api/admin/users", 403, json={}, headers={"X-CSRF-Token": "wrong"})

    # Registration tokens, agents, services.
    created = rec(admin, "POST", "/api/admin/registration-tokens", 200, json={"name": "t"})
    rec(admin, "GET", "/api/admin/registration-tokens", 200)
    spare = rec(admin, "POST", "/api/admin/registration-tokens", 200, json={})
    rec(
        admin,
        "POST",
        "/api/admin/registration-tokens/{tokenId}/revoke",
        200,
        ids={"tokenId": spare["id"]},
    )
    rec(
        admin,
        "DELETE",
        "/api/admin/registration-tokens/{tokenId}",
        200,
        ids={"tokenId": spare["id"]},
    )
    code = unique("oa")
    reg = rec(
        anon,
        "POST",
        "/api/agents/register",
        200,
        json={"registrationToken": created["rawToken"], "agent": {"code": code, "name": code}},
    )
    rec(
        anon,
        "POST",
        "/api/agents/register",
        409,
        json={"registrationToken": created["rawToken"], "agent": {"code": code}},
    )
    agent = AgentClient(url, reg["agentId"], reg["agentToken"])
    aid = {"agentId": agent.agent_id}
    rec(agent, "POST", "/api/agents/{agentId}/heartbeat", 200, ids=aid, json={})
    rec(anon, "POST", "/api/agents/{agentId}/heartbeat", 401, ids=aid, json={})
    rec(agent, "POST", "/api/agents/{agentId}/heartbeat", 422, ids=aid, json={"health": 1})
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    report = {
        "services": [
            service(
                code + "-svc",
                action("ping", inputSchema=schema, category="ops"),
                action("drop", dangerLevel="HIGH", requiresConfirmation=True),
                configs=[{"key": "k", "type": "string", "sensitive": True, "valuePreview": "v"}],
            )
        ]
    }
    svc = rec(agent, "POST", "/api/agents/{agentId}/services/report", 200, ids=aid, json=report)
    sid = {"serviceId": svc["services"][0]["id"]}
    rec(admin, "GET", "/api/admin/agents", 200, params={"q": code})
    rec(admin, "GET", "/api/admin/agents/{agentId}", 200, ids=aid)
    rec(admin, "GET", "/api/admin/agents/{agentId}", 404, ids={"agentId": "agt_x"})
    rec(admin, "GET", "/api/admin/capsule-services", 200)
    rec(admin, "GET", "/api/admin/capsule-services", 422, params={"status": "NOPE"})
    for sub in ("", "/manifest", "/health", "/configs", "/actions"):
        rec(admin, "GET", "/api/admin/capsule-services/{serviceId}" + sub, 200, ids=sid)
    rec(admin, "GET", "/api/admin/capsule-services/{serviceId}", 404, ids={"serviceId": "svc_x"})

    rec(
        admin,
        "GET",
        "/api/admin/capsule-services/{serviceId}/actions/{actionName}",
        404,
        ids={**sid, "actionName": "nope"},
    )
    _prepare(rec, admin, agent, {**sid, "actionName": "ping"})

    # Commands: execute, poll, result, detail, cancel, retry.
    ping = {**sid, "actionName": "ping"}
    cmd = rec(
        admin,
        "POST",
        "/api/admin/capsule-services/{serviceId}/actions/{actionName}",
        200,
        ids=ping,
        json={"payload": {"n": 1}},
    )
    rec(
        admin,
        "POST",
        "/api/admin/capsule-services/{serviceId}/actions/{actionName}",
        422,
        ids={**sid, "actionName": "drop"},
        json={},
    )
    rec(agent, "GET", "/api/agents/{agentId}/commands", 200, ids=aid, params={"limit": 5})
    rec(agent, "GET", "/api/agents/{agentId}/commands", 422, ids=aid, params={"waitSeconds": -1})
    rec(
        agent,
        "POST",
        "/api/agents/{agentId}/commands/{commandId}/result",
        200,
        ids={**aid, "commandId": cmd["id"]},
        json={"success": True, "message": "pong", "data": {"n": 1}},
    )
    rec(
        agent,
        "POST",
        "/api/agents/{agentId}/commands/{commandId}/result",
        409,
        ids={**aid, "commandId": cmd["id"]},
        json={"success": True},
    )
    cid = {"commandId": cmd["id"]}
    rec(admin, "GET", "/api/admin/commands", 200)
    rec(admin, "GET", "/api/admin/commands/{commandId}", 200, ids=cid)
    second = rec(
        admin,
        "POST",
        "/api/admin/capsule-services/{serviceId}/actions/{actionName}",
        200,
        ids=ping,
        json={},
    )
    cancelled = {"commandId": second["id"]}
    rec(admin, "POST", "/api/admin/commands/{commandId}/cancel", 200, ids=cancelled)
    rec(admin, "POST", "/api/admin/commands/{commandId}/cancel", 409, ids=cid)
    rec(admin, "POST", "/api/admin/commands/{commandId}/retry", 200, ids=cancelled, json={})
    rec(admin, "POST", "/api/admin/commands/{commandId}/retry", 409, ids=cid, json={})
    rec(admin, "POST", "/api/admin/capsule-services/{serviceId}/transfer", 422, ids=sid, json={})

    # Capsule Bus.
    route_body = {
        "name": "r",
        "match": {"eventType": "order.created", "sourceServiceCode": code + "-svc"},
        "target": {"serviceCode": code + "-svc", "actionName": "ping"},
        "inputMapping": {"n": "$.payload.n"},
        "status": "DRY_RUN",
    }
    route = rec(admin, "POST", "/api/admin/bus/routes", 200, json=route_body)
    rid = {"routeId": route["id"]}
    rec(admin, "POST", "/api/admin/bus/routes", 422, json={"name": "r"})
    rec(admin, "GET", "/api/admin/bus/routes", 200)
    rec(admin, "GET", "/api/admin/bus/routes/{routeId}", 200, ids=rid)
    rec(admin, "GET", "/api/admin/bus/routes/{routeId}", 404, ids={"routeId": "brt_x"})
    rec(admin, "PUT", "/api/admin/bus/routes/{routeId}", 200, ids=rid, json=route_body)
    event = {"eventType": "order.created", "sourceServiceCode": code + "-svc", "payload": {"n": 2}}
    rec(agent, "POST", "/api/agents/{agentId}/bus/events", 200, ids=aid, json=event)
    rec(agent, "POST", "/api/agents/{agentId}/bus/events", 422, ids=aid, json={"eventType": ""})
    rec(admin, "POST", "/api/admin/bus/routes/{routeId}/simulate", 200, ids=rid, json={})
    rec(admin, "POST", "/api/admin/bus/routes/simulate", 200, json={"route": route_body})
    rec(admin, "GET", "/api/admin/bus/events", 200)
    rec(admin, "GET", "/api/admin/bus/audit", 200)
    rec(admin, "DELETE", "/api/admin/bus/routes/{routeId}", 200, ids=rid)

    # Topics.
    topic_body = {"namespace": "oa", "tenant": "default", "name": unique("t")}
    topic = rec(admin, "POST", "/api/admin/topics", 200, json=topic_body)
    rec(admin, "POST", "/api/admin/topics", 409, json=topic_body)
    rec(admin, "GET", "/api/admin/topics", 200, params={"namespace": "oa"})
    rec(admin, "GET", "/api/admin/topics/{topic}", 200, ids={"topic": topic["topic"]})
    rec(admin, "GET", "/api/admin/topics/{topic}", 404, ids={"topic": "a.b.c"})
    rec(agent, "GET", "/api/agents/{agentId}/topics", 200, ids=aid)
    rec(
        agent,
        "POST",
        "/api/agents/{agentId}/topics/publish",
        200,
        ids=aid,
        json={"topic": topic["topic"], "payload": {"x": 1}},
    )
    rec(agent, "POST", "/api/agents/{agentId}/topics/publish", 422, ids=aid, json={"topic": "x"})
    rec(
        agent,
        "GET",
        "/api/agents/{agentId}/topics/subscribe/{subscriptionId}",
        422,
        ids={**aid, "subscriptionId": "s"},
        params={"topic": topic["topic"], "from": "never"},
    )
    peek = "/api/admin/topics/{topic}/messages"
    rec(admin, "GET", peek, 200, ids={"topic": topic["topic"]})
    rec(admin, "GET", peek, 200, ids={"topic": topic["topic"]}, params={"partition": 0, "from": 0})
    rec(admin, "GET", peek, 422, ids={"topic": topic["topic"]}, params={"limit": 0})
    rec(admin, "GET", peek, 404, ids={"topic": "a.b.c"})
    _subscriptions(rec, admin, agent, topic["topic"])
    rec(admin, "DELETE", "/api/admin/topics/{topic}", 200, ids={"topic": topic["topic"]})

    # Audit, observability, maintenance, backup.
    audit = rec(admin, "GET", "/api/admin/audit-events", 200, params={"pageSize": 5})
    rec(admin, "GET", "/api/admin/audit-events", 422, params={"from": "yesterday"})
    rec(
        admin,
        "GET",
        "/api/admin/audit-events/{auditEventId}",
        200,
        ids={"auditEventId": audit[0]["id"]},
    )
    rec(admin, "GET", "/api/admin/audit-events/export", 200, params={"format": "json"})
    rec(admin, "GET", "/api/admin/audit-events/export", 200, params={"format": "csv"})
    rec(admin, "GET", "/api/admin/dashboard/summary", 200)
    rec(admin, "GET", "/api/admin/metrics", 200)
    rec(admin, "GET", "/api/admin/diagnostics/runtime", 200)
    rec(admin, "GET", "/api/admin/settings/maintenance", 200)
    rec(admin, "PATCH", "/api/admin/settings/maintenance", 422, json={"nope": 1})
    rec(admin, "PATCH", "/api/admin/settings/maintenance", 200, json={})
    rec(admin, "POST", "/api/admin/maintenance/run", 200)
    # PostgreSQL is backed up with pg_dump: the route answers 409 BACKUP_UNSUPPORTED_ENGINE.
    rec(admin, "POST", "/api/admin/backup/sqlite", 409 if ENGINE == "postgres" else 200)

    # Agent standing, then the route that answers only for a live session.
    rec(admin, "POST", "/api/admin/agents/{agentId}/disable", 200, ids=aid)
    rec(agent, "POST", "/api/agents/{agentId}/heartbeat", 403, ids=aid, json={})
    rec(admin, "POST", "/api/admin/agents/{agentId}/enable", 200, ids=aid)
    rec(admin, "POST", "/api/admin/agents/{agentId}/revoke", 200, ids=aid)
    rec(anon, "GET", "/api/admin/events/stream", 401)
    rec(admin, "POST", "/api/admin/auth/logout", 200)
    for client in (anon, admin, agent):
        client.close()
    return rec.answers


def _validator(spec: dict[str, Any], schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    # The document's own components resolve the schema's "#/components/..." references.
    return jsonschema.Draft202012Validator({**schema, "components": spec["components"]})


def test_the_document_is_valid_openapi_3_1(srv: ServerProcess) -> None:
    spec = httpx.get(srv.url + "/api/openapi.json", timeout=30).json()
    validate(spec)
    assert spec["openapi"].startswith("3.1")
    assert "HTTPValidationError" not in spec["components"]["schemas"]


def test_every_answer_matches_the_schema_its_operation_declares(srv: ServerProcess) -> None:
    spec = httpx.get(srv.url + "/api/openapi.json", timeout=30).json()
    answers = exercise(srv.url)
    problems: list[str] = []
    for a in answers:
        where = f"{a.method} {a.template} -> {a.response.status_code}"
        operation = spec["paths"].get(a.template, {}).get(a.method.lower())
        if operation is None:
            problems.append(f"{where}: no such operation in the document")
            continue
        declared = operation["responses"].get(str(a.response.status_code))
        if declared is None:
            problems.append(f"{where}: status not declared ({sorted(operation['responses'])})")
            continue
        media = a.response.headers.get("content-type", "").split(";")[0]
        content = declared.get("content", {})
        if media not in content:
            problems.append(f"{where}: {media} not declared ({sorted(content)})")
            continue
        if media != "application/json":
            continue
        validator = _validator(spec, content[media]["schema"])
        for error in validator.iter_errors(a.response.json()):
            path = "/".join(str(p) for p in error.absolute_path)
            problems.append(f"{where}: at {path or '(root)'}: {error.message[:200]}")
    assert not problems, "\n".join(problems)
    # Every operation of the document was driven at least once.
    driven = {(a.method.lower(), a.template) for a in answers}
    missing = [
        f"{m.upper()} {p}"
        for p, item in spec["paths"].items()
        for m in item
        if (m, p) not in driven
    ]
    assert not missing, missing
