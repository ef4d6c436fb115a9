"""Every agent route refuses a missing, malformed, unknown, rotated, revoked or foreign token.

The agent routes are those of the application's OpenAPI document under
``/api/agents/{agentId}/`` (compared with the running server's), so a new agent route is checked
without editing this file. Expected codes are the contract's (``errors.json``):

| credential                                   | status | code                  |
| -------------------------------------------- | ------ | --------------------- |
| no/malformed ``Authorization``, unknown token | 401    | ``AGENT_TOKEN_INVALID`` |
| a token superseded by re-registration        | 401    | ``AGENT_TOKEN_REVOKED`` |
| the token of a revoked agent                 | 403    | ``AGENT_REVOKED``       |
| another agent's valid token                  | 403    | ``AGENT_ID_MISMATCH``   |
| the token of a disabled agent                | 403    | ``AGENT_DISABLED``      |

(``status-enums.json``: a REVOKED agent's token "is rejected with AGENT_REVOKED";
``AGENT_TOKEN_REVOKED`` is left for a token revoked while its agent is in good standing.)
"""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import httpx
import pytest
from opstage_testing.clients import AdminClient, AgentClient, action, register, service
from opstage_testing.server import ServerProcess

from ..conftest import unique

AGENT_PREFIX = "/api/agents/{agentId}/"
HTTP_METHODS = ("get", "post", "put", "patch", "delete")
GHOST_COMMAND = "cmd_" + "0" * 26

Op = tuple[str, str]


@cache
def app_openapi() -> dict[str, Any]:
    from opstage.api.app import create_app
    from opstage.settings import Settings

    app = create_app(Settings(session_secret="collection-only-" + "x" * 32))
    spec: dict[str, Any] = app.openapi()
    return spec


def agent_operations(spec: dict[str, Any]) -> list[Op]:
    return sorted(
        (method.upper(), path)
        for path, item in spec.get("paths", {}).items()
        if path.startswith(AGENT_PREFIX)
        for method in item
        if method in HTTP_METHODS
    )


AGENT_OPS = agent_operations(app_openapi())

# A body each route accepts from its own agent, and what that agent gets back.
BODIES: dict[str, Any] = {
    "/heartbeat": {"health": {"status": "UP", "message": "ok"}},
    "/services/report": {"services": [service("auth-probe", action("noop"))]},
    "/commands/{commandId}/result": {"success": True, "message": "done"},
    "/bus/events": {"eventType": "probe.happened", "sourceServiceCode": "auth-probe"},
}
OWN_TOKEN_STATUS: dict[str, int | None] = {
    "/heartbeat": 200,
    "/services/report": 200,
    "/commands": 200,
    "/commands/{commandId}/result": 404,  # the gate passed; the command does not exist
    "/bus/events": None,  # depends on OPSTAGE_CAPSULE_BUS_ENABLED; never 401/403
}


def _suffix(op: Op) -> str:
    return op[1][len(AGENT_PREFIX) - 1 :]


def _op_id(op: Op) -> str:
    return f"{op[0]} {op[1]}"


def error_code(r: httpx.Response, status: int, *secrets_: str) -> str:
    assert r.status_code == status, f"expected {status}, got {r.status_code}: {r.text}"
    body = r.json()
    assert body["success"] is False, body
    assert isinstance(body["error"]["message"], str), body
    for s in secrets_:
        assert s not in r.text, "an error body echoes the credential"
    code: str = body["error"]["code"]
    return code


def call(
    url: str, op: Op, agent_id: str, authorization: str | None, **headers: str
) -> httpx.Response:
    path = op[1].replace("{agentId}", agent_id).replace("{commandId}", GHOST_COMMAND)
    if authorization is not None:
        headers["Authorization"] = authorization
    body = BODIES.get(_suffix(op), {}) if op[0] != "GET" else None
    kw: dict[str, Any] = {} if body is None else {"json": body}
    return httpx.request(op[0], url + path, headers=headers, timeout=40, **kw)


