"""Responses match the wire contract: shapes, error codes, audit actions, ids and statuses.

A realistic governance flow runs once against a server of this module's own (so its audit log
holds nothing else); each answer is recorded under a step name and validated against the
response schema the contract (``opstage-ce-v0.1.yaml``, OpenAPI 3.1, so JSON Schema 2020-12)
declares for that path, method and status — ``$ref``s resolved through a ``referencing``
registry, ``date-time`` formats checked. Error statuses an operation does not list fall back to
the document's standard responses ("any endpoint MAY return …"), and any other error status to
``ErrorEnvelope`` ("Backend MUST always wrap error bodies in ErrorEnvelope").

Where the contract's files disagree with each other, the OpenAPI document (the wire) wins:
``id-prefixes.json`` says ``evt_``/``hlt_``/``res_`` where the OpenAPI patterns say
``aud_``/``hlr_``/``crs_``; ``status-enums.json`` lists CapsuleServiceStatus
PENDING/UP/DEGRADED/… and CommandStatus CANCELED/DISPATCHED where the OpenAPI says
UNKNOWN/HEALTHY/UNHEALTHY/STALE/OFFLINE and CANCELLED. Codes and audit actions beyond the
contract are accepted only when ``docs/compatibility.md`` documents them.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import yaml
from jsonschema import Draft202012Validator
from opstage_testing.clients import AdminClient, AgentClient
from opstage_testing.contracts import contract_dir
from opstage_testing.inprocess import InProcessServer
from opstage_testing.server import ADMIN_PASSWORD, ADMIN_USERNAME, ServerProcess
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from ..conftest import unique

REPO_ROOT = Path(__file__).resolve().parents[4]
COMPATIBILITY_DOC = REPO_ROOT / "docs" / "compatibility.md"
URI = "urn:opstage:contract:opstage-ce-v0.1"


CONTRACTS = contract_dir()
pytestmark = pytest.mark.skipif(CONTRACTS is None, reason="contract not found")


@cache
def spec() -> dict[str, Any]:
    assert CONTRACTS is not None
    loaded: dict[str, Any] = yaml.safe_load((CONTRACTS / "opstage-ce-v0.1.yaml").read_text())
    return loaded


@cache
def contract_json(name: str) -> Any:
    assert CONTRACTS is not None
    return json.loads((CONTRACTS / name).read_text())


@cache
def registry() -> Registry[Any]:
    return Registry().with_resource(URI, Resource(contents=spec(), specification=DRAFT202012))


def _pointer(*parts: str) -> str:
    return "/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


def _resolve(pointer: str) -> Any:
    node: Any = spec()
    for part in pointer.lstrip("/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


# Error statuses any endpoint may return (the document's description) → components/responses.
STANDARD_ERRORS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    409: "Conflict",
    410: "Gone",
    413: "PayloadTooLarge",
    422: "UnprocessableEntity",
    500: "InternalError",
}


def schema_pointer(path: str, method: str, status: int) -> str:
    """The JSON pointer of the schema the contract declares for this response."""
    operation = spec()["paths"][path][method.lower()]
    responses = operation["responses"]
    if str(status) in responses:
        pointer = _pointer("paths", path, method.lower(), "responses", str(status))
    elif status >= 400 and status in STANDARD_ERRORS:
        pointer = _pointer("components", "responses", STANDARD_ERRORS[status])
    elif status >= 400:
        return _pointer("components", "schemas", "ErrorEnvelope")
    else:
        raise AssertionError(f"the contract declares no {status} for {method} {path}")
    response = _resolve(pointer)
    if "$ref" in response:
        pointer = response["$ref"].lstrip("#")
        response = _resolve(pointer)
    assert "application/json" in response.get("content", {}), (path, method, status)
    return pointer + "/content/application~1json/schema"


def schema_errors(pointer: str, body: Any) -> list[str]:
    validator = Draft202012Validator(
        {"$ref": URI + "#" + quote(pointer, safe="/~")},
        registry=registry(),
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )
    return sorted(f"{e.json_path}: {e.message}"[:300] for e in validator.iter_errors(body))


def response_errors(path: str, method: str, status: int, body: Any) -> list[str]:
    return schema_errors(schema_pointer(path, method, status), body)


# --- the contract's catalogues, and the extensions docs/compatibility.md documents ---------


@cache
def error_catalogue() -> dict[str, int]:
    doc = contract_json("errors.json")
    return {c["code"]: c["httpStatus"] for g in doc["groups"] for c in g["codes"]}


@cache
def audit_catalogue() -> dict[str, dict[str, Any]]:
    return {a["name"]: a for a in contract_json("enums/audit-actions.json")["actions"]}


EXTENSION_ERROR_CODES = {
    "REGISTRATION_TOKEN_SCOPE_MISMATCH": 403,
    "AGENT_OFFLINE": 409,
    "PAYLOAD_TOO_LARGE": 413,
    "UNSUPPORTED_MEDIA_TYPE": 415,
    "METHOD_NOT_ALLOWED": 405,
    "RATE_LIMITED": 429,
}
EXTENSION_AUDIT_ACTIONS = {
    "agent.token.rotated",
    "service.owner.changed",
    "command.retried",
    "service.action.prepare_requested",
    "registration_token.deleted",
}


def test_extensions_are_documented() -> None:
    text = COMPATIBILITY_DOC.read_text()
    for name in [*EXTENSION_ERROR_CODES, *EXTENSION_AUDIT_ACTIONS]:
        assert f"`{name}`" in text, f"{name} is accepted here but not in docs/compatibility.md"


def catalogue_problem(code: str, status: int) -> str | None:
    known = error_catalogue().get(code, EXTENSION_ERROR_CODES.get(code))
    if known is None:
        return f"{code} is not in errors.json (nor a documented extension)"
    if known != status:
        return f"{code} answered {status}; errors.json lists {known}"
    return None


def check_error(r: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """Status, the ErrorEnvelope schema, a catalogued code; returns ``error``."""
    assert r.status_code == status, f"expected {status}, got {r.status_code}: {r.text}"
    assert r.headers["content-type"].startswith("application/json"), r.headers
    body = r.json()
    problems = schema_errors(_pointer("components", "schemas", "ErrorEnvelope"), body)
    assert not problems, problems
    error: dict[str, Any] = body["error"]
    if code is not None:
        assert error["code"] == code, body
    problem = catalogue_problem(error["code"], status)
    assert problem is None, problem
    return error


# --- the flow ------------------------------------------------------------------------------


@dataclass
class Exchange:
    method: str
    path: str  # the contract's template
    status: int
    body: Any


@dataclass
class Flow:
    srv: ServerProcess
    owner: AdminClient
    agent: AgentClient
    seen: dict[str, Exchange] = field(default_factory=dict)

    def record(self, name: str, method: str, template: str, r: httpx.Response) -> Any:
        try:
            body = r.json()
        except ValueError:
            body = r.text
        self.seen[name] = Exchange(method, template, r.status_code, body)
        return body.get("data") if isinstance(body, dict) else None


A = "/api/admin"
STEPS: dict[str, tuple[str, str, int, str | None]] = {
    # name: (method, contract path, expected status, expected error code)
    "login_failed": ("POST", f"{A}/auth/login", 401, "LOGIN_FAILED"),
    "login": ("POST", f"{A}/auth/login", 200, None),
    "me": ("GET", f"{A}/auth/me", 200, None),
    "csrf": ("GET", f"{A}/auth/csrf", 200, None),
    "me_without_session": ("GET", f"{A}/auth/me", 401, "UNAUTHORIZED"),
    "create_token": ("POST", f"{A}/registration-tokens", 200, None),
    "create_token_invalid": ("POST", f"{A}/registration-tokens", 422, "VALIDATION_FAILED"),
    "create_token_without_csrf": ("POST", f"{A}/registration-tokens", 403, "CSRF_INVALID"),
    "list_tokens": ("GET", f"{A}/registration-tokens", 200, None),
    "revoke_token": ("POST", f"{A}/registration-tokens/{{tokenId}}/revoke", 200, None),
    "register": ("POST", "/api/agents/register", 200, None),
    "register_token_used": ("POST", "/api/agents/register", 409, "REGISTRATION_TOKEN_USED"),
    "register_invalid": ("POST", "/api/agents/register", 422, "VALIDATION_FAILED"),
    "heartbeat": ("POST", "/api/agents/{agentId}/heartbeat", 200, None),
    "heartbeat_bad_token": (
        "POST",
        "/api/agents/{agentId}/heartbeat",
        401,
        "AGENT_TOKEN_INVALID",
    ),
    "report": ("POST", "/api/agents/{agentId}/services/report", 200, None),
    "report_invalid": (
        "POST",
        "/api/agents/{agentId}/services/report",
        422,
        "VALIDATION_FAILED",
    ),
    "list_agents": ("GET", f"{A}/agents", 200, None),
    "list_agents_invalid": ("GET", f"{A}/agents", 422, "VALIDATION_FAILED"),
    "get_agent": ("GET", f"{A}/agents/{{agentId}}", 200, None),
    "get_agent_missing": ("GET", f"{A}/agents/{{agentId}}", 404, "AGENT_NOT_FOUND"),
    "disable_agent": ("POST", f"{A}/agents/{{agentId}}/disable", 200, None),
    "enable_agent": ("POST", f"{A}/agents/{{agentId}}/enable", 200, None),
    "revoke_agent": ("POST", f"{A}/agents/{{agentId}}/revoke", 200, None),
    "list_services": ("GET", f"{A}/capsule-services", 200, None),
    "service_detail": ("GET", f"{A}/capsule-services/{{serviceId}}", 200, None),
    "service_detail_without_health": (
        "GET",
        f"{A}/capsule-services/{{serviceId}}",
        200,
        None,
    ),
    "service_missing": (
        "GET",
        f"{A}/capsule-services/{{serviceId}}",
        404,
        "CAPSULE_SERVICE_NOT_FOUND",
    ),
    "manifest": ("GET", f"{A}/capsule-services/{{serviceId}}/manifest", 200, None),
    "health": ("GET", f"{A}/capsule-services/{{serviceId}}/health", 200, None),
    # No report yet: 404 (docs/compatibility.md, "Absent instead of null").
    "health_without_health": ("GET", f"{A}/capsule-services/{{serviceId}}/health", 404, None),
    "configs": ("GET", f"{A}/capsule-services/{{serviceId}}/configs", 200, None),
    "actions": ("GET", f"{A}/capsule-services/{{serviceId}}/actions", 200, None),
    "actions_with_timeouts": ("GET", f"{A}/capsule-services/{{serviceId}}/actions", 200, None),
    "prepare": ("GET", f"{A}/capsule-services/{{serviceId}}/actions/{{actionName}}", 200, None),
    "execute": ("POST", f"{A}/capsule-services/{{serviceId}}/actions/{{actionName}}", 200, None),
    "execute_without_confirmation": (
        "POST",
        f"{A}/capsule-services/{{serviceId}}/actions/{{actionName}}",
        422,
        "ACTION_REQUIRES_CONFIRMATION",
    ),
    "execute_unknown_action": (
        "POST",
        f"{A}/capsule-services/{{serviceId}}/actions/{{actionName}}",
        404,
        "ACTION_NOT_FOUND",
    ),
    "get_command_pending": ("GET", f"{A}/commands/{{commandId}}", 200, None),
    "poll": ("GET", "/api/agents/{agentId}/commands", 200, None),
    "result": ("POST", "/api/agents/{agentId}/commands/{commandId}/result", 200, None),
    "result_again": (
        "POST",
        "/api/agents/{agentId}/commands/{commandId}/result",
        409,
        "COMMAND_ALREADY_COMPLETED",
    ),
    "result_unknown_command": (
        "POST",
        "/api/agents/{agentId}/commands/{commandId}/result",
        404,
        "COMMAND_NOT_FOUND",
    ),
    "get_command": ("GET", f"{A}/commands/{{commandId}}", 200, None),
    "get_command_missing": ("GET", f"{A}/commands/{{commandId}}", 404, "COMMAND_NOT_FOUND"),
    "list_commands": ("GET", f"{A}/commands", 200, None),
    "list_audit": ("GET", f"{A}/audit-events", 200, None),
    "dashboard": ("GET", f"{A}/dashboard/summary", 200, None),
    "metrics": ("GET", f"{A}/metrics", 200, None),
    "list_audit_invalid": ("GET", f"{A}/audit-events", 422, "VALIDATION_FAILED"),
    "get_audit": ("GET", f"{A}/audit-events/{{auditEventId}}", 200, None),
    "list_users": ("GET", f"{A}/users", 200, None),
    "list_users_as_viewer": ("GET", f"{A}/users", 403, "FORBIDDEN"),
    "create_user": ("POST", f"{A}/users", 200, None),
    "create_user_duplicate": ("POST", f"{A}/users", 409, "USER_ALREADY_EXISTS"),
    "update_user": ("PATCH", f"{A}/users/{{userId}}", 200, None),
    "update_user_missing": ("PATCH", f"{A}/users/{{userId}}", 404, "USER_NOT_FOUND"),
    "demote_last_owner": ("PATCH", f"{A}/users/{{userId}}", 409, "LAST_OWNER_REQUIRED"),
    "reset_password": ("POST", f"{A}/users/{{userId}}/reset-password", 200, None),
    "system_health": ("GET", "/api/system/health", 200, None),
    "system_version": ("GET", "/api/system/version", 200, None),
    "logout": ("POST", f"{A}/auth/logout", 200, None),
}

GHOST = "0" * 26
# The contract's own example of a service report (POST /api/agents/{agentId}/services/report).
BILLING = {
    "code": "demo-billing",
    "name": "Demo Billing Service",
    "runtime": "nodejs",
    "manifest": {
        "kind": "CapsuleService",
        "schemaVersion": "1.0",
        "code": "demo-billing",
        "name": "Demo Billing Service",
        "version": "0.1.0",
        "runtime": "nodejs",
        "agentMode": "embedded",
    },
    "configs": [
        {
            "key": "BILLING_API_URL",
            "type": "string",
            "valuePreview": "https://billing.example.com",
            "sensitive": False,
        }
    ],
    "actions": [
        {
            "name": "restart",
            "label": "Restart service",
            "dangerLevel": "MEDIUM",
            "requiresConfirmation": True,
        }
    ],
    "health": {"status": "UP", "message": "5 dependencies up"},
}
# A service reported before its first health probe, its action fully declared.
QUIET = {
    "code": "demo-quiet",
    "name": "Demo Quiet Service",
    "version": "0.1.0",
    "runtime": "python",
    "manifest": {
        "kind": "CapsuleService",
        "code": "demo-quiet",
        "name": "Demo Quiet Service",
        "version": "0.1.0",
        "runtime": "python",
        "agentMode": "embedded",
    },
    "configs": [
        {
            "key": "MODE",
            "label": "Mode",
            "type": "string",
            "source": "env",
            "editable": False,
            "sensitive": False,
            "valuePreview": "fast",
        }
    ],
    "actions": [
        {
            "name": "ping",
            "label": "Ping",
            "description": "Answer pong.",
            "dangerLevel": "LOW",
            "requiresConfirmation": False,
            "inputSchema": {"type": "object", "properties": {}},
            "timeoutSeconds": 30,
        }
    ],
}


def _answer_prepare(agent: AgentClient, out: list[Any]) -> None:
    for c in agent.poll(wait=15):
        out.append(c)
        reply = {"initialPayload": {"graceful": True}, "currentState": {"running": True}}
        agent.result(c["id"], success=True, data=reply)


def run_flow(srv: ServerProcess) -> Flow:
    """One long, linear story; every answer recorded under its step name."""
    url = srv.url
    owner = AdminClient(url)
    anon = httpx.Client(base_url=url, timeout=40)
    creds = {"username": ADMIN_USERNAME, "password": ADMIN_PASSWORD}

    def rec(name: str, r: httpx.Response) -> Any:
        method, path, _, _ = STEPS[name]
        return flow.record(name, method, path, r)

    # Identity.
    bad = anon.post(f"{A}/auth/login", json={**creds, "password": "not-the-password"})
    session = owner.post(f"{A}/auth/login", json=creds)
    flow = Flow(srv, owner, AgentClient(url, "agt_" + GHOST, "none"))
    rec("login_failed", bad)
    owner.csrf = rec("login", session)["csrfToken"]
    me = rec("me", owner.get(f"{A}/auth/me"))
    owner.csrf = rec("csrf", owner.get(f"{A}/auth/csrf"))["csrfToken"]
    rec("me_without_session", anon.get(f"{A}/auth/me"))

    # Registration tokens.
    token = rec(
        "create_token",
        owner.post(
            f"{A}/registration-tokens", json={"name": "demo-host-1", "expiresInSeconds": 3600}
        ),
    )
    rec(
        "create_token_invalid", owner.post(f"{A}/registration-tokens", json={"expiresInSeconds": 1})
    )
    rec(
        "create_token_without_csrf",
        owner.post(f"{A}/registration-tokens", json={}, headers={"X-CSRF-Token": ""}),
    )
    spare = owner.data("POST", f"{A}/registration-tokens", json={"name": "spare"})
    rec("revoke_token", owner.post(f"{A}/registration-tokens/{spare['id']}/revoke"))
    rec("list_tokens", owner.get(f"{A}/registration-tokens"))

    # Agent registration and contact (the contract's example bodies).
    code = unique("demo-prod")
    register_body = {
        "registrationToken": token["rawToken"],
        "agent": {"code": code, "name": code, "mode": "embedded", "runtime": "nodejs"},
    }
    reg = rec("register", anon.post("/api/agents/register", json=register_body))
    rec("register_token_used", anon.post("/api/agents/register", json=register_body))
    rec("register_invalid", anon.post("/api/agents/register", json={"registrationToken": "x"}))
    agent = flow.agent = AgentClient(url, reg["agentId"], reg["agentToken"])
    hb = f"/api/agents/{agent.agent_id}/heartbeat"
    rec("heartbeat", agent.post(hb, json={"health": {"status": "UP", "message": "ok"}}))
    rec(
        "heartbeat_bad_token",
        anon.post(hb, json={}, headers={"Authorization": "Bearer opstage_agent_nope"}),
    )
    report = f"/api/agents/{agent.agent_id}/services/report"
    reported = rec("report", agent.post(report, json={"services": [BILLING, QUIET]}))
    rec("report_invalid", agent.post(report, json={"services": "demo-billing"}))
    ids = {s["code"]: s["id"] for s in reported["services"]}
    billing, quiet = ids["demo-billing"], ids["demo-quiet"]

    # Operator views.
    agents = f"{A}/agents"
    rec("list_agents", owner.get(agents))
    rec("list_agents_invalid", owner.get(agents, params={"status": "ASLEEP"}))
    rec("get_agent", owner.get(f"{agents}/{agent.agent_id}"))
    rec("get_agent_missing", owner.get(f"{agents}/agt_{GHOST}"))
    rec("disable_agent", owner.post(f"{agents}/{agent.agent_id}/disable"))
    rec("enable_agent", owner.post(f"{agents}/{agent.agent_id}/enable"))
    doomed = owner.create_token(name="doomed")
    doomed_id = anon.post(
        "/api/agents/register",
        json={"registrationToken": doomed, "agent": {"code": unique("doomed"), "mode": "embedded"}},
    ).json()["data"]["agentId"]
    rec("revoke_agent", owner.post(f"{agents}/{doomed_id}/revoke"))
    agent.heartbeat()
    svcs = f"{A}/capsule-services"
    rec("list_services", owner.get(svcs))
    rec("service_detail", owner.get(f"{svcs}/{billing}"))
    rec("service_detail_without_health", owner.get(f"{svcs}/{quiet}"))
    rec("service_missing", owner.get(f"{svcs}/svc_{GHOST}"))
    rec("manifest", owner.get(f"{svcs}/{billing}/manifest"))
    rec("health", owner.get(f"{svcs}/{billing}/health"))
    rec("health_without_health", owner.get(f"{svcs}/{quiet}/health"))
    rec("configs", owner.get(f"{svcs}/{billing}/configs"))
    rec("actions", owner.get(f"{svcs}/{billing}/actions"))
    rec("actions_with_timeouts", owner.get(f"{svcs}/{quiet}/actions"))

    # Prepare, execute, poll, result.
    seen: list[Any] = []
    t = threading.Thread(target=_answer_prepare, args=(agent, seen))
    t.start()
    rec("prepare", owner.get(f"{svcs}/{billing}/actions/restart"))
    t.join(20)
    restart = f"{svcs}/{billing}/actions/restart"
    rec("execute_without_confirmation", owner.post(restart, json={"payload": {}}))
    rec("execute_unknown_action", owner.post(f"{svcs}/{billing}/actions/explode", json={}))
    cmd = rec(
        "execute",
        owner.post(restart, json={"payload": {"graceful": True}, "confirmation": True}),
    )
    rec("get_command_pending", owner.get(f"{A}/commands/{cmd['id']}"))
    rec("poll", agent.get(f"/api/agents/{agent.agent_id}/commands"))
    result = {
        "success": True,
        "message": "Service restarted in 3.2s",
        "data": {"pidBefore": 1024, "pidAfter": 1097},
        "startedAt": "2026-05-01T12:00:00.500Z",
        "finishedAt": "2026-05-01T12:00:03.700Z",
    }
    rec("result", agent.result(cmd["id"], **result))
    rec("result_again", agent.result(cmd["id"], **result))
    rec("result_unknown_command", agent.result("cmd_" + GHOST, **result))
    rec("get_command", owner.get(f"{A}/commands/{cmd['id']}"))
    rec("get_command_missing", owner.get(f"{A}/commands/cmd_{GHOST}"))
    rec("list_commands", owner.get(f"{A}/commands", params={"type": "ACTION_EXECUTE"}))

    # Audit.
    rec("dashboard", owner.get(f"{A}/dashboard/summary"))
    rec("metrics", owner.get(f"{A}/metrics"))
    events = rec("list_audit", owner.get(f"{A}/audit-events", params={"pageSize": 100}))
    rec("list_audit_invalid", owner.get(f"{A}/audit-events", params={"sort": "-nonsense"}))
    rec("get_audit", owner.get(f"{A}/audit-events/{events[0]['id']}"))

    # Users.
    users = f"{A}/users"
    password = "viewer-password-" + unique("pw")
    new_user = {"username": unique("viewer"), "password": password, "role": "viewer"}
    created = rec("create_user", owner.post(users, json=new_user))
    rec("create_user_duplicate", owner.post(users, json=new_user))
    rec("list_users", owner.get(users))
    rec("update_user", owner.patch(f"{users}/{created['id']}", json={"displayName": "Viewer"}))
    rec("update_user_missing", owner.patch(f"{users}/usr_{GHOST}", json={"displayName": "x"}))
    rec("demote_last_owner", owner.patch(f"{users}/{me['user']['id']}", json={"role": "viewer"}))
    rec(
        "reset_password",
        owner.post(f"{users}/{created['id']}/reset-password", json={"password": password + "2"}),
    )
    with AdminClient(url) as viewer:
        viewer.login(new_user["username"], password + "2")
        rec("list_users_as_viewer", viewer.get(users))

    # System, then the end of the session.
    rec("system_health", anon.get("/api/system/health"))
    rec("system_version", anon.get("/api/system/version"))
    with AdminClient(url) as leaving:
        leaving.login()
        rec("logout", leaving.post(f"{A}/auth/logout"))
    anon.close()
    return flow


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory, database_factory: Any) -> Iterator[ServerProcess]:
    data_dir = tmp_path_factory.mktemp("contract-server")
    server = InProcessServer(data_dir, database_factory(data_dir, migrated=True), {}).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def flow(srv: ServerProcess) -> Iterator[Flow]:
    f = run_flow(srv)
    yield f
    f.owner.close()
    f.agent.close()


@pytest.fixture(scope="module")
def owner(srv: ServerProcess) -> Iterator[AdminClient]:
    with AdminClient(srv.url) as c:
        yield c.login()


# --- shapes --------------------------------------------------------------------------------


def test_flow_covers_every_contract_operation() -> None:
    """Every operation of the contract that the server serves is exercised by the flow."""
    exercised = {(m, p) for m, p, _, _ in STEPS.values()}
    unserved: set[tuple[str, str]] = set()
    for path, item in spec()["paths"].items():
        for method in item:
            if method in ("get", "post", "put", "patch", "delete"):
                op = (method.upper(), path)
                assert op in exercised or op in unserved, f"flow does not exercise {op}"


@pytest.mark.parametrize("name", list(STEPS))
def test_response_matches_contract(flow: Flow, name: str) -> None:
    method, path, status, code = STEPS[name]
    assert name in flow.seen, f"the flow did not reach {name}"
    ex = flow.seen[name]
    assert ex.status == status, f"{name}: expected {status}, got {ex.status}: {ex.body}"
    if code is not None:
        assert ex.body["error"]["code"] == code, ex.body
    problems = response_errors(path, method, status, ex.body)
    assert not problems, f"{method} {path} {status}:\n" + "\n".join(problems)


def test_error_codes_are_catalogued(flow: Flow) -> None:
    problems = []
    for name, ex in flow.seen.items():
        if ex.status >= 400:
            problem = catalogue_problem(ex.body["error"]["code"], ex.status)
            if problem:
                problems.append(f"{name}: {problem}")
    assert not problems, problems


def _all_audit(owner: AdminClient) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    page = 1
    while True:
        r = owner.get(f"{A}/audit-events", params={"pageSize": 100, "page": page})
        assert r.status_code == 200, r.text
        body = r.json()
        problems = response_errors(f"{A}/audit-events", "GET", 200, body)
        assert not problems, problems
        events += body["data"]
        if page * 100 >= body["pagination"]["total"]:
            return events
        page += 1


def test_audit_actions_are_catalogued(flow: Flow, owner: AdminClient) -> None:
    events = _all_audit(owner)
    seen = {e["action"] for e in events}
    for expected in ("session.login.succeeded", "agent.registered", "command.completed"):
        assert expected in seen, expected
    unknown = sorted(seen - set(audit_catalogue()) - EXTENSION_AUDIT_ACTIONS)
    assert not unknown, f"audit actions not in audit-actions.json: {unknown}"


def test_audit_actor_types_follow_the_catalogue(flow: Flow, owner: AdminClient) -> None:
    wrong = sorted(
        {
            (e["action"], e["actorType"], audit_catalogue()[e["action"]]["actorType"])
            for e in _all_audit(owner)
            if e["action"] in audit_catalogue()
            and e["actorType"] != audit_catalogue()[e["action"]]["actorType"]
        }
    )
    assert not wrong, f"(action, actorType, catalogue's actorType): {wrong}"


# --- ids, statuses and timestamps ----------------------------------------------------------

ULID = "[0-9A-HJKMNP-TV-Z]{26}"
# Keys whose value is a typed id of a known kind.
ID_KEYS = {
    "agentId": "agt",
    "serviceId": "svc",
    "commandId": "cmd",
    "userId": "usr",
    "createdByUserId": "usr",
    "tokenId": "tok",
    "registrationTokenId": "tok",
    "retryOfCommandId": "cmd",
    "sourceCommandId": "cmd",
}
NOT_IDS = {"requestId", "correlationId", "causationId", "eventId"}
OPAQUE = {"payload", "manifest", "inputSchema", "initialPayload", "currentState", "details"}


@cache
def id_prefixes() -> set[str]:
    """id-prefixes.json, plus the prefixes the OpenAPI's own patterns use (the wire wins)."""
    listed = {p["prefix"] for p in contract_json("enums/id-prefixes.json")["prefixes"]}
    patterns = re.findall(
        r"pattern: '\^([a-z]{3})_'",
        (CONTRACTS or Path()).joinpath("opstage-ce-v0.1.yaml").read_text(),
    )
    return listed | set(patterns)


