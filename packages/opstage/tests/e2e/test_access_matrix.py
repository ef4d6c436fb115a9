"""Every admin route for no session, owner, operator and viewer; CSRF on every state change.

The route list is not written by hand: it is the application's own OpenAPI document (built
in-process at collection so each route and role is its own test id, and compared with the running
server's ``/api/openapi.json``), and it must cover every admin path of the contract. What each
route *should* require is the one explicit table below, ``ROUTE_PERMISSIONS``; which role holds
which permission is ``opstage.api.rbac.PERMISSIONS``. A new route therefore joins the matrix on
its own and fails it until someone states the permission it needs.

Allowed calls on state-changing routes address ids that do not exist, so the answer is the
use case's 404 (proof that the gate let the call through) and the shared fixtures survive.

``docs/rbac.md`` carries tables generated from the same data; regenerate it with
``cd packages/opstage && ../../.venv/bin/python -m tests.e2e.test_access_matrix``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from opstage.api import rbac
from opstage_testing.clients import AdminClient, action, register, service
from opstage_testing.contracts import contract_dir
from opstage_testing.server import ADMIN_PASSWORD, ADMIN_USERNAME, ServerProcess

from ..conftest import unique

REPO_ROOT = Path(__file__).resolve().parents[4]
RBAC_DOC = REPO_ROOT / "docs" / "rbac.md"
ROLES = ("owner", "operator", "viewer")
HTTP_METHODS = ("get", "post", "put", "patch", "delete")
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
READ = rbac.READ

Op = tuple[str, str]  # (METHOD, path template)

LOGIN: Op = ("POST", "/api/admin/auth/login")
PREPARE: Op = ("GET", "/api/admin/capsule-services/{serviceId}/actions/{actionName}")
PUBLIC: frozenset[Op] = frozenset({LOGIN})

# What each admin route requires: a permission of opstage.api.rbac, or None for a public route.
# Routes the contract lists but the server does not serve yet are kept so docs/rbac.md names them.
ROUTE_PERMISSIONS: dict[Op, str | None] = {
    LOGIN: None,
    ("POST", "/api/admin/auth/logout"): READ,
    ("GET", "/api/admin/auth/me"): READ,
    ("GET", "/api/admin/auth/csrf"): READ,
    ("GET", "/api/admin/users"): "users:admin",
    ("POST", "/api/admin/users"): "users:admin",
    ("PATCH", "/api/admin/users/{userId}"): "users:admin",
    ("POST", "/api/admin/users/{userId}/reset-password"): "users:admin",
    ("DELETE", "/api/admin/users/{userId}"): "users:admin",
    ("GET", "/api/admin/audit-events/export"): "audit:export",
    ("GET", "/api/admin/settings/maintenance"): READ,
    ("PATCH", "/api/admin/settings/maintenance"): "settings:write",
    ("POST", "/api/admin/maintenance/run"): "maintenance:run",
    ("POST", "/api/admin/backup/sqlite"): "backup:create",
    ("GET", "/api/admin/dashboard/summary"): READ,
    ("GET", "/api/admin/metrics"): READ,
    ("GET", "/api/admin/diagnostics/runtime"): "diagnostics:read",
    ("GET", "/api/admin/events/stream"): READ,
    ("GET", "/api/admin/registration-tokens"): READ,
    ("POST", "/api/admin/registration-tokens"): "tokens:write",
    ("POST", "/api/admin/registration-tokens/{tokenId}/revoke"): "tokens:write",
    ("DELETE", "/api/admin/registration-tokens/{tokenId}"): "tokens:write",
    ("GET", "/api/admin/agents"): READ,
    ("GET", "/api/admin/agents/{agentId}"): READ,
    ("POST", "/api/admin/agents/{agentId}/disable"): "agents:write",
    ("POST", "/api/admin/agents/{agentId}/enable"): "agents:write",
    ("POST", "/api/admin/agents/{agentId}/revoke"): "agents:write",
    ("GET", "/api/admin/capsule-services"): READ,
    ("GET", "/api/admin/capsule-services/{serviceId}"): READ,
    ("GET", "/api/admin/capsule-services/{serviceId}/manifest"): READ,
    ("GET", "/api/admin/capsule-services/{serviceId}/health"): READ,
    ("GET", "/api/admin/capsule-services/{serviceId}/configs"): READ,
    ("GET", "/api/admin/capsule-services/{serviceId}/actions"): READ,
    PREPARE: "actions:prepare",
    ("POST", "/api/admin/capsule-services/{serviceId}/actions/{actionName}"): "actions:execute",
    ("POST", "/api/admin/capsule-services/{serviceId}/transfer"): "services:write",
    ("GET", "/api/admin/commands"): READ,
    ("GET", "/api/admin/commands/{commandId}"): READ,
    ("POST", "/api/admin/commands/{commandId}/cancel"): "commands:write",
    ("POST", "/api/admin/commands/{commandId}/retry"): "commands:write",
    ("GET", "/api/admin/audit-events"): READ,
    ("GET", "/api/admin/audit-events/{auditEventId}"): READ,
    # Capsule Bus (experimental; behind OPSTAGE_CAPSULE_BUS_ENABLED, checked after the gate).
    ("GET", "/api/admin/bus/routes"): READ,
    ("POST", "/api/admin/bus/routes"): "bus:write",
    ("POST", "/api/admin/bus/routes/simulate"): "bus:write",
    ("GET", "/api/admin/bus/routes/{routeId}"): READ,
    ("PUT", "/api/admin/bus/routes/{routeId}"): "bus:write",
    ("DELETE", "/api/admin/bus/routes/{routeId}"): "bus:write",
    ("POST", "/api/admin/bus/routes/{routeId}/simulate"): "bus:write",
    ("GET", "/api/admin/bus/events"): READ,
    ("GET", "/api/admin/bus/audit"): READ,
    ("GET", "/api/admin/topics"): READ,
    ("POST", "/api/admin/topics"): "topics:write",
    ("GET", "/api/admin/topics/{topic}"): READ,
    ("DELETE", "/api/admin/topics/{topic}"): "topics:write",
    ("GET", "/api/admin/topics/{topic}/subscriptions"): READ,
    ("POST", "/api/admin/topics/{topic}/subscriptions"): "topics:write",
    ("GET", "/api/admin/topics/{topic}/subscriptions/{name}"): READ,
    ("DELETE", "/api/admin/topics/{topic}/subscriptions/{name}"): "topics:write",
    ("GET", "/api/admin/topics/{topic}/messages"): READ,
}


@dataclass(frozen=True)
class Req:
    """How the matrix calls a route, and what an allowed caller gets back."""

    ids: str = "real"  # "real": live fixture objects; "ghost": well-formed ids that do not exist
    body: Any = None
    allowed_status: int | None = 200
    fresh_session: bool = False  # the call ends or rotates its session: use a throwaway login


GHOST_404 = Req(ids="ghost", body={}, allowed_status=404)
REQUESTS: dict[Op, Req] = {
    # Login is public; {} is refused by validation (422), never by authentication.
    LOGIN: Req(body={}, allowed_status=422),
    ("POST", "/api/admin/auth/logout"): Req(body={}, fresh_session=True),
    ("GET", "/api/admin/auth/csrf"): Req(fresh_session=True),
    # An empty body is invalid (422): allowed callers reach validation, denied ones do not.
    ("POST", "/api/admin/users"): Req(body={}, allowed_status=422),
    ("PATCH", "/api/admin/users/{userId}"): Req(
        ids="ghost", body={"displayName": "x"}, allowed_status=404
    ),
    ("POST", "/api/admin/users/{userId}/reset-password"): Req(
        ids="ghost", body={"password": "a-long-enough-password"}, allowed_status=404
    ),
    ("DELETE", "/api/admin/users/{userId}"): GHOST_404,
    # An empty change is refused by validation (422), after the gate.
    # An empty patch changes nothing and answers the settings, as the reference.
    ("PATCH", "/api/admin/settings/maintenance"): Req(body={}, allowed_status=200),
    ("POST", "/api/admin/registration-tokens"): Req(body={"name": "access-matrix"}),
    ("POST", "/api/admin/registration-tokens/{tokenId}/revoke"): GHOST_404,
    ("DELETE", "/api/admin/registration-tokens/{tokenId}"): GHOST_404,
    ("POST", "/api/admin/agents/{agentId}/disable"): GHOST_404,
    ("POST", "/api/admin/agents/{agentId}/enable"): GHOST_404,
    ("POST", "/api/admin/agents/{agentId}/revoke"): GHOST_404,
    # Prepare would wait for the agent; a missing service answers at once, after the gate.
    PREPARE: Req(ids="ghost", allowed_status=404),
    ("POST", "/api/admin/capsule-services/{serviceId}/actions/{actionName}"): Req(
        ids="ghost", body={"payload": {}}, allowed_status=404
    ),
    ("POST", "/api/admin/capsule-services/{serviceId}/transfer"): Req(
        ids="ghost", body={"agentId": "agt_" + "0" * 26}, allowed_status=404
    ),
    ("POST", "/api/admin/commands/{commandId}/cancel"): GHOST_404,
    ("POST", "/api/admin/commands/{commandId}/retry"): GHOST_404,
    # The bus answers 404 CAPSULE_BUS_DISABLED to entitled callers while it is switched off.
    ("GET", "/api/admin/bus/routes/{routeId}"): Req(ids="ghost", allowed_status=None),
    # An empty body is invalid (422); a topic that does not exist is 404, after the gate.
    ("POST", "/api/admin/topics"): Req(body={}, allowed_status=422),
    ("GET", "/api/admin/topics/{topic}"): Req(ids="ghost", allowed_status=404),
    ("DELETE", "/api/admin/topics/{topic}"): GHOST_404,
    ("GET", "/api/admin/topics/{topic}/subscriptions"): Req(ids="ghost", allowed_status=404),
    ("POST", "/api/admin/topics/{topic}/subscriptions"): Req(body={}, allowed_status=422),
    ("GET", "/api/admin/topics/{topic}/subscriptions/{name}"): Req(ids="ghost", allowed_status=404),
    ("DELETE", "/api/admin/topics/{topic}/subscriptions/{name}"): GHOST_404,
    ("GET", "/api/admin/topics/{topic}/messages"): Req(ids="ghost", allowed_status=404),
}

GHOST_IDS = {
    "userId": "usr_" + "0" * 26,
    "tokenId": "tok_" + "0" * 26,
    "agentId": "agt_" + "0" * 26,
    "serviceId": "svc_" + "0" * 26,
    "actionName": "noop",
    "commandId": "cmd_" + "0" * 26,
    "auditEventId": "aud_" + "0" * 26,
    "routeId": "brt_" + "0" * 26,
    "topic": "ghost.default.none",
    "name": "ghost-subscription",
}


def request_for(op: Op) -> Req:
    """The explicit entry, or a safe default for a route nobody described yet."""
    if op in REQUESTS:
        return REQUESTS[op]
    if op[1].startswith("/api/admin/bus/"):
        return Req(ids="ghost", body={}, allowed_status=None)
    if op[0] in STATE_CHANGING:
        return Req(ids="ghost", body={}, allowed_status=None)
    return Req()


# --- where the route list comes from -------------------------------------------------------


def _operations(spec: dict[str, Any], prefix: str = "/api/admin/") -> list[Op]:
    return sorted(
        (method.upper(), path)
        for path, item in spec.get("paths", {}).items()
        if path.startswith(prefix)
        for method in item
        if method in HTTP_METHODS
    )


@cache
def app_openapi() -> dict[str, Any]:
    """The application's OpenAPI document, built in-process (no server needed at collection)."""
    from opstage.api.app import create_app
    from opstage.settings import Settings

    app = create_app(Settings(session_secret="collection-only-" + "x" * 32))
    spec: dict[str, Any] = app.openapi()
    return spec