@dataclass
class Fleet:
    url: str
    good: AgentClient
    other: AgentClient
    revoked: AgentClient
    disabled: AgentClient
    rotated_old: AgentClient  # its token was superseded by a re-registration
    rotated_new: AgentClient
    registration_token: str  # unused
    admin_cookie: str
    admin_csrf: str


@pytest.fixture(scope="module")
def fleet(server: ServerProcess) -> Iterator[Fleet]:
    with AdminClient(server.url) as admin:
        admin.login()

        def agent() -> AgentClient:
            return register(server.url, admin.create_token(), unique("auth"))

        good, other, revoked, disabled = agent(), agent(), agent(), agent()
        admin.data("POST", f"/api/admin/agents/{revoked.agent_id}/revoke")
        admin.data("POST", f"/api/admin/agents/{disabled.agent_id}/disable")
        code = unique("rotated")
        rotated_old = register(server.url, admin.create_token(), code)
        rotated_new = register(server.url, admin.create_token(), code)
        assert rotated_new.agent_id == rotated_old.agent_id
        fleet = Fleet(
            server.url,
            good,
            other,
            revoked,
            disabled,
            rotated_old,
            rotated_new,
            admin.create_token(),
            admin.cookies["opstage_session"],
            admin.csrf or "",
        )
    yield fleet
    for c in (good, other, revoked, disabled, rotated_old, rotated_new):
        c.close()


# scenario -> (whose path, Authorization header, status, code)
def _scenario(f: Fleet, name: str) -> tuple[str, str | None, int, str, dict[str, str]]:
    good = f.good.agent_id
    bearer = "Bearer {}".format
    invalid = (401, "AGENT_TOKEN_INVALID")
    table: dict[str, tuple[str, str | None, tuple[int, str]]] = {
        "missing": (good, None, invalid),
        "not-bearer": (good, "Basic " + f.good.token, invalid),
        "empty-bearer": (good, "Bearer", invalid),
        "two-tokens": (good, f"Bearer {f.good.token} {f.good.token}", invalid),
        "unknown": (good, bearer("opstage_agent_" + secrets.token_urlsafe(32)), invalid),
        "registration-token": (good, bearer(f.registration_token), invalid),
        "rotated": (
            f.rotated_old.agent_id,
            bearer(f.rotated_old.token),
            (401, "AGENT_TOKEN_REVOKED"),
        ),
        "revoked-agent": (f.revoked.agent_id, bearer(f.revoked.token), (403, "AGENT_REVOKED")),
        "other-agent": (good, bearer(f.other.token), (403, "AGENT_ID_MISMATCH")),
        "disabled-agent": (
            f.disabled.agent_id,
            bearer(f.disabled.token),
            (403, "AGENT_DISABLED"),
        ),
        "admin-session": (good, None, invalid),
    }
    agent_id, auth, (status, code) = table[name]
    extra = {}
    if name == "admin-session":
        # A browser session is not an agent credential, CSRF header or not.
        extra = {"Cookie": f"opstage_session={f.admin_cookie}", "X-CSRF-Token": f.admin_csrf}
    return agent_id, auth, status, code, extra


SCENARIOS = [
    "missing",
    "not-bearer",
    "empty-bearer",
    "two-tokens",
    "unknown",
    "registration-token",
    "rotated",
    "revoked-agent",
    "other-agent",
    "disabled-agent",
    "admin-session",
]


def test_agent_route_list_is_the_running_servers(server: ServerProcess) -> None:
    r = httpx.get(server.url + "/api/openapi.json", timeout=40)
    assert agent_operations(r.json()) == AGENT_OPS
    for op in [
        ("POST", "/api/agents/{agentId}/heartbeat"),
        ("POST", "/api/agents/{agentId}/services/report"),
        ("GET", "/api/agents/{agentId}/commands"),
        ("POST", "/api/agents/{agentId}/commands/{commandId}/result"),
    ]:
        assert op in AGENT_OPS, op


