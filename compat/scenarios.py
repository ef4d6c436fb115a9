"""The HTTP scenarios. Each runs once against each server; labels name what is compared.

Every route of the contract is reached, with its filters, pagination edges, wrong types and
missing objects. Scenarios run in order and share the ids they create (`side.vars`).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from .engine import Scenario, Side

MISSING = {
    "agent": "agt_00000000000000000000000000",
    "service": "svc_00000000000000000000000000",
    "command": "cmd_00000000000000000000000000",
    "token": "tok_00000000000000000000000000",
    "user": "usr_00000000000000000000000000",
    "route": "brt_00000000000000000000000000",
}

ACTIONS = [
    {
        "name": "echo",
        "label": "Echo",
        "dangerLevel": "LOW",
        "inputSchema": {"type": "object", "properties": {"message": {"type": "string"}}},
    },
    {"name": "wipe", "label": "Wipe", "dangerLevel": "HIGH", "requiresConfirmation": True},
    {"name": "slow", "label": "Slow", "dangerLevel": "LOW", "timeoutSeconds": 600},
]


def service_body(code: str) -> dict[str, Any]:
    return {
        "code": code,
        "name": f"Service {code}",
        "description": "compat scenario service",
        "version": "1.0.0",
        "runtime": "python",
        "manifest": {
            "kind": "CapsuleService",
            "code": code,
            "name": code,
            "version": "1.0.0",
            "runtime": "python",
            "agentMode": "embedded",
        },
        "health": {"status": "UP", "message": "ok"},
        "configs": [
            {"key": "db.url", "type": "string", "valuePreview": "postgres://…", "sensitive": False},
            {"key": "api.key", "type": "string", "sensitive": True, "secretRef": "env:API_KEY"},
        ],
        "actions": ACTIONS,
    }


def register(s: Side, label: str, code: str, service: str | None, prefix: str) -> None:
    r = s.call(f"{label} token", "POST", "/api/admin/registration-tokens", json={"name": code})
    raw = s.data(r).get("rawToken") or s.data(r).get("token")
    body: dict[str, Any] = {
        "registrationToken": raw,
        "agent": {"code": code, "name": f"Agent {code}", "mode": "embedded", "runtime": "python"},
    }
    if service:
        body["service"] = service_body(service)
    r = s.call(label, "POST", "/api/agents/register", json=body, auth="none")
    d = s.data(r)
    s.vars[f"{prefix}Id"] = d["agentId"]
    s.vars[f"{prefix}Token"] = d["agentToken"]
    s.vars[f"{prefix}RegToken"] = raw


def csrf(s: Side) -> dict[str, str]:
    """The prepare GET runs agent code: ours asks for the CSRF header there (docs row "Stricter
    than the contract"); the reference ignores it. The console sends it to both."""
    return {"X-CSRF-Token": s.csrf}


def poll(s: Side, auth: str = "agent", agent: str = "agentId") -> list[dict[str, Any]]:
    r = s.call("poll", "GET", f"/api/agents/{{{agent}}}/commands", auth=auth, record=False)
    return list(s.data(r) or [])


def answer_next(s: Side, success: bool = True, data: dict[str, Any] | None = None) -> None:
    """Plays the agent: waits for the next command, reports its result (not recorded)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for cmd in poll(s):
            body: dict[str, Any] = {"success": success, "message": "done"}
            if success:
                body["data"] = data or {}
            else:
                body["error"] = {"code": "BOOM", "message": "failed on purpose"}
            s.call(
                "answer",
                "POST",
                f"/api/agents/{{agentId}}/commands/{cmd['id']}/result",
                json=body,
                auth="agent",
                record=False,
            )
            return
        time.sleep(0.2)


# --- scenarios -------------------------------------------------------------------------------


def system(s: Side) -> None:
    s.call("GET /api/system/health", "GET", "/api/system/health", auth="none")
    s.call("GET /health", "GET", "/health", auth="none")
    s.call("GET /api/system/version", "GET", "/api/system/version", auth="none")
    s.call("unknown api route", "GET", "/api/does-not-exist", auth="none")
    s.call("unknown admin route", "GET", "/api/admin/does-not-exist")


def auth(s: Side) -> None:
    s.call(
        "login wrong password",
        "POST",
        "/api/admin/auth/login",
        json={"username": "admin@example.local", "password": "wrong-password-1"},
        auth="none",
    )
    s.call(
        "login unknown user",
        "POST",
        "/api/admin/auth/login",
        json={"username": "nobody@example.local", "password": "wrong-password-1"},
        auth="none",
    )
    s.call("login empty body", "POST", "/api/admin/auth/login", json={}, auth="none")
    s.call(
        "login username wrong type",
        "POST",
        "/api/admin/auth/login",
        json={"username": 12, "password": "x"},
        auth="none",
    )
    s.call(
        "login malformed JSON",
        "POST",
        "/api/admin/auth/login",
        content=b"{nope",
        headers={"Content-Type": "application/json"},
        auth="none",
    )
    s.login()
    s.call("me", "GET", "/api/admin/auth/me")
    s.call("csrf", "GET", "/api/admin/auth/csrf")
    s.call("me without session", "GET", "/api/admin/auth/me", auth="none")
    s.call("csrf without session", "GET", "/api/admin/auth/csrf", auth="none")
    s.call(
        "write without CSRF",
        "POST",
        "/api/admin/registration-tokens",
        json={"name": "x"},
        auth="nocsrf",
    )
    s.call(
        "write with wrong CSRF",
        "POST",
        "/api/admin/registration-tokens",
        json={"name": "x"},
        auth="nocsrf",
        headers={"X-CSRF-Token": "wrong"},
    )
    s.call("admin list without session", "GET", "/api/admin/agents", auth="none")
    s.call(
        "admin write without session",
        "POST",
        "/api/admin/registration-tokens",
        json={"name": "x"},
        auth="none",
    )
    s.call(
        "bogus session cookie",
        "GET",
        "/api/admin/auth/me",
        auth="none",
        headers={"Cookie": "opstage_session=bogus"},
    )


def logout(s: Side) -> None:
    s.call("logout", "POST", "/api/admin/auth/logout")
    s.call("me after logout", "GET", "/api/admin/auth/me")
    s.call("logout without session", "POST", "/api/admin/auth/logout", auth="none")
    s.login()


def registration_tokens(s: Side) -> None:
    r = s.call(
        "create",
        "POST",
        "/api/admin/registration-tokens",
        json={"name": "compat", "expiresInSeconds": 3600},
    )
    s.vars["tokId"] = s.data(r)["id"]
    s.call("create default name", "POST", "/api/admin/registration-tokens", json={})
    s.call("create no body", "POST", "/api/admin/registration-tokens")
    s.call(
        "create expiresInSeconds too small",
        "POST",
        "/api/admin/registration-tokens",
        json={"expiresInSeconds": 30},
    )
    s.call(
        "create expiresInSeconds wrong type",
        "POST",
        "/api/admin/registration-tokens",
        json={"expiresInSeconds": "soon"},
    )
    s.call("create name wrong type", "POST", "/api/admin/registration-tokens", json={"name": 5})
    s.call("list", "GET", "/api/admin/registration-tokens")
    for status in ("ACTIVE", "USED", "REVOKED", "EXPIRED"):
        s.call(
            f"list status={status}",
            "GET",
            "/api/admin/registration-tokens",
            params={"status": status},
        )
    s.call("list status=bogus", "GET", "/api/admin/registration-tokens", params={"status": "X"})
    s.call("delete active", "DELETE", "/api/admin/registration-tokens/{tokId}")
    s.call("revoke", "POST", "/api/admin/registration-tokens/{tokId}/revoke")
    s.call("revoke again", "POST", "/api/admin/registration-tokens/{tokId}/revoke")
    s.call("delete revoked", "DELETE", "/api/admin/registration-tokens/{tokId}")
    s.call("delete again", "DELETE", "/api/admin/registration-tokens/{tokId}")
    s.call("revoke missing", "POST", f"/api/admin/registration-tokens/{MISSING['token']}/revoke")
    s.call("delete missing", "DELETE", f"/api/admin/registration-tokens/{MISSING['token']}")


def agent_protocol(s: Side) -> None:
    register(s, "register", "compat-agent", "compat-svc", "agent")
    register(s, "register second agent", "other-agent", "other-svc", "other")
    s.call(
        "register with used token",
        "POST",
        "/api/agents/register",
        json={
            "registrationToken": s.vars["agentRegToken"],
            "agent": {"code": "x-agent", "mode": "embedded"},
        },
        auth="none",
    )
    s.call(
        "register unknown token",
        "POST",
        "/api/agents/register",
        json={"registrationToken": "opstage_reg_nope", "agent": {"code": "y", "mode": "embedded"}},
        auth="none",
    )
    s.call(
        "register token without prefix",
        "POST",
        "/api/agents/register",
        json={"registrationToken": "nope", "agent": {"code": "y", "mode": "embedded"}},
        auth="none",
    )
    s.call("register empty body", "POST", "/api/agents/register", json={}, auth="none")
    s.call(
        "register agent wrong type",
        "POST",
        "/api/agents/register",
        json={"registrationToken": "opstage_reg_x", "agent": "me"},
        auth="none",
    )
    s.call(
        "heartbeat",
        "POST",
        "/api/agents/{agentId}/heartbeat",
        json={"health": {"status": "UP"}},
        auth="agent",
    )
    s.call("heartbeat empty body", "POST", "/api/agents/{agentId}/heartbeat", json={}, auth="agent")
    s.call(
        "heartbeat bad health",
        "POST",
        "/api/agents/{agentId}/heartbeat",
        json={"health": {"status": "SPLENDID"}},
        auth="agent",
    )
    s.call("heartbeat no token", "POST", "/api/agents/{agentId}/heartbeat", json={}, auth="none")
    s.call(
        "heartbeat wrong token",
        "POST",
        "/api/agents/{agentId}/heartbeat",
        json={},
        auth="none",
        headers={"Authorization": "Bearer opstage_agent_wrong"},
    )
    s.call(
        "heartbeat other agent's id",
        "POST",
        "/api/agents/{otherId}/heartbeat",
        json={},
        auth="agent",
    )
    s.call(
        "heartbeat unknown agent",
        "POST",
        f"/api/agents/{MISSING['agent']}/heartbeat",
        json={},
        auth="agent",
    )
    s.call(
        "report",
        "POST",
        "/api/agents/{agentId}/services/report",
        json={"services": [service_body("compat-svc")]},
        auth="agent",
    )
    s.call(
        "report empty list",
        "POST",
        "/api/agents/{agentId}/services/report",
        json={"services": []},
        auth="agent",
    )
    s.call(
        "report missing manifest",
        "POST",
        "/api/agents/{agentId}/services/report",
        json={"services": [{"code": "m", "name": "m"}]},
        auth="agent",
    )
    s.call(
        "report another agent's service code",
        "POST",
        "/api/agents/{agentId}/services/report",
        json={"services": [service_body("other-svc")]},
        auth="agent",
    )
    s.call("poll empty", "GET", "/api/agents/{agentId}/commands", auth="agent")
    s.call(
        "poll limit=0", "GET", "/api/agents/{agentId}/commands", params={"limit": 0}, auth="agent"
    )
    s.call(
        "poll limit=abc",
        "GET",
        "/api/agents/{agentId}/commands",
        params={"limit": "abc"},
        auth="agent",
    )
    s.call("poll no token", "GET", "/api/agents/{agentId}/commands", auth="none")


def agents_admin(s: Side) -> None:
    s.call("list", "GET", "/api/admin/agents")
    for status in ("PENDING", "ONLINE", "OFFLINE", "DISABLED", "REVOKED"):
        s.call(f"list status={status}", "GET", "/api/admin/agents", params={"status": status})
    s.call("list status=bogus", "GET", "/api/admin/agents", params={"status": "bogus"})
    s.call("list q=compat", "GET", "/api/admin/agents", params={"q": "compat"})
    s.call("list q too long", "GET", "/api/admin/agents", params={"q": "x" * 500})
    s.call("detail", "GET", "/api/admin/agents/{agentId}")
    s.call("detail missing", "GET", f"/api/admin/agents/{MISSING['agent']}")
    s.call("disable", "POST", "/api/admin/agents/{otherId}/disable")
    s.call(
        "heartbeat while disabled",
        "POST",
        "/api/agents/{otherId}/heartbeat",
        json={},
        auth="agent:otherToken",
    )
    s.call("disable again", "POST", "/api/admin/agents/{otherId}/disable")
    s.call("enable", "POST", "/api/admin/agents/{otherId}/enable")
    s.call("enable again", "POST", "/api/admin/agents/{otherId}/enable")
    s.call("disable missing", "POST", f"/api/admin/agents/{MISSING['agent']}/disable")
    s.call("enable missing", "POST", f"/api/admin/agents/{MISSING['agent']}/enable")
    s.call("revoke missing", "POST", f"/api/admin/agents/{MISSING['agent']}/revoke")


def services(s: Side) -> None:
    r = s.call("list", "GET", "/api/admin/capsule-services")
    for svc in s.data(r):
        s.vars[{"compat-svc": "svcId", "other-svc": "otherSvcId"}.get(svc["code"], "x")] = svc["id"]
    for status in ("UNKNOWN", "HEALTHY", "UNHEALTHY", "STALE", "OFFLINE"):
        s.call(
            f"list status={status}", "GET", "/api/admin/capsule-services", params={"status": status}
        )
    for health in ("UP", "DEGRADED", "DOWN", "UNKNOWN"):
        s.call(
            f"list healthStatus={health}",
            "GET",
            "/api/admin/capsule-services",
            params={"healthStatus": health},
        )
    s.call(
        "list agentId", "GET", "/api/admin/capsule-services", params={"agentId": s.vars["agentId"]}
    )
    s.call("list agentId malformed", "GET", "/api/admin/capsule-services", params={"agentId": "x"})
    s.call("list q", "GET", "/api/admin/capsule-services", params={"q": "compat"})
    s.call("list status=bogus", "GET", "/api/admin/capsule-services", params={"status": "x"})
    s.call("detail", "GET", "/api/admin/capsule-services/{svcId}")
    s.call("detail missing", "GET", f"/api/admin/capsule-services/{MISSING['service']}")
    # Routes of the v0.1 contract that the reference (v0.4) does not serve.
    for part in ("manifest", "health", "configs", "actions"):
        s.call(f"contract {part}", "GET", f"/api/admin/capsule-services/{{svcId}}/{part}")
        s.call(
            f"contract {part} missing",
            "GET",
            f"/api/admin/capsule-services/{MISSING['service']}/{part}",
        )


def actions(s: Side) -> None:
    r = s.call(
        "execute",
        "POST",
        "/api/admin/capsule-services/{svcId}/actions/echo",
        json={"payload": {"message": "hi"}},
    )
    s.vars["cmdEcho"] = s.data(r)["id"]
    s.call("execute no body", "POST", "/api/admin/capsule-services/{svcId}/actions/slow")
    s.call(
        "execute unknown action",
        "POST",
        "/api/admin/capsule-services/{svcId}/actions/nope",
        json={},
    )
    s.call(
        "execute unknown service",
        "POST",
        f"/api/admin/capsule-services/{MISSING['service']}/actions/echo",
        json={},
    )
    s.call(
        "execute payload wrong type",
        "POST",
        "/api/admin/capsule-services/{svcId}/actions/echo",
        json={"payload": "text"},
    )
    s.call(
        "execute HIGH without confirmation",
        "POST",
        "/api/admin/capsule-services/{svcId}/actions/wipe",
        json={},
    )
    r = s.call(
        "execute HIGH confirmed",
        "POST",
        "/api/admin/capsule-services/{svcId}/actions/wipe",
        json={"confirmation": True},
    )
    s.vars["cmdWipe"] = s.data(r)["id"]
    s.call(
        "prepare unknown action",
        "GET",
        "/api/admin/capsule-services/{svcId}/actions/nope",
        headers=csrf(s),
    )
    s.call(
        "prepare unknown service",
        "GET",
        f"/api/admin/capsule-services/{MISSING['service']}/actions/echo",
        headers=csrf(s),
    )


def commands_flow(s: Side) -> None:
    r = s.call("poll with commands", "GET", "/api/agents/{agentId}/commands", auth="agent")
    got = {c["actionName"]: c["id"] for c in s.data(r)}
    s.vars["cmdSlow"] = got.get("slow", "cmd_x")
    s.call(
        "result",
        "POST",
        "/api/agents/{agentId}/commands/{cmdEcho}/result",
        json={"success": True, "message": "ok", "data": {"echo": "hi"}},
        auth="agent",
    )
    s.call(
        "result again",
        "POST",
        "/api/agents/{agentId}/commands/{cmdEcho}/result",
        json={"success": True},
        auth="agent",
    )
    s.call(
        "result failure",
        "POST",
        "/api/agents/{agentId}/commands/{cmdWipe}/result",
        json={"success": False, "message": "nope", "error": {"code": "E", "message": "m"}},
        auth="agent",
    )
    s.call(
        "result missing command",
        "POST",
        f"/api/agents/{{agentId}}/commands/{MISSING['command']}/result",
        json={"success": True},
        auth="agent",
    )
    s.call(
        "result body missing success",
        "POST",
        "/api/agents/{agentId}/commands/{cmdSlow}/result",
        json={"message": "x"},
        auth="agent",
    )
    s.call(
        "result by other agent",
        "POST",
        "/api/agents/{otherId}/commands/{cmdSlow}/result",
        json={"success": True},
        auth="agent:otherToken",
    )
    s.call("detail succeeded", "GET", "/api/admin/commands/{cmdEcho}")
    s.call("detail failed", "GET", "/api/admin/commands/{cmdWipe}")
    s.call("detail running", "GET", "/api/admin/commands/{cmdSlow}")
    s.call("detail missing", "GET", f"/api/admin/commands/{MISSING['command']}")
    s.call("cancel running", "POST", "/api/admin/commands/{cmdSlow}/cancel")
    s.call("cancel completed", "POST", "/api/admin/commands/{cmdEcho}/cancel")
    s.call("cancel missing", "POST", f"/api/admin/commands/{MISSING['command']}/cancel")
    s.call(
        "retry failed", "POST", "/api/admin/commands/{cmdWipe}/retry", json={"confirmation": True}
    )
    s.call("retry succeeded", "POST", "/api/admin/commands/{cmdEcho}/retry", json={})
    s.call("retry missing", "POST", f"/api/admin/commands/{MISSING['command']}/retry", json={})
    s.call("list", "GET", "/api/admin/commands")
    for status in ("PENDING", "RUNNING", "SUCCEEDED", "FAILED", "EXPIRED", "CANCELLED"):
        s.call(f"list status={status}", "GET", "/api/admin/commands", params={"status": status})
    for typ in ("ACTION_EXECUTE", "ACTION_PREPARE"):
        s.call(f"list type={typ}", "GET", "/api/admin/commands", params={"type": typ})
    s.call("list actionName", "GET", "/api/admin/commands", params={"actionName": "echo"})
    s.call("list agentId", "GET", "/api/admin/commands", params={"agentId": s.vars["agentId"]})
    s.call("list serviceId", "GET", "/api/admin/commands", params={"serviceId": s.vars["svcId"]})
    s.call(
        "list all filters",
        "GET",
        "/api/admin/commands",
        params={
            "status": "SUCCEEDED",
            "type": "ACTION_EXECUTE",
            "actionName": "echo",
            "agentId": s.vars["agentId"],
            "serviceId": s.vars["svcId"],
        },
    )
    s.call("list status=bogus", "GET", "/api/admin/commands", params={"status": "bogus"})
    s.call("list type=bogus", "GET", "/api/admin/commands", params={"type": "bogus"})
    s.call("list agentId malformed", "GET", "/api/admin/commands", params={"agentId": "x"})
    s.call("list serviceId malformed", "GET", "/api/admin/commands", params={"serviceId": "x"})
    s.call(
        "list actionName too long", "GET", "/api/admin/commands", params={"actionName": "a" * 300}
    )
    # drain what retry queued so later scenarios start from an idle agent
    poll(s)


def prepare(s: Side) -> None:
    """ACTION_PREPARE: the admin GET waits for the agent's answer; a thread plays the agent."""
    t = threading.Thread(target=answer_next, args=(s, True, {"initialPayload": {"message": "p"}}))
    t.start()
    s.call(
        "prepare answered",
        "GET",
        "/api/admin/capsule-services/{svcId}/actions/echo",
        headers=csrf(s),
    )
    t.join()
    t = threading.Thread(target=answer_next, args=(s, False))
    t.start()
    s.call(
        "prepare failed by agent",
        "GET",
        "/api/admin/capsule-services/{svcId}/actions/echo",
        headers=csrf(s),
    )
    t.join()


def audit(s: Side) -> None:
    r = s.call("list", "GET", "/api/admin/audit-events")
    first = (s.data(r) or [{}])[0].get("id", "aud_x")
    s.call("contract detail", "GET", f"/api/admin/audit-events/{first}")
    s.call(
        "contract detail missing", "GET", "/api/admin/audit-events/aud_00000000000000000000000000"
    )
    for actor in ("USER", "AGENT", "SYSTEM"):
        s.call(
            f"list actorType={actor}", "GET", "/api/admin/audit-events", params={"actorType": actor}
        )
    for result in ("SUCCESS", "FAILURE"):
        s.call(f"list result={result}", "GET", "/api/admin/audit-events", params={"result": result})
    s.call("list action", "GET", "/api/admin/audit-events", params={"action": "agent.registered"})
    s.call("list targetType", "GET", "/api/admin/audit-events", params={"targetType": "Agent"})
    s.call(
        "list targetId", "GET", "/api/admin/audit-events", params={"targetId": s.vars["agentId"]}
    )
    s.call(
        "list from/to",
        "GET",
        "/api/admin/audit-events",
        params={"from": "2020-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z"},
    )
    s.call("list from bogus", "GET", "/api/admin/audit-events", params={"from": "yesterday"})
    s.call("list to bogus", "GET", "/api/admin/audit-events", params={"to": "later"})
    s.call("list actorType bogus", "GET", "/api/admin/audit-events", params={"actorType": "CAT"})
    s.call("list result bogus", "GET", "/api/admin/audit-events", params={"result": "MAYBE"})
    s.call("export json", "GET", "/api/admin/audit-events/export", params={"format": "json"})
    s.call("export csv", "GET", "/api/admin/audit-events/export", params={"format": "csv"})
    s.call("export default", "GET", "/api/admin/audit-events/export")
    s.call("export format bogus", "GET", "/api/admin/audit-events/export", params={"format": "xml"})
    s.call(
        "export filtered",
        "GET",
        "/api/admin/audit-events/export",
        params={"format": "json", "actorType": "AGENT"},
    )


def users(s: Side) -> None:
    r = s.call(
        "create",
        "POST",
        "/api/admin/users",
        json={
            "username": "ops@example.local",
            "password": "operator-password-1",
            "displayName": "Ops",
            "role": "operator",
        },
    )
    s.vars["usrId"] = (s.data(r) or {}).get("id", "usr_x")
    s.call(
        "create duplicate",
        "POST",
        "/api/admin/users",
        json={
            "username": "ops@example.local",
            "password": "operator-password-1",
            "role": "operator",
        },
    )
    s.call(
        "create short password",
        "POST",
        "/api/admin/users",
        json={"username": "v@example.local", "password": "short", "role": "viewer"},
    )
    s.call(
        "create bad role",
        "POST",
        "/api/admin/users",
        json={"username": "v@example.local", "password": "viewer-password-1", "role": "god"},
    )
    s.call("create empty body", "POST", "/api/admin/users", json={})
    s.call("list", "GET", "/api/admin/users")
    for role in ("owner", "operator", "viewer"):
        s.call(f"list role={role}", "GET", "/api/admin/users", params={"role": role})
    for status in ("ACTIVE", "DISABLED"):
        s.call(f"list status={status}", "GET", "/api/admin/users", params={"status": status})
    s.call("list q", "GET", "/api/admin/users", params={"q": "ops"})
    s.call("list role bogus", "GET", "/api/admin/users", params={"role": "god"})
    s.call("patch", "PATCH", "/api/admin/users/{usrId}", json={"displayName": "Ops Team"})
    s.call("patch role", "PATCH", "/api/admin/users/{usrId}", json={"role": "viewer"})
    s.call("patch disable", "PATCH", "/api/admin/users/{usrId}", json={"status": "DISABLED"})
    s.call("patch bad status", "PATCH", "/api/admin/users/{usrId}", json={"status": "ASLEEP"})
    s.call("patch missing", "PATCH", f"/api/admin/users/{MISSING['user']}", json={})
    s.call(
        "reset password",
        "POST",
        "/api/admin/users/{usrId}/reset-password",
        json={"password": "another-password-1"},
    )
    s.call(
        "reset password short",
        "POST",
        "/api/admin/users/{usrId}/reset-password",
        json={"password": "x"},
    )
    s.call(
        "reset password missing user",
        "POST",
        f"/api/admin/users/{MISSING['user']}/reset-password",
        json={"password": "another-pw-12"},
    )


def operations(s: Side) -> None:
    s.call("settings", "GET", "/api/admin/settings/maintenance")
    s.call(
        "settings patch",
        "PATCH",
        "/api/admin/settings/maintenance",
        json={"auditRetentionDays": 30},
    )
    s.call(
        "settings patch wrong type",
        "PATCH",
        "/api/admin/settings/maintenance",
        json={"auditRetentionDays": "thirty"},
    )
    s.call(
        "settings patch negative",
        "PATCH",
        "/api/admin/settings/maintenance",
        json={"maintenanceIntervalSeconds": -1},
    )
    s.call("maintenance run", "POST", "/api/admin/maintenance/run")
    s.call("dashboard", "GET", "/api/admin/dashboard/summary")
    s.call("metrics", "GET", "/api/admin/metrics")
    s.call("diagnostics", "GET", "/api/admin/diagnostics/runtime")
    s.call("backup", "POST", "/api/admin/backup/sqlite")
    s.call("metrics without session", "GET", "/api/admin/metrics", auth="none")


def route_body(name: str, status: str = "ENABLED") -> dict[str, Any]:
    return {
        "name": name,
        "status": status,
        "match": {"eventType": "compat.item.created", "sourceServiceCode": "compat-svc"},
        "target": {"serviceCode": "compat-svc", "actionName": "echo"},
    }


def bus(s: Side) -> None:
    r = s.call("route create", "POST", "/api/admin/bus/routes", json=route_body("r1"))
    s.vars["routeId"] = (s.data(r) or {}).get("id", "brt_x")
    s.call(
        "route create dry run", "POST", "/api/admin/bus/routes", json=route_body("r2", "DRY_RUN")
    )
    s.call(
        "route create missing target",
        "POST",
        "/api/admin/bus/routes",
        json={"name": "bad", "match": {"eventType": "x"}},
    )
    s.call(
        "route create bad status",
        "POST",
        "/api/admin/bus/routes",
        json={**route_body("bad"), "status": "MAYBE"},
    )
    s.call("route list", "GET", "/api/admin/bus/routes")
    s.call("route detail", "GET", "/api/admin/bus/routes/{routeId}")
    s.call("route detail missing", "GET", f"/api/admin/bus/routes/{MISSING['route']}")
    s.call("route update", "PUT", "/api/admin/bus/routes/{routeId}", json=route_body("r1 renamed"))
    s.call(
        "route update missing",
        "PUT",
        f"/api/admin/bus/routes/{MISSING['route']}",
        json=route_body("x"),
    )
    s.call("route update invalid", "PUT", "/api/admin/bus/routes/{routeId}", json={"name": ""})
    ev = {
        "eventType": "compat.item.created",
        "sourceServiceCode": "compat-svc",
        "payload": {"itemId": "i-1", "password": "hide-me"},
        "correlationId": "c-1",
    }
    s.call("publish routed", "POST", "/api/agents/{agentId}/bus/events", json=ev, auth="agent")
    s.call(
        "publish dry run policy",
        "POST",
        "/api/agents/{agentId}/bus/events",
        json={**ev, "routePolicy": {"dryRun": True}},
        auth="agent",
    )
    s.call(
        "publish unmatched",
        "POST",
        "/api/agents/{agentId}/bus/events",
        json={**ev, "eventType": "compat.nobody.listens"},
        auth="agent",
    )
    s.call(
        "publish unknown source",
        "POST",
        "/api/agents/{agentId}/bus/events",
        json={**ev, "sourceServiceCode": "missing-svc"},
        auth="agent",
    )
    s.call(
        "publish another agent's source",
        "POST",
        "/api/agents/{agentId}/bus/events",
        json={**ev, "sourceServiceCode": "other-svc"},
        auth="agent",
    )
    s.call(
        "publish missing eventType",
        "POST",
        "/api/agents/{agentId}/bus/events",
        json={"sourceServiceCode": "compat-svc"},
        auth="agent",
    )
    s.call("publish no token", "POST", "/api/agents/{agentId}/bus/events", json=ev, auth="none")
    s.call("events", "GET", "/api/admin/bus/events")
    s.call("bus audit", "GET", "/api/admin/bus/audit")
    s.call("route delete", "DELETE", "/api/admin/bus/routes/{routeId}")
    s.call("route delete again", "DELETE", "/api/admin/bus/routes/{routeId}")
    s.call("routes without session", "GET", "/api/admin/bus/routes", auth="none")
    poll(s)


PAGED = [
    "/api/admin/agents",
    "/api/admin/capsule-services",
    "/api/admin/commands",
    "/api/admin/audit-events",
    "/api/admin/registration-tokens",
    "/api/admin/users",
    "/api/admin/bus/events",
    "/api/admin/bus/routes",
    "/api/admin/bus/audit",
]
EDGES: list[tuple[str, dict[str, Any]]] = [
    ("page=1 pageSize=1", {"page": 1, "pageSize": 1}),
    ("page=2 pageSize=1", {"page": 2, "pageSize": 1}),
    ("page=0", {"page": 0}),
    ("page=-1", {"page": -1}),
    ("page=abc", {"page": "abc"}),
    ("page=1.5", {"page": "1.5"}),
    ("page beyond the end", {"page": 99999}),
    ("page huge", {"page": "1" + "0" * 30}),
    ("pageSize=0", {"pageSize": 0}),
    ("pageSize=100", {"pageSize": 100}),
    ("pageSize=101", {"pageSize": 101}),
    ("pageSize=abc", {"pageSize": "abc"}),
    ("page empty", {"page": ""}),
    ("pageSize empty", {"pageSize": ""}),
    ("pageSize=1.5", {"pageSize": "1.5"}),
    ("page=1e1", {"page": "1e1"}),
]


def pagination(s: Side) -> None:
    for path in PAGED:
        for name, params in EDGES:
            s.call(f"{path} {name}", "GET", path, params=params)


# What clients put in a query besides a well-formed value: a filter cleared in a form (empty),
# spaces, padding, a repeated parameter, dates without a time or with an offset.
FILTER_EDGES: list[tuple[str, str, dict[str, Any]]] = [
    ("agents status empty", "/api/admin/agents", {"status": ""}),
    ("agents q empty", "/api/admin/agents", {"q": ""}),
    ("agents q spaces", "/api/admin/agents", {"q": "   "}),
    ("agents q padded", "/api/admin/agents", {"q": "  compat  "}),
    ("agents status lowercase", "/api/admin/agents", {"status": "online"}),
    ("services status empty", "/api/admin/capsule-services", {"status": ""}),
    ("services healthStatus empty", "/api/admin/capsule-services", {"healthStatus": ""}),
    ("services agentId empty", "/api/admin/capsule-services", {"agentId": ""}),
    ("services q spaces", "/api/admin/capsule-services", {"q": "  "}),
    ("services healthStatus bogus", "/api/admin/capsule-services", {"healthStatus": "OK"}),
    ("commands status empty", "/api/admin/commands", {"status": ""}),
    ("commands actionName empty", "/api/admin/commands", {"actionName": ""}),
    ("commands actionName spaces", "/api/admin/commands", {"actionName": "   "}),
    ("commands actionName padded", "/api/admin/commands", {"actionName": " echo "}),
    ("commands agentId empty", "/api/admin/commands", {"agentId": ""}),
    ("commands status repeated", "/api/admin/commands", {"status": ["SUCCEEDED", "FAILED"]}),
    ("tokens status empty", "/api/admin/registration-tokens", {"status": ""}),
    ("users role empty", "/api/admin/users", {"role": ""}),
    ("users status empty", "/api/admin/users", {"status": ""}),
    ("users q spaces", "/api/admin/users", {"q": "  "}),
    ("users status bogus", "/api/admin/users", {"status": "GONE"}),
    ("audit actorType empty", "/api/admin/audit-events", {"actorType": ""}),
    ("audit action empty", "/api/admin/audit-events", {"action": ""}),
    ("audit action spaces", "/api/admin/audit-events", {"action": "  "}),
    ("audit from empty", "/api/admin/audit-events", {"from": ""}),
    ("audit from date only", "/api/admin/audit-events", {"from": "2020-01-01"}),
    ("audit to with offset", "/api/admin/audit-events", {"to": "2100-01-01T00:00:00+02:00"}),
    ("audit from millis", "/api/admin/audit-events", {"from": "2020-01-01T00:00:00.000Z"}),
    ("audit from > to", "/api/admin/audit-events", {"from": "2100-01-01", "to": "2020-01-01"}),
    ("audit export from date only", "/api/admin/audit-events/export", {"from": "2020-01-01"}),
]


def filters(s: Side) -> None:
    for label, path, params in FILTER_EDGES:
        s.call(label, "GET", path, params=params)
    s.call(
        "services agentId repeated",
        "GET",
        "/api/admin/capsule-services",
        params={"agentId": [s.vars["agentId"], s.vars["agentId"]]},
    )


def revoke(s: Side) -> None:
    """Last: revoking the second agent ends its token."""
    s.call("revoke", "POST", "/api/admin/agents/{otherId}/revoke")
    s.call("revoke again", "POST", "/api/admin/agents/{otherId}/revoke")
    s.call(
        "heartbeat after revoke",
        "POST",
        "/api/agents/{otherId}/heartbeat",
        json={},
        auth="agent:otherToken",
    )
    s.call("poll after revoke", "GET", "/api/agents/{otherId}/commands", auth="agent:otherToken")
    s.call("enable revoked", "POST", "/api/admin/agents/{otherId}/enable")


SCENARIOS: list[tuple[str, Scenario]] = [
    ("system", system),
    ("auth", auth),
    ("registration-tokens", registration_tokens),
    ("agent-protocol", agent_protocol),
    ("agents", agents_admin),
    ("services", services),
    ("actions", actions),
    ("commands", commands_flow),
    ("prepare", prepare),
    ("audit", audit),
    ("users", users),
    ("operations", operations),
    ("bus", bus),
    ("pagination", pagination),
    ("filters", filters),
    ("revoke", revoke),
    ("logout", logout),
]