@cache
def contract_admin_operations() -> list[Op]:
    found = contract_dir()
    if found is None:
        return []
    spec = yaml.safe_load((found / "opstage-ce-v0.1.yaml").read_text())
    return _operations(spec)


ADMIN_OPS = _operations(app_openapi())
GUARDED = [op for op in ADMIN_OPS if op not in PUBLIC]
CSRF_OPS = [op for op in GUARDED if op[0] in STATE_CHANGING or op == PREPARE]
SAFE_READS = [op for op in GUARDED if op[0] not in STATE_CHANGING and op != PREPARE]


def _op_id(op: Op) -> str:
    return f"{op[0]} {op[1]}"


# --- sessions and requests -----------------------------------------------------------------


@dataclass
class Session:
    role: str
    username: str
    password: str
    cookie: str
    csrf: str


@dataclass
class World:
    url: str
    sessions: dict[str, Session]
    real: dict[str, str] = field(default_factory=dict)

    def path(self, op: Op, ids: str) -> str:
        values = GHOST_IDS if ids == "ghost" else self.real
        out = op[1]
        for name, value in values.items():
            out = out.replace("{" + name + "}", value)
        assert "{" not in out, f"no {ids} value for a path parameter of {out}"
        return out

    def fresh(self, role: str) -> Session:
        s = self.sessions[role]
        return login(self.url, s.username, s.password, role)


