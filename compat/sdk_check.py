"""Our Python agent SDK against the reference server: register, heartbeat, report, receive a
command, run the action, report its result, answer a prepare, publish to the bus. Every check
reads the outcome through the reference's own admin API."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from opstage_agent import ActionError, Agent, Health, Prepared

from .servers import ADMIN_PASSWORD, ADMIN_USERNAME

Check = tuple[str, bool, str]


def _admin(url: str) -> tuple[httpx.Client, dict[str, str]]:
    c = httpx.Client(base_url=url, timeout=40)
    r = c.post(
        "/api/admin/auth/login", json={"username": ADMIN_USERNAME, "password": ADMIN_PASSWORD}
    )
    r.raise_for_status()
    return c, {"X-CSRF-Token": r.json()["data"]["csrfToken"]}


def _until(fn: Callable[[], Any], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(0.2)
    return last


def run_sdk_checks(url: str) -> list[Check]:
    checks: list[Check] = []

    def check(label: str, ok: Any, detail: Any = "") -> bool:
        checks.append((label, bool(ok), str(detail)[:300]))
        return bool(ok)

    admin, csrf = _admin(url)
    raw = admin.post("/api/admin/registration-tokens", json={"name": "sdk"}, headers=csrf).json()
    token = raw["data"].get("rawToken") or raw["data"].get("token")
    with tempfile.TemporaryDirectory(prefix="opstage-compat-sdk-") as tmp:
        agent = Agent(
            backend_url=url,
            agent_code="sdk-agent",
            agent_name="SDK agent",
            registration_token=token,
            token_file=Path(tmp) / "agent-token.json",
            service_code="sdk-svc",
            service_name="SDK service",
            service_version="1.2.3",
            heartbeat_interval_seconds=1.0,
            command_poll_interval_seconds=0.3,
            long_poll=False,
        )
        state = {"health": "UP"}

        @agent.health
        def health() -> Health:
            return Health(status=state["health"], message="compat")  # type: ignore[arg-type]

        @agent.action(label="Echo", input_schema={"type": "object"})
        def echo(payload: dict[str, Any]) -> dict[str, Any]:
            return {"echo": payload.get("message")}

        @agent.action(label="Fail")
        def fail(payload: dict[str, Any]) -> None:
            raise ActionError("COMPAT_FAIL", "failed on purpose", {"n": 1})

        @agent.prepare("echo")
        def prepare_echo(payload: dict[str, Any]) -> Prepared:
            return Prepared(initial_payload={"message": "prefilled"}, current_state={"n": 1})

        try:
            agent.start()
            agent.wait_ready(30)
        except Exception as exc:
            check("register and start", False, f"{type(exc).__name__}: {exc}")
            admin.close()
            return checks
        try:
            _sdk_flow(admin, csrf, agent, state, check)
        finally:
            agent.shutdown(10)
            admin.close()
    return checks


def _sdk_flow(
    admin: httpx.Client,
    csrf: dict[str, str],
    agent: Agent,
    state: dict[str, str],
    check: Callable[[str, Any, Any], bool],
) -> None:
    def agent_row() -> dict[str, Any]:
        return dict(admin.get(f"/api/admin/agents/{agent.agent_id}").json().get("data") or {})

    row = agent_row()
    check("register: the reference lists the agent ONLINE", row.get("status") == "ONLINE", row)
    services = admin.get("/api/admin/capsule-services", params={"q": "sdk-svc"}).json()["data"]
    svc = next((s for s in services if s["code"] == "sdk-svc"), None)
    if not check("report: the reference lists the service", svc, services) or svc is None:
        return
    detail = admin.get(f"/api/admin/capsule-services/{svc['id']}").json()["data"]
    names = sorted(a["name"] for a in detail.get("actions") or [])
    check("report: both actions declared", names == ["echo", "fail"], names)
    check("report: version reported", detail.get("version") == "1.2.3", detail.get("version"))

    first = row.get("lastHeartbeatAt")
    later = _until(lambda: (agent_row().get("lastHeartbeatAt") or "") > (first or ""), 10)
    check("heartbeat: lastHeartbeatAt advances", later, first)
    state["health"] = "DEGRADED"
    agent.refresh()
    degraded = _until(
        lambda: (
            admin.get(f"/api/admin/capsule-services/{svc['id']}").json()["data"].get("healthStatus")
            == "DEGRADED"
        ),
        10,
    )
    check("heartbeat: health change reaches the reference", degraded, "")

    r = admin.post(
        f"/api/admin/capsule-services/{svc['id']}/actions/echo",
        json={"payload": {"message": "hi"}},
        headers=csrf,
    )
    if not check("command: the reference creates it", r.status_code == 200, r.text):
        return
    cmd_id = r.json()["data"]["id"]

    def finished(cid: str) -> dict[str, Any] | None:
        d = admin.get(f"/api/admin/commands/{cid}").json()["data"]
        return d if d["status"] in ("SUCCEEDED", "FAILED") else None

    done = _until(lambda: finished(cmd_id))
    check("command: action ran, result SUCCEEDED", done and done["status"] == "SUCCEEDED", done)
    data = ((done or {}).get("result") or {}).get("data") or {}
    check("command: result data as the handler returned", data.get("echo") == "hi", done)

    r = admin.post(f"/api/admin/capsule-services/{svc['id']}/actions/fail", json={}, headers=csrf)
    failed = _until(lambda: finished(r.json()["data"]["id"])) if r.status_code == 200 else None
    err = ((failed or {}).get("result") or {}).get("error") or {}
    check(
        "command: a failing action reports FAILED with its code",
        failed and failed["status"] == "FAILED" and err.get("code") == "COMPAT_FAIL",
        failed,
    )

    r = admin.get(f"/api/admin/capsule-services/{svc['id']}/actions/echo")
    body = r.json().get("data") or {}
    check(
        "prepare: the reference shows the SDK's initial payload",
        r.status_code == 200 and body.get("initialPayload") == {"message": "prefilled"},
        r.text,
    )

    try:
        published = agent.publish_event("compat.sdk.event", {"n": 1}, correlation_id="sdk-1")
        check("bus: publish accepted", published is not None, published)
    except Exception as exc:
        check("bus: publish accepted", False, f"{type(exc).__name__}: {exc}")
    events = admin.get("/api/admin/bus/events").json().get("data") or []
    check(
        "bus: the reference stored the event",
        any(e.get("eventType") == "compat.sdk.event" for e in events),
        [e.get("eventType") for e in events],
    )
    audit = admin.get(
        "/api/admin/audit-events", params={"actorType": "AGENT", "targetId": cmd_id}
    ).json()
    actions = sorted({e["action"] for e in audit.get("data") or []})
    check(
        "audit: the reference recorded dispatch and completion",
        "command.completed" in actions and "command.dispatched" in actions,
        actions,
    )