def _walk(node: Any, key: str = "", in_result: bool = False) -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for k, v in node.items():
            if k in OPAQUE or (k == "data" and in_result):
                continue
            yield k, v
            yield from _walk(v, k, in_result or k == "result")
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item, key, in_result)


def _bodies(flow: Flow) -> Iterator[tuple[str, Any]]:
    for name, ex in flow.seen.items():
        if isinstance(ex.body, dict) and ex.status < 400:
            yield name, ex.body.get("data")


def test_ids_use_contract_prefixes(flow: Flow) -> None:
    prefixes = id_prefixes()
    problems = set()
    checked = 0
    for name, data in _bodies(flow):
        for key, value in _walk(data):
            if not isinstance(value, str) or key in NOT_IDS or value == "wks_default":
                continue  # the reference's one workspace has a fixed id, not a ULID
            if key != "id" and not key.endswith("Id"):
                continue
            checked += 1
            match = re.fullmatch(rf"([a-z]{{3}})_{ULID}", value)
            if match is None or match.group(1) not in prefixes:
                problems.add(f"{name}: {key}={value!r} is not <known prefix>_<ULID>")
            elif key in ID_KEYS and match.group(1) != ID_KEYS[key]:
                problems.add(f"{name}: {key}={value!r} should start {ID_KEYS[key]}_")
    assert checked > 50
    assert not problems, sorted(problems)