def login(url: str, username: str, password: str, role: str = "") -> Session:
    r = httpx.post(
        url + "/api/admin/auth/login",
        json={"username": username, "password": password},
        timeout=40,
    )
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    return Session(
        role or data["user"]["role"],
        username,
        password,
        r.cookies["opstage_session"],
        data["csrfToken"],
    )


def send(
    url: str,
    method: str,
    path: str,
    *,
    cookie: str | None = None,
    csrf: str | None = None,
    body: Any = None,
) -> httpx.Response:
    """One request with exactly the credentials given: no cookie jar, no automatic header."""
    headers = {}
    if cookie is not None:
        headers["Cookie"] = f"opstage_session={cookie}"
    if csrf is not None:
        headers["X-CSRF-Token"] = csrf
    kw: dict[str, Any] = {} if body is None else {"json": body}
    client = _http()
    client.cookies.clear()  # never let a Set-Cookie from an earlier answer ride along
    with client.stream(method, url + path, headers=headers, **kw) as r:
        if r.headers.get("content-type", "").startswith("text/event-stream"):
            return r  # the status and headers are the answer: a live stream never ends
        r.read()
    return r


@cache
def _http() -> httpx.Client:
    return httpx.Client(timeout=40)


def error_code(r: httpx.Response, status: int) -> str:
    """Assert the status and the contract's error envelope; return ``error.code``."""
    assert r.status_code == status, f"expected {status}, got {r.status_code}: {r.text}"
    body = r.json()
    assert body["success"] is False, body
    assert isinstance(body["error"]["code"], str), body
    assert isinstance(body["error"]["message"], str), body
    code: str = body["error"]["code"]
    return code


