"""HTTP clients that speak to a running server as an operator or as an agent would."""

from __future__ import annotations

import secrets
import time
from typing import Any

import httpx
from opstage.api import inputs
from opstage.api.models import BusRouteRequest, ReportedService
from opstage.app.bus_routes import RouteSpec
from opstage.app.services import ServiceReport

from opstage_testing.server import ADMIN_PASSWORD, ADMIN_USERNAME


class AdminClient(httpx.Client):
    """A browser-like session: cookie jar plus the CSRF header on every state change."""

    csrf: str | None = None

    def __init__(self, base_url: str, **kw: Any) -> None:
        super().__init__(base_url=base_url, timeout=kw.pop("timeout", 40.0), **kw)

    def login(self, username: str = ADMIN_USERNAME, password: str = ADMIN_PASSWORD) -> AdminClient:
        r = self.post("/api/admin/auth/login", json={"username": username, "password": password})
        assert r.status_code == 200, r.text
        self.csrf = r.json()["data"]["csrfToken"]
        return self

    def request(self, method: str, url: Any, **kw: Any) -> httpx.Response:
        # Like the console: the header rides on every call (prepare is a GET that needs it).
        if self.csrf:
            headers = dict(kw.pop("headers", None) or {})
            headers.setdefault("X-CSRF-Token", self.csrf)
            kw["headers"] = headers
        return super().request(method, url, **kw)

    def data(self, method: str, url: str, **kw: Any) -> Any:
        r = self.request(method, url, **kw)
        assert r.status_code == 200, f"{method} {url} -> {r.status_code} {r.text}"
        body = r.json()
        assert body["success"] is True
        return body["data"]

    def every(self, path: str, **params: Any) -> list[dict[str, Any]]:
        """Every item of a paginated admin list, page by page."""
        items: list[dict[str, Any]] = []
        page = 1
        while True:
            body = self.get(path, params={**params, "page": page, "pageSize": 100}).json()
            items += body["data"]
            if len(items) >= body["pagination"]["total"] or not body["data"]:
                return items
            page += 1

    def parked_polls(self) -> int:
        """Long polls parked on the server now (its waiter count, a diagnostics figure)."""
        waiters = self.data("GET", "/api/admin/diagnostics/runtime")["waiters"]
        waiting: int = waiters["waiting"]
        return waiting

    def wait_parked(self, at_least: int = 1, timeout: float = 10.0) -> int:
        """Until ``at_least`` long polls are parked: a condition, where a sleep would guess."""
        deadline = time.monotonic() + timeout
        while (parked := self.parked_polls()) < at_least:
            if time.monotonic() > deadline:
                raise AssertionError(f"{parked} long polls parked after {timeout}s, not {at_least}")
            time.sleep(0.02)
        return parked

    def create_token(self, **body: Any) -> str:
        data = self.data("POST", "/api/admin/registration-tokens", json=body)
        raw: str = data["rawToken"]
        return raw

    def create_user(self, role: str, password: str | None = None) -> tuple[str, str]:
        username = f"{role}-{secrets.token_hex(4)}"
        password = password or "pw-" + secrets.token_hex(8)
        self.data(
            "POST",
            "/api/admin/users",
            json={"username": username, "password": password, "role": role},
        )
        return username, password


class AgentClient(httpx.Client):
    def __init__(self, base_url: str, agent_id: str, token: str, **kw: Any) -> None:
        super().__init__(
            base_url=base_url,
            timeout=kw.pop("timeout", 40.0),
            headers={"Authorization": f"Bearer {token}"},
            **kw,
        )
        self.agent_id = agent_id
        self.token = token

    def ok(self, method: str, path: str, **kw: Any) -> Any:
        r = self.request(method, f"/api/agents/{self.agent_id}{path}", **kw)
        assert r.status_code == 200, f"{method} {path} -> {r.status_code} {r.text}"
        return r.json()["data"]

    def heartbeat(self, health: dict[str, Any] | None = None) -> Any:
        return self.ok("POST", "/heartbeat", json={"health": health} if health else {})

    def report(self, *services: dict[str, Any]) -> Any:
        return self.ok("POST", "/services/report", json={"services": list(services)})

    def poll(self, wait: float | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        params: dict[str, Any] = {}
        if wait is not None:
            params["waitSeconds"] = wait
        if limit is not None:
            params["limit"] = limit
        data: list[dict[str, Any]] = self.ok("GET", "/commands", params=params)
        return data

    def result(self, command_id: str, **body: Any) -> httpx.Response:
        body.setdefault("startedAt", "2026-01-01T00:00:00.000Z")
        body.setdefault("finishedAt", "2026-01-01T00:00:01.000Z")
        return self.post(f"/api/agents/{self.agent_id}/commands/{command_id}/result", json=body)


class OwnerSessions:
    """The owner's session on each server, logged in once and resumed by every test after.

    A login is an argon2 check (0.1-0.5 s on a loaded machine) and most tests only need to be
    the owner: the fixtures that hand out an owner client resume the saved session cookie on a
    new client instead, with the session's current CSRF token from ``GET /auth/me``. A session
    a test ended (logout) or a server that is no longer the one on that URL answers 401 there,
    and the client logs in afresh. The login itself is tested where it is the point.
    """

    def __init__(self) -> None:
        self._cookies: dict[str, httpx.Cookies] = {}

    def client(self, base_url: str) -> AdminClient:
        client = AdminClient(base_url)
        saved = self._cookies.get(base_url)
        if saved is not None:
            client.cookies.update(saved)
            me = client.get("/api/admin/auth/me")
            if me.status_code == 200:
                client.csrf = me.json()["data"]["csrfToken"]
                return client
            client.cookies.clear()
        client.login()
        self._cookies[base_url] = httpx.Cookies(client.cookies)
        return client


def register(
    base_url: str, registration_token: str, code: str, *, online: bool = True, **extra: Any
) -> AgentClient:
    """Register like the Node agent does; ``online`` also sends its first heartbeat."""
    body = {"registrationToken": registration_token, "agent": {"code": code, "name": code, **extra}}
    r = httpx.post(base_url + "/api/agents/register", json=body, timeout=30)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    agent = AgentClient(base_url, data["agentId"], data["agentToken"])
    if online:
        agent.heartbeat()
    return agent


def service(code: str, *actions: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A service report entry shaped like the Node agent's."""
    return {
        "code": code,
        "name": extra.pop("name", code),
        "version": "1.0.0",
        "runtime": "python",
        "manifest": {"kind": "CapsuleService", "code": code},
        "health": extra.pop("health", {"status": "UP"}),
        "configs": extra.pop("configs", []),
        "actions": list(actions),
        **extra,
    }


def service_report(code: str, *actions: dict[str, Any], **extra: Any) -> ServiceReport:
    """``service``'s entry as the app's typed input, parsed as the API parses it."""
    return inputs.service_report(ReportedService.model_validate(service(code, *actions, **extra)))


def route_spec(body: dict[str, Any]) -> RouteSpec:
    """A bus route body as the app's typed input, parsed as the API parses it."""
    return inputs.route_spec(BusRouteRequest.model_validate(body))


def action(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "label": extra.pop("label", name), **extra}
