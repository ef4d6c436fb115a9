"""The reference's own Node agent (its demo Capsule Service) against a server: register, report
manifest/health/configs/actions, heartbeat, poll, run an action command and report its result,
answer a prepare. Run against both servers, so a check that fails on the reference too is the
harness's fault, not ours; every check reads the outcome through the server's admin API.

Needs REF_REPO's demo built (`apps/demo-capsule-service/dist/index.js`) and its agent SDK
resolvable; the SDK is unpublished, so a build of the reference supplies it from its own history
(docs/compatibility.md, "`make compat`"). Without them the checks are skipped, with a note.
The SDK has no bus publish: the Python SDK's check covers that.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from .sdk_check import Check, _admin, _until

DEMO_ENTRY = Path("apps/demo-capsule-service/dist/index.js")
SERVICE_CODE = "demo-capsule-service"
# The demo polls every 5 s and reports its result on the next poll: two polls and some slack.
COMMAND_WAIT_SECONDS = 20.0
EDGE_SERVICE = "node-edge-svc"

# The same SDK with the outcomes the demo never produces: a handler that throws, one that
# reports a failure, one that returns bare data, a gated HIGH action, a custom prepare.
# Our own code, run from the demo's directory so that the SDK resolves as the demo's does.
EDGE_AGENT_JS = """
import { CapsuleAgent } from "@xtrape/capsule-agent-node";
const agent = new CapsuleAgent({
  backendUrl: process.env.OPSTAGE_BACKEND_URL,
  registrationToken: process.env.OPSTAGE_REGISTRATION_TOKEN,
  tokenStore: { file: process.env.OPSTAGE_AGENT_TOKEN_FILE },
  intervals: { heartbeatMs: 1000, commandPollMs: 300, serviceReportMs: 60000 },
  service: { code: "node-edge-svc", name: "Node edge", version: "2.0.0", runtime: "nodejs" }
});
agent.health(() => ({ status: "DEGRADED", message: "edge", details: { n: 1 } }));
agent.action({ name: "boom", label: "Boom", dangerLevel: "LOW",
  handler: async () => { throw new Error("exploded"); } });
agent.action({ name: "refuse", label: "Refuse", dangerLevel: "LOW",
  handler: async () => ({ success: false, message: "no", error: { code: "NOPE" } }) });
agent.action({ name: "plain", label: "Plain", dangerLevel: "LOW",
  handler: async () => ({ answer: 42 }),
  prepare: () => ({ initialPayload: { x: 1 }, currentState: { y: 2 } }) });
agent.action({ name: "danger", label: "Danger", dangerLevel: "HIGH", requiresConfirmation: true,
  handler: async () => ({ success: true, data: { done: true } }) });