def call(world: World, op: Op, session: Session | None, *, csrf: str | None = "auto") -> Any:
    req = request_for(op)
    token = (session.csrf if session else None) if csrf == "auto" else csrf
    # State changes always address ghosts, so even a missing check cannot destroy fixtures.
    return send(
        world.url,
        op[0],
        world.path(op, "ghost" if op[0] in STATE_CHANGING else req.ids),
        cookie=session.cookie if session else None,
        csrf=token,
        body=req.body,
    )


@pytest.fixture(scope="module")
def world(server: ServerProcess) -> World:
    """An operator and a viewer, a live agent/service/command/token, and a session per role."""
    with AdminClient(server.url) as owner:
        owner.login()
        creds = {"owner": (ADMIN_USERNAME, ADMIN_PASSWORD)}
        for role in ("operator", "viewer"):
            creds[role] = owner.create_user(role)
        token = owner.data("POST", "/api/admin/registration-tokens", json={"name": "matrix"})
        agent = register(server.url, owner.create_token(name="matrix-agent"), unique("matrix"))
        svc = agent.report(service(unique("svc"), action("noop")))["services"][0]
        cmd = owner.data(
            "POST", f"/api/admin/capsule-services/{svc['id']}/actions/noop", json={"payload": {}}
        )
        audit = owner.data("GET", "/api/admin/audit-events", params={"pageSize": 1})
        me = owner.data("GET", "/api/admin/auth/me")["user"]
        agent.close()
    sessions = {role: login(server.url, *creds[role], role) for role in ROLES}
    return World(
        server.url,
        sessions,
        {
            "userId": me["id"],
            "tokenId": token["id"],
            "agentId": agent.agent_id,
            "serviceId": svc["id"],
            "actionName": "noop",
            "commandId": cmd["id"],
            "auditEventId": audit[0]["id"],
        },
    )