def wire_enum(name: str) -> set[str]:
    """status-enums.json's values, unless the OpenAPI names a different set (the wire wins)."""
    listed = {v["value"] for v in contract_json("enums/status-enums.json")["enums"][name]["values"]}
    schema_name = {"ActorType": "AuditActorType"}.get(name, name)
    schema = spec()["components"]["schemas"].get(schema_name, {})
    openapi = set(schema.get("enum", []))
    if openapi and openapi != listed and not openapi <= listed:
        return openapi
    return listed


# Which fields of which object (known by its id prefix) carry which enum.
STATUS_FIELDS = {
    "agt": {"status": "AgentStatus", "mode": "AgentMode"},
    "svc": {
        "status": "CapsuleServiceStatus",
        "healthStatus": "HealthStatus",
        "agentStatus": "AgentStatus",
    },
    "hlr": {"status": "HealthStatus"},
    "tok": {"status": "TokenStatus"},
    "cmd": {"status": "CommandStatus"},
    "act": {"dangerLevel": "DangerLevel"},
    "aud": {"result": "AuditResult", "actorType": "ActorType"},
}


def _objects(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for k, v in node.items():
            if k not in OPAQUE:
                yield from _objects(v)
    elif isinstance(node, list):
        for item in node:
            yield from _objects(item)


def test_statuses_use_contract_enums(flow: Flow) -> None:
    problems = set()
    checked = 0
    for name, data in _bodies(flow):
        for obj in _objects(data):
            prefix = str(obj.get("id") or "")[:3]
            for key, enum in STATUS_FIELDS.get(prefix, {}).items():
                if key in obj and obj[key] is not None:
                    checked += 1
                    if obj[key] not in wire_enum(enum):
                        problems.add(f"{name}: {prefix}.{key}={obj[key]!r} not in {enum}")
    assert checked > 30
    assert not problems, sorted(problems)


def test_timestamps_are_utc_rfc3339(flow: Flow) -> None:
    stamp = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")
    problems = set()
    for name, data in _bodies(flow):
        for key, value in _walk(data):
            is_time = key.endswith("At") or key == "timestamp"
            if is_time and value is not None and not stamp.fullmatch(str(value)):
                problems.add(f"{name}: {key}={value!r}")
    assert not problems, sorted(problems)


# --- the error envelope for framework-level failures ---------------------------------------


def test_malformed_json_is_422_with_issues(srv: ServerProcess, owner: AdminClient) -> None:
    with httpx.Client(base_url=srv.url, timeout=40) as anon:
        for client, path in ((owner, f"{A}/registration-tokens"), (anon, f"{A}/auth/login")):
            r = client.post(
                path, content=b'{"name": ', headers={"Content-Type": "application/json"}
            )
            error = check_error(r, 422, "VALIDATION_FAILED")
            issues = error["details"]["issues"]
            assert issues, error
            assert all(isinstance(i["path"], str) and i["message"] for i in issues), issues


def test_malformed_json_on_the_agent_api(flow: Flow) -> None:
    agent = flow.agent
    r = agent.post(
        f"/api/agents/{agent.agent_id}/heartbeat",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert check_error(r, 422, "VALIDATION_FAILED")["details"]["issues"]


def test_wrong_content_type_is_415(flow: Flow, owner: AdminClient) -> None:
    r = owner.post(
        f"{A}/registration-tokens", content=b"name=x", headers={"Content-Type": "text/plain"}
    )
    check_error(r, 415, "UNSUPPORTED_MEDIA_TYPE")
    agent = flow.agent
    r = agent.post(
        f"/api/agents/{agent.agent_id}/services/report",
        content=json.dumps({"services": [QUIET]}).encode(),
        headers={"Content-Type": "text/plain"},
    )
    check_error(r, 415, "UNSUPPORTED_MEDIA_TYPE")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/nothing-here"),
        ("GET", f"{A}/no-such-resource"),
        ("POST", f"{A}/agents/agt_{GHOST}/explode"),
        ("GET", f"/api/agents/agt_{GHOST}/nothing"),
    ],
)
def test_unknown_api_route_is_404_envelope(srv: ServerProcess, method: str, path: str) -> None:
    r = httpx.request(method, srv.url + path, timeout=40)
    check_error(r, 404, "NOT_FOUND")


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", f"{A}/agents", "GET"),
        ("PUT", f"/api/agents/agt_{GHOST}/heartbeat", "POST"),
        ("PATCH", "/api/system/health", "GET"),
    ],
)
def test_unknown_method_is_405_envelope(
    srv: ServerProcess, method: str, path: str, allowed: str
) -> None:
    r = httpx.request(method, srv.url + path, timeout=40)
    check_error(r, 405, "METHOD_NOT_ALLOWED")
    assert allowed in r.headers.get("allow", ""), r.headers