await agent.start();
console.log("started.");
process.on("SIGTERM", async () => { await agent.stop(); process.exit(0); });
"""


def demo_entry(ref_repo: str | None) -> Path | None:
    if not ref_repo:
        return None
    entry = Path(ref_repo).expanduser().resolve() / DEMO_ENTRY
    return entry if entry.is_file() else None


def run_node_agent_checks(side: str, url: str, entry: Path) -> list[Check]:
    return _run(side, url, entry, [str(entry)], _flow) + _run(
        side, url, entry, ["--input-type=module", "-e", EDGE_AGENT_JS], _edge_flow
    )


def _run(side: str, url: str, entry: Path, args: list[str], flow: Any) -> list[Check]:
    checks: list[Check] = []

    def check(label: str, ok: Any, detail: Any = "") -> bool:
        checks.append((f"{side}: {label}", bool(ok), str(detail)[:300]))
        return bool(ok)

    node = shutil.which("node")
    if not node:
        check("node on PATH", False, "the Node agent check needs Node.js")
        return checks
    admin, csrf = _admin(url)
    raw = admin.post("/api/admin/registration-tokens", json={"name": "node"}, headers=csrf).json()
    token = raw["data"].get("rawToken") or raw["data"].get("token")
    with tempfile.TemporaryDirectory(prefix="opstage-compat-node-") as tmp:
        log_path = Path(tmp) / "demo.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPSTAGE_")}
        env.update(
            {
                "OPSTAGE_BACKEND_URL": url,
                "OPSTAGE_REGISTRATION_TOKEN": token,
                "OPSTAGE_AGENT_TOKEN_FILE": str(Path(tmp) / "agent-token.json"),
                "DEMO_MESSAGE": "hello compat",
            }
        )
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [node, *args],
                env=env,
                cwd=entry.parent.parent,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            flow(admin, csrf, check, log_path)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
            admin.close()
        # Every refusal the SDK met is logged ("agent start failed", "heartbeat failed", ...).
        text = log_path.read_text(errors="replace")
        failures = [ln for ln in text.splitlines() if "failed" in ln.lower()]
        check("the agent logged no refusal", not failures, failures or text[-300:])
    return checks


def _flow(admin: httpx.Client, csrf: dict[str, str], check: Any, log_path: Path) -> None:
    def service() -> dict[str, Any] | None:
        rows = admin.get("/api/admin/capsule-services", params={"q": SERVICE_CODE}).json()
        return next((s for s in rows.get("data") or [] if s["code"] == SERVICE_CODE), None)

    # start() registers, reports, heartbeats and polls once, then logs "started".
    started = _until(lambda: "started." in log_path.read_text(errors="replace"), 30)
    log = log_path.read_text(errors="replace")
    if not check("start: register, report, heartbeat, first poll", started, log[-300:]):
        return
    svc = service()
    if not check("report: the service is listed", svc, log[-300:]) or svc is None:
        return
    agent = admin.get(f"/api/admin/agents/{svc['agentId']}").json()["data"]
    check(
        "register: the agent is ONLINE, embedded, nodejs",
        (agent["status"], agent.get("mode"), agent.get("runtime"))
        == ("ONLINE", "embedded", "nodejs"),
        agent,
    )
    check("heartbeat: lastHeartbeatAt is set", agent.get("lastHeartbeatAt"), agent)
    detail = admin.get(f"/api/admin/capsule-services/{svc['id']}").json()["data"]
    names = sorted(a["name"] for a in detail.get("actions") or [])
    check("report: both actions declared", names == ["echo", "runHealthCheck"], names)
    check(
        "report: version and runtime",
        (detail.get("version"), detail.get("runtime")) == ("0.1.0", "nodejs"),
        detail,
    )
    manifest = detail.get("manifest") or {}
    check(
        "report: manifest as the SDK builds it",
        (manifest.get("kind"), manifest.get("code"), manifest.get("agentMode"))
        == ("CapsuleService", SERVICE_CODE, "embedded"),
        manifest,
    )
    check("report: health UP", detail.get("healthStatus") == "UP", detail.get("healthStatus"))
    configs = {c.get("key") or c.get("configKey"): c for c in detail.get("configs") or []}
    message = configs.get("demo.message") or {}
    secret = configs.get("demo.secretRef") or {}
    check(
        "report: configs with preview and sensitivity",
        message.get("valuePreview") == "hello compat" and bool(secret.get("sensitive")),
        detail.get("configs"),
    )

    def finished(cid: str) -> dict[str, Any] | None:
        d = admin.get(f"/api/admin/commands/{cid}").json()["data"]
        return d if d["status"] in ("SUCCEEDED", "FAILED") else None

    r = admin.post(
        f"/api/admin/capsule-services/{svc['id']}/actions/echo",
        json={"payload": {"message": "hi", "n": 2}},
        headers=csrf,
    )
    if check("command: echo accepted", r.status_code == 200, r.text):
        done = _until(lambda: finished(r.json()["data"]["id"]), COMMAND_WAIT_SECONDS)
        result = (done or {}).get("result") or {}
        check(
            "command: echo SUCCEEDED with the payload as data",
            done
            and done["status"] == "SUCCEEDED"
            and result.get("data") == {"message": "hi", "n": 2},
            done,
        )
    r = admin.post(
        f"/api/admin/capsule-services/{svc['id']}/actions/runHealthCheck", json={}, headers=csrf
    )
    if check("command: runHealthCheck accepted", r.status_code == 200, r.text):
        done = _until(lambda: finished(r.json()["data"]["id"]), COMMAND_WAIT_SECONDS)
        data = ((done or {}).get("result") or {}).get("data") or {}
        check(
            "command: runHealthCheck SUCCEEDED with the health report",
            done and done["status"] == "SUCCEEDED" and data.get("status") == "UP",
            done,
        )
    # Prepare runs agent code, so it needs the CSRF header here (docs/compatibility.md).
    t0 = time.monotonic()
    r = admin.get(f"/api/admin/capsule-services/{svc['id']}/actions/echo", headers=csrf, timeout=60)
    body = r.json().get("data") or {}
    check(
        "prepare: the SDK's default prepare reaches the console",
        r.status_code == 200 and "initialPayload" in body,
        f"{r.status_code} after {time.monotonic() - t0:.1f}s: {r.text}",
    )


def _edge_flow(admin: httpx.Client, csrf: dict[str, str], check: Any, log_path: Path) -> None:
    started = _until(lambda: "started." in log_path.read_text(errors="replace"), 30)
    if not check("edge: start", started, log_path.read_text(errors="replace")[-300:]):
        return
    rows = admin.get("/api/admin/capsule-services", params={"q": EDGE_SERVICE}).json()
    svc = next((s for s in rows.get("data") or [] if s["code"] == EDGE_SERVICE), None)
    if not check("edge: the service is listed", svc, rows) or svc is None:
        return
    detail = admin.get(f"/api/admin/capsule-services/{svc['id']}").json()["data"]
    check("edge: health DEGRADED", detail.get("healthStatus") == "DEGRADED", detail)

    def run(name: str, body: dict[str, Any]) -> dict[str, Any] | None:
        r = admin.post(
            f"/api/admin/capsule-services/{svc['id']}/actions/{name}", json=body, headers=csrf
        )
        if not check(f"edge: {name} accepted", r.status_code == 200, r.text):
            return None
        cid = r.json()["data"]["id"]

        def done() -> dict[str, Any] | None:
            d: dict[str, Any] = admin.get(f"/api/admin/commands/{cid}").json()["data"]
            return d if d["status"] in ("SUCCEEDED", "FAILED") else None

        finished: dict[str, Any] | None = _until(done, COMMAND_WAIT_SECONDS)
        return finished

    def outcome(d: dict[str, Any] | None) -> tuple[Any, Any, Any]:
        result = (d or {}).get("result") or {}
        return (d or {}).get("status"), (result.get("error") or {}).get("code"), result.get("data")

    got = outcome(run("boom", {}))
    check(
        "edge: a throwing handler is FAILED ACTION_FAILED",
        got[:2] == ("FAILED", "ACTION_FAILED"),
        got,
    )
    got = outcome(run("refuse", {}))
    check("edge: a reported failure keeps its code", got[:2] == ("FAILED", "NOPE"), got)
    got = outcome(run("plain", {"payload": {"k": "v"}}))
    check("edge: bare data is the result", got == ("SUCCEEDED", None, {"answer": 42}), got)
    r = admin.post(f"/api/admin/capsule-services/{svc['id']}/actions/danger", json={}, headers=csrf)
    check(
        "edge: a gated action without confirmation is refused",
        400 <= r.status_code < 500 and r.json()["error"]["code"] == "ACTION_REQUIRES_CONFIRMATION",
        r.text,
    )
    got = outcome(run("danger", {"confirmation": True}))
    check("edge: confirmed, it runs", got == ("SUCCEEDED", None, {"done": True}), got)
    r = admin.get(
        f"/api/admin/capsule-services/{svc['id']}/actions/plain", headers=csrf, timeout=60
    )
    body = r.json().get("data") or {}
    check(
        "edge: a custom prepare's payload and state",
        (body.get("initialPayload"), body.get("currentState")) == ({"x": 1}, {"y": 2}),
        r.text,
    )