# --- the route list ------------------------------------------------------------------------


def test_route_list_is_the_running_servers(server: ServerProcess) -> None:
    r = httpx.get(server.url + "/api/openapi.json", timeout=40)
    assert r.status_code == 200
    assert _operations(r.json()) == ADMIN_OPS
    assert len(ADMIN_OPS) >= 30, ADMIN_OPS


@pytest.mark.parametrize("op", contract_admin_operations() or [("-", "-")], ids=_op_id)
def test_contract_admin_route_is_served(op: Op) -> None:
    if op == ("-", "-"):
        pytest.skip("contract not found (set OPSTAGE_CONTRACTS_DIR)")
    assert op in ADMIN_OPS, f"the contract's {_op_id(op)} is not served"


@pytest.mark.parametrize("op", ADMIN_OPS, ids=_op_id)
def test_route_has_an_expected_permission(op: Op) -> None:
    assert op in ROUTE_PERMISSIONS, f"{_op_id(op)} is served: add it to ROUTE_PERMISSIONS"
    assert (ROUTE_PERMISSIONS[op] is None) == (op in PUBLIC)


def test_permission_table_is_rbacs() -> None:
    known = set().union(*rbac.PERMISSIONS.values())
    for op, permission in ROUTE_PERMISSIONS.items():
        assert permission is None or permission in known, (op, permission)
    stale = [
        op
        for op in ROUTE_PERMISSIONS
        if op not in ADMIN_OPS and op not in contract_admin_operations()
    ]
    assert not stale, f"ROUTE_PERMISSIONS names routes nobody serves or specifies: {stale}"
    assert set(rbac.PERMISSIONS) == set(ROLES)
    # Invariants of the role model: reads for all, user admin for owners, nesting of roles.
    assert rbac.PERMISSIONS["viewer"] == frozenset({READ})
    assert rbac.PERMISSIONS["viewer"] <= rbac.PERMISSIONS["operator"] <= rbac.PERMISSIONS["owner"]
    assert [r for r in ROLES if rbac.allowed(r, "users:admin")] == ["owner"]
    for role in ROLES:
        for op, permission in ROUTE_PERMISSIONS.items():
            if permission is not None:
                assert rbac.allowed(role, permission) == (permission in rbac.PERMISSIONS[role]), op


# --- 401: no session -----------------------------------------------------------------------


@pytest.mark.parametrize("cookie", ["none", "bogus"])
@pytest.mark.parametrize("op", GUARDED, ids=_op_id)
def test_no_session_is_401(world: World, op: Op, cookie: str) -> None:
    session = None
    if cookie == "bogus":
        # A cookie no session has and a CSRF header: the session check still answers first.
        session = Session("nobody", "", "", "not-a-session-" + "0" * 32, "not-a-token")
    r = call(world, op, session)
    assert error_code(r, 401) in {"UNAUTHORIZED", "SESSION_INVALID"}


def test_gate_runs_before_query_validation(world: World) -> None:
    """An invalid query string does not let a caller skip the 401/403 (nor learn the 422)."""
    r = send(world.url, "GET", "/api/admin/agents?pageSize=1000&status=ASLEEP")
    assert error_code(r, 401) in {"UNAUTHORIZED", "SESSION_INVALID"}
    viewer = world.sessions["viewer"]
    r = send(world.url, "GET", "/api/admin/users?pageSize=1000&role=king", cookie=viewer.cookie)
    assert error_code(r, 403) == "FORBIDDEN"
    owner = world.sessions["owner"]
    r = send(world.url, "GET", "/api/admin/users?pageSize=1000", cookie=owner.cookie)
    assert error_code(r, 422) == "VALIDATION_FAILED"