@pytest.mark.parametrize("op", AGENT_OPS, ids=_op_id)
def test_own_token_is_accepted(fleet: Fleet, op: Op) -> None:
    r = call(fleet.url, op, fleet.good.agent_id, f"Bearer {fleet.good.token}")
    assert r.status_code not in (401, 403), r.text
    expected = OWN_TOKEN_STATUS.get(_suffix(op))
    if expected is not None:
        assert r.status_code == expected, r.text
    if r.status_code == 404:
        assert error_code(r, 404) == "COMMAND_NOT_FOUND" or "BUS" in r.json()["error"]["code"]


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("op", AGENT_OPS, ids=_op_id)
def test_bad_credential_is_refused(fleet: Fleet, op: Op, scenario: str) -> None:
    agent_id, auth, status, code, extra = _scenario(fleet, scenario)
    r = call(fleet.url, op, agent_id, auth, **extra)
    tokens = [t for t in (fleet.good.token, fleet.other.token, fleet.revoked.token) if t]
    assert error_code(r, status, *tokens) == code


def test_rotated_token_is_replaced_by_the_new_one(fleet: Fleet) -> None:
    assert fleet.rotated_new.token != fleet.rotated_old.token
    assert fleet.rotated_new.heartbeat()["heartbeatIntervalSeconds"] > 0
    r = fleet.rotated_old.post(f"/api/agents/{fleet.rotated_old.agent_id}/heartbeat", json={})
    assert error_code(r, 401) == "AGENT_TOKEN_REVOKED"


def test_reregistration_rotates_the_agent_token(server: ServerProcess, admin: AdminClient) -> None:
    code = unique("rereg")
    first = register(server.url, admin.create_token(), code)
    first.heartbeat()
    second = register(server.url, admin.create_token(), code)
    assert second.agent_id == first.agent_id
    assert second.token != first.token
    for op in AGENT_OPS:
        r = call(server.url, op, first.agent_id, f"Bearer {first.token}")
        assert error_code(r, 401, first.token) == "AGENT_TOKEN_REVOKED", op
    second.heartbeat()
    first.close()
    second.close()


def test_disable_then_enable(server: ServerProcess, admin: AdminClient, new_agent: Any) -> None:
    agent = new_agent()
    admin.data("POST", f"/api/admin/agents/{agent.agent_id}/disable")
    r = agent.post(f"/api/agents/{agent.agent_id}/heartbeat", json={})
    assert error_code(r, 403) == "AGENT_DISABLED"
    admin.data("POST", f"/api/admin/agents/{agent.agent_id}/enable")
    agent.heartbeat()


def test_result_for_another_agents_command_is_refused(admin: AdminClient, new_agent: Any) -> None:
    owner, intruder = new_agent(), new_agent()
    svc = owner.report(service(unique("svc"), action("work")))["services"][0]
    cmd = admin.data(
        "POST", f"/api/admin/capsule-services/{svc['id']}/actions/work", json={"payload": {}}
    )
    r = intruder.result(cmd["id"], success=True, data={"forged": True})
    assert error_code(r, 403) == "COMMAND_NOT_OWNED"
    # The owner's command is untouched and still completes normally.
    assert admin.data("GET", f"/api/admin/commands/{cmd['id']}")["status"] == "PENDING"
    (polled,) = owner.poll()
    assert polled["id"] == cmd["id"]
    assert owner.result(cmd["id"], success=True).status_code == 200
    assert admin.data("GET", f"/api/admin/commands/{cmd['id']}")["result"]["data"] == {}


def test_result_for_an_unknown_command_is_404(new_agent: Any) -> None:
    agent = new_agent()
    r = agent.result(GHOST_COMMAND, success=True)
    assert error_code(r, 404) == "COMMAND_NOT_FOUND"


