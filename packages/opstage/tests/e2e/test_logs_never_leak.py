"""No secret is ever logged: a full run at DEBUG level, then its whole log grepped for each one.

The run creates every kind of secret the server handles — the admin password and other users'
passwords, session cookies, CSRF tokens, registration tokens (used, unused, revoked), agent
tokens (issued and rotated), the metrics bearer token, a sensitive config value, a one-time
secret in an action result — and also sends wrong ones (a failed login, a forged agent token).
The server runs at ``DEBUG`` so that every logger that could speak does.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable

import httpx
from opstage_testing.clients import AdminClient, action, register, service
from opstage_testing.server import ADMIN_PASSWORD, ServerProcess

from ..conftest import unique

ServerFactory = Callable[..., ServerProcess]


def test_a_full_run_logs_no_secret(make_server_process: ServerFactory) -> None:
    metrics_token = "scrape-" + secrets.token_hex(16)
    srv = make_server_process(OPSTAGE_LOG_LEVEL="DEBUG", OPSTAGE_METRICS_TOKEN=metrics_token)
    secrets_made: dict[str, str] = {
        "admin password": ADMIN_PASSWORD,
        "session secret": srv.env["OPSTAGE_SESSION_SECRET"],
        "metrics token": metrics_token,
    }
    with AdminClient(srv.url) as owner:
        owner.login()
        secrets_made["owner session cookie"] = owner.cookies["opstage_session"]
        secrets_made["owner csrf token"] = owner.csrf or ""
        rotated = owner.data("GET", "/api/admin/auth/csrf")["csrfToken"]
        owner.csrf = rotated
        secrets_made["rotated csrf token"] = rotated

        username, password = owner.create_user("operator", "op-" + secrets.token_hex(10))
        secrets_made["operator password"] = password
        wrong = "wrong-" + secrets.token_hex(10)
        r = httpx.post(
            srv.url + "/api/admin/auth/login",
            json={"username": username, "password": wrong},
            timeout=30,
        )
        assert r.status_code == 401
        secrets_made["a wrong password"] = wrong
        with AdminClient(srv.url) as operator:
            operator.login(username, password)
            secrets_made["operator session cookie"] = operator.cookies["opstage_session"]
            secrets_made["operator csrf token"] = operator.csrf or ""
            users = owner.data("GET", "/api/admin/users", params={"q": username})
            reset = "reset-" + secrets.token_hex(10)
            owner.data(
                "POST",
                f"/api/admin/users/{users[0]['id']}/reset-password",
                json={"password": reset},
            )
            secrets_made["reset password"] = reset

        code = unique("leak")
        raw = owner.create_token(name="leak", agentCode=code)
        secrets_made["registration token"] = raw
        unused = owner.create_token(name="unused")
        secrets_made["unused registration token"] = unused
        revoked = owner.data("POST", "/api/admin/registration-tokens", json={"name": "revoked"})
        owner.data("POST", f"/api/admin/registration-tokens/{revoked['id']}/revoke", json={})
        secrets_made["revoked registration token"] = revoked["rawToken"]

        agent = register(srv.url, raw, code)
        secrets_made["agent token"] = agent.token
        agent.heartbeat({"status": "UP"})
        api_key = "sk-live-" + secrets.token_hex(12)
        secrets_made["sensitive config value"] = api_key
        svc = agent.report(
            service(
                unique("leak-svc"),
                action("rotate"),
                configs=[
                    {"key": "apiKey", "type": "string", "sensitive": True, "valuePreview": api_key}
                ],
            )
        )["services"][0]
        command = owner.data(
            "POST", f"/api/admin/capsule-services/{svc['id']}/actions/rotate", json={"payload": {}}
        )
        (claimed,) = agent.poll(wait=5)
        generated = "gk-" + secrets.token_hex(16)
        secrets_made["one-time generated key"] = generated
        r = agent.result(
            claimed["id"], success=True, message="rotated", data={"generatedKey": generated}
        )
        assert r.status_code == 200, r.text
        owner.data("GET", f"/api/admin/commands/{command['id']}")

        # Re-registering the same code rotates the agent token.
        again = owner.create_token(name="rotate", agentCode=code)
        secrets_made["second registration token"] = again
        rotated_agent = register(srv.url, again, code)
        secrets_made["rotated agent token"] = rotated_agent.token
        assert rotated_agent.token != agent.token
        assert agent.post(f"/api/agents/{agent.agent_id}/heartbeat", json={}).status_code == 401

        forged = "opstage_agent_" + secrets.token_urlsafe(24)
        r = httpx.post(
            f"{srv.url}/api/agents/{agent.agent_id}/heartbeat",
            headers={"Authorization": f"Bearer {forged}"},
            json={},
            timeout=30,
        )
        assert r.status_code == 401
        secrets_made["forged agent token"] = forged

        assert (
            httpx.get(
                srv.url + "/metrics",
                headers={"Authorization": f"Bearer {metrics_token}"},
                timeout=30,
            ).status_code
            == 200
        )
        owner.post("/api/admin/auth/logout", json={})
        agent.close()
        rotated_agent.close()

    srv.stop()  # every line flushed
    log = srv.log()

    # The log is the real thing: JSON lines at DEBUG, one access line per request of the run.
    records = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    routes = {r.get("route") for r in records if r.get("logger") == "opstage.access"}
    for route in (
        "/api/admin/auth/login",
        "/api/agents/register",
        "/api/agents/{agentId}/heartbeat",
        "/api/agents/{agentId}/services/report",
        "/api/admin/capsule-services/{serviceId}/actions/{actionName}",
        "/api/agents/{agentId}/commands/{commandId}/result",
        "/metrics",
    ):
        assert route in routes, f"no access line for {route}"

    assert all(len(value) >= 12 for value in secrets_made.values()), secrets_made
    leaked = {name: value for name, value in secrets_made.items() if value in log}
    assert not leaked, f"secrets found in the server log: {sorted(leaked)}"