def test_login_is_public(world: World) -> None:
    assert error_code(send(world.url, *LOGIN, body={}), 422) == "VALIDATION_FAILED"
    s = world.sessions["viewer"]
    r = send(world.url, *LOGIN, body={"username": s.username, "password": s.password})
    assert r.status_code == 200, r.text
    assert r.json()["data"]["user"]["role"] == "viewer"


# --- 403 CSRF_INVALID: state changes and prepare -------------------------------------------

CSRF_CASES = {
    "owner-missing": ("owner", None),
    "viewer-wrong": ("viewer", "not-the-token"),  # checked before the role: not FORBIDDEN
    "operator-foreign": ("operator", "owner"),  # a valid token of another session
}


@pytest.mark.parametrize("case", list(CSRF_CASES))
@pytest.mark.parametrize("op", CSRF_OPS, ids=_op_id)
def test_state_change_without_csrf_is_403(world: World, op: Op, case: str) -> None:
    role, header = CSRF_CASES[case]
    if header == "owner":
        header = world.sessions["owner"].csrf
    r = call(world, op, world.sessions[role], csrf=header)
    assert error_code(r, 403) == "CSRF_INVALID"


@pytest.mark.parametrize("op", SAFE_READS, ids=_op_id)
def test_reads_need_no_csrf(world: World, op: Op) -> None:
    req = request_for(op)
    session = world.fresh("owner") if req.fresh_session else world.sessions["owner"]
    r = call(world, op, session, csrf=None)
    assert r.status_code not in (401, 403), r.text
    if req.allowed_status is not None:
        assert r.status_code == req.allowed_status, r.text


def test_prepare_is_the_only_read_that_needs_csrf() -> None:
    assert PREPARE in CSRF_OPS
    assert [op for op in CSRF_OPS if op[0] not in STATE_CHANGING] == [PREPARE]


# --- the role gate -------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("op", GUARDED, ids=_op_id)
def test_role_gate(world: World, op: Op, role: str) -> None:
    permission = ROUTE_PERMISSIONS.get(op)
    assert permission is not None, f"{_op_id(op)} has no expected permission"
    req = request_for(op)
    session = world.fresh(role) if req.fresh_session else world.sessions[role]
    r = call(world, op, session)
    if permission in rbac.PERMISSIONS[role]:
        assert r.status_code not in (401, 403), f"{role} refused: {r.status_code} {r.text}"
        if req.allowed_status is not None:
            assert r.status_code == req.allowed_status, r.text
        if r.status_code == 404:
            # A use case's 404, not "no such route".
            assert error_code(r, 404) not in {"NOT_FOUND", "STATIC_NOT_FOUND"}
    else:
        assert error_code(r, 403) == "FORBIDDEN"
        assert r.json()["error"]["details"]["required"] == permission


# --- session lifecycle ---------------------------------------------------------------------


def _me(url: str, s: Session) -> httpx.Response:
    return send(url, "GET", "/api/admin/auth/me", cookie=s.cookie)


def _user_id(url: str, s: Session) -> str:
    r = _me(url, s)
    assert r.status_code == 200, r.text
    uid: str = r.json()["data"]["user"]["id"]
    return uid


def test_disabled_users_session_stops_working(world: World, admin: AdminClient) -> None:
    username, password = admin.create_user("operator")
    s = login(world.url, username, password)
    uid = _user_id(world.url, s)
    admin.data("PATCH", f"/api/admin/users/{uid}", json={"status": "DISABLED"})
    assert error_code(_me(world.url, s), 401) in {"UNAUTHORIZED", "SESSION_INVALID"}
    r = send(world.url, "POST", "/api/admin/registration-tokens", cookie=s.cookie, csrf=s.csrf)
    assert error_code(r, 401) in {"UNAUTHORIZED", "SESSION_INVALID"}
    # The session was ended, not suspended: enabling the user does not bring it back.
    admin.data("PATCH", f"/api/admin/users/{uid}", json={"status": "ACTIVE"})
    assert error_code(_me(world.url, s), 401) in {"UNAUTHORIZED", "SESSION_INVALID"}