def test_result_is_only_accepted_by_the_right_path(admin: AdminClient, new_agent: Any) -> None:
    """The other agent's path with the owner's own token is a mismatch, not a command error."""
    owner, other = new_agent(), new_agent()
    svc = owner.report(service(unique("svc"), action("work")))["services"][0]
    cmd = admin.data(
        "POST", f"/api/admin/capsule-services/{svc['id']}/actions/work", json={"payload": {}}
    )
    r = owner.post(
        f"/api/agents/{other.agent_id}/commands/{cmd['id']}/result", json={"success": True}
    )
    assert error_code(r, 403) == "AGENT_ID_MISMATCH"


# --- registration tokens -------------------------------------------------------------------


def _register(url: str, token: str, code: str) -> httpx.Response:
    body = {"registrationToken": token, "agent": {"code": code, "name": code, "mode": "embedded"}}
    return httpx.post(url + "/api/agents/register", json=body, timeout=40)


def test_registration_token_is_single_use(server: ServerProcess, admin: AdminClient) -> None:
    raw = admin.create_token()
    code = unique("once")
    first = _register(server.url, raw, code)
    assert first.status_code == 200, first.text
    for again in (unique("twice"), code):
        r = _register(server.url, raw, again)
        assert error_code(r, 409, raw) == "REGISTRATION_TOKEN_USED"


def test_single_use_holds_under_a_race(server: ServerProcess, admin: AdminClient) -> None:
    raw = admin.create_token()
    results: list[int] = []

    def go() -> None:
        results.append(_register(server.url, raw, unique("race")).status_code)

    threads = [threading.Thread(target=go) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results) == [200] + [409] * 5, results


def test_revoked_registration_token_is_refused(server: ServerProcess, admin: AdminClient) -> None:
    created = admin.data("POST", "/api/admin/registration-tokens", json={"name": "to-revoke"})
    admin.data("POST", f"/api/admin/registration-tokens/{created['id']}/revoke")
    r = _register(server.url, created["rawToken"], unique("revoked"))
    assert error_code(r, 401, created["rawToken"]) == "REGISTRATION_TOKEN_REVOKED"


def test_unknown_registration_token_is_refused(server: ServerProcess) -> None:
    raw = "opstage_reg_" + secrets.token_urlsafe(32)
    r = _register(server.url, raw, unique("unknown"))
    assert error_code(r, 401, raw) == "REGISTRATION_TOKEN_INVALID"


def _expire_registration_token(srv: ServerProcess, token_id: str) -> None:
    """Move a token's expiry into the past in the server's database.

    The API will not create a token that expires in under 60 s, and waiting a minute is too
    slow, so the test reaches into the store with the server's own table definition.
    """
    from opstage.store.engine import normalize_url
    from opstage.store.tables import registration_tokens
    from sqlalchemy import update
    from sqlalchemy.ext.asyncio import create_async_engine

    url = srv.database_url or f"sqlite:///{(srv.data_dir / 'opstage.db').as_posix()}"

    async def go() -> None:
        engine = create_async_engine(normalize_url(url))
        try:
            async with engine.begin() as conn:
                done = await conn.execute(
                    update(registration_tokens)
                    .where(registration_tokens.c.id == token_id)
                    .values(expires_at=datetime.now(UTC) - timedelta(minutes=5))
                )
                assert done.rowcount == 1
        finally:
            await engine.dispose()

    asyncio.run(go())


def test_expired_registration_token_is_refused(server: ServerProcess, admin: AdminClient) -> None:
    created = admin.data(
        "POST", "/api/admin/registration-tokens", json={"name": "short", "expiresInSeconds": 60}
    )
    _expire_registration_token(server, created["id"])
    r = _register(server.url, created["rawToken"], unique("expired"))
    assert error_code(r, 401, created["rawToken"]) == "REGISTRATION_TOKEN_EXPIRED"
    listed = admin.data("GET", "/api/admin/registration-tokens", params={"pageSize": 100})
    assert next(t for t in listed if t["id"] == created["id"])["status"] == "EXPIRED"