def test_role_change_ends_sessions(world: World, admin: AdminClient) -> None:
    username, password = admin.create_user("operator")
    s = login(world.url, username, password)
    uid = _user_id(world.url, s)
    admin.data("PATCH", f"/api/admin/users/{uid}", json={"role": "viewer"})
    assert error_code(_me(world.url, s), 401) in {"UNAUTHORIZED", "SESSION_INVALID"}
    again = login(world.url, username, password)
    r = send(
        world.url,
        "POST",
        "/api/admin/registration-tokens",
        cookie=again.cookie,
        csrf=again.csrf,
        body={},
    )
    assert error_code(r, 403) == "FORBIDDEN"


def test_password_reset_ends_the_users_sessions(world: World, admin: AdminClient) -> None:
    username, password = admin.create_user("viewer")
    first, second = login(world.url, username, password), login(world.url, username, password)
    uid = _user_id(world.url, first)
    new_password = "reset-" + password
    admin.data("POST", f"/api/admin/users/{uid}/reset-password", json={"password": new_password})
    for s in (first, second):
        assert error_code(_me(world.url, s), 401) in {"UNAUTHORIZED", "SESSION_INVALID"}
    assert _me(world.url, login(world.url, username, new_password)).status_code == 200


def test_own_password_reset_keeps_only_the_current_session(make_server: Any) -> None:
    srv = make_server()
    current = login(srv.url, ADMIN_USERNAME, ADMIN_PASSWORD)
    other = login(srv.url, ADMIN_USERNAME, ADMIN_PASSWORD)
    uid = _user_id(srv.url, current)
    r = send(
        srv.url,
        "POST",
        f"/api/admin/users/{uid}/reset-password",
        cookie=current.cookie,
        csrf=current.csrf,
        body={"password": "another-owner-password-1"},
    )
    assert r.status_code == 200, r.text
    assert _me(srv.url, current).status_code == 200
    assert error_code(_me(srv.url, other), 401) in {"UNAUTHORIZED", "SESSION_INVALID"}


def test_last_owner_cannot_be_demoted_or_disabled(make_server: Any) -> None:
    srv = make_server()
    s = login(srv.url, ADMIN_USERNAME, ADMIN_PASSWORD)
    uid = _user_id(srv.url, s)
    for change in ({"role": "operator"}, {"role": "viewer"}, {"status": "DISABLED"}):
        r = send(
            srv.url, "PATCH", f"/api/admin/users/{uid}", cookie=s.cookie, csrf=s.csrf, body=change
        )
        assert error_code(r, 409) == "LAST_OWNER_REQUIRED", change
    assert _me(srv.url, s).json()["data"]["user"]["role"] == "owner"
    # The rule is about the *last* owner: with a second owner the first may step down.
    with AdminClient(srv.url) as c:
        c.login()
        c.create_user("owner")
        demoted = c.data("PATCH", f"/api/admin/users/{uid}", json={"role": "operator"})
    assert demoted["role"] == "operator"


def test_logout_ends_the_session(world: World) -> None:
    s = world.fresh("operator")
    assert _me(world.url, s).status_code == 200
    r = send(world.url, "POST", "/api/admin/auth/logout", cookie=s.cookie, csrf=s.csrf)
    assert r.status_code == 200, r.text
    assert r.json()["success"] is True
    cleared = r.headers.get("set-cookie", "").lower()
    assert cleared.startswith("opstage_session=")
    assert "max-age=0" in cleared or "expires=thu, 01 jan 1970" in cleared, cleared
    assert error_code(_me(world.url, s), 401) in {"UNAUTHORIZED", "SESSION_INVALID"}
    r = send(world.url, "POST", "/api/admin/auth/logout", cookie=s.cookie, csrf=s.csrf)
    assert error_code(r, 401) in {"UNAUTHORIZED", "SESSION_INVALID"}


def test_session_survives_a_restart(make_server: Any) -> None:
    srv = make_server()
    s = login(srv.url, ADMIN_USERNAME, ADMIN_PASSWORD)
    assert _me(srv.url, s).status_code == 200
    srv.stop()
    srv.start()  # same data and session secret; the port (so the url) may change
    me = _me(srv.url, s)
    assert me.status_code == 200, me.text
    assert me.json()["data"]["user"]["username"] == ADMIN_USERNAME
    # The CSRF token lives with the session: a state change with it still passes.
    r = send(
        srv.url,
        "POST",
        "/api/admin/registration-tokens",
        cookie=s.cookie,
        csrf=s.csrf,
        body={"name": "after-restart"},
    )
    assert r.status_code == 200, r.text


# --- docs/rbac.md --------------------------------------------------------------------------

BEGIN, END = "<!-- BEGIN GENERATED: {} -->", "<!-- END GENERATED: {} -->"


def _roles_for(permission: str | None) -> list[str]:
    if permission is None:
        return list(ROLES)
    return [r for r in ROLES if permission in rbac.PERMISSIONS[r]]


def permissions_table() -> str:
    perms = sorted(set().union(*rbac.PERMISSIONS.values()), key=lambda p: (p != READ, p))
    used: dict[str, int] = {}
    for op, p in ROUTE_PERMISSIONS.items():
        if p is not None and op in ADMIN_OPS:
            used[p] = used.get(p, 0) + 1
    lines = [
        "| permission | owner | operator | viewer | routes using it |",
        "| --- | --- | --- | --- | --- |",
    ]
    for p in perms:
        marks = " | ".join("yes" if p in rbac.PERMISSIONS[r] else "—" for r in ROLES)
        lines.append(f"| `{p}` | {marks} | {used.get(p, 'none yet')} |")
    return "\n".join(lines)


def routes_table() -> str:
    lines = [
        "| method | path | permission | owner | operator | viewer | CSRF |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    order = sorted(ROUTE_PERMISSIONS, key=lambda op: (op[1], HTTP_METHODS.index(op[0].lower())))
    for op in order:
        p = ROUTE_PERMISSIONS[op]
        allowed = _roles_for(p)
        marks = " | ".join("yes" if r in allowed else "—" for r in ROLES)
        csrf = "yes" if (op[0] in STATE_CHANGING and op not in PUBLIC) or op == PREPARE else "—"
        path = f"`{op[1]}`" + ("" if op in ADMIN_OPS else " (contract; not served yet)")
        perm = "public" if p is None else f"`{p}`"
        lines.append(f"| {op[0]} | {path} | {perm} | {marks} | {csrf} |")
    return "\n".join(lines)


GENERATED = {"permissions": permissions_table, "routes": routes_table}


def _section(text: str, name: str) -> str | None:
    start, end = BEGIN.format(name), END.format(name)
    if start not in text or end not in text:
        return None
    return text.split(start, 1)[1].split(end, 1)[0].strip()


def render_rbac_doc(text: str) -> str:
    for name, make in GENERATED.items():
        start, end = BEGIN.format(name), END.format(name)
        head, rest = text.split(start, 1)
        _, tail = rest.split(end, 1)
        text = f"{head}{start}\n{make()}\n{end}{tail}"
    return text


@pytest.mark.parametrize("name", list(GENERATED))
def test_rbac_doc_is_current(name: str) -> None:
    text = RBAC_DOC.read_text()
    assert _section(text, name) == GENERATED[name](), (
        "docs/rbac.md is stale; regenerate: cd packages/opstage && "
        "../../.venv/bin/python -m tests.e2e.test_access_matrix"
    )


if __name__ == "__main__":
    RBAC_DOC.write_text(render_rbac_doc(RBAC_DOC.read_text()))
    print(f"wrote {RBAC_DOC}")
