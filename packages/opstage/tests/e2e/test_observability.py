"""Dashboard, admin metrics, runtime diagnostics, Prometheus ``/metrics`` and the process logs.

Every test runs against a real server; the ones that count things get a server of their own
(``make_server``) so the numbers are exact, and the ones about the process (its pid, its log
lines on a terminal or a file) a process (``make_server_process``).
"""

from __future__ import annotations

import json
import os
import pty
import secrets
import select
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from opstage import __version__
from opstage_testing.clients import AdminClient, AgentClient, action, register, service
from opstage_testing.server import ADMIN_PASSWORD, ServerProcess, free_port, opstage_executable
from prometheus_client.parser import text_string_to_metric_families

from ..conftest import ENGINE, InProcessFactory, unique
from .test_contract_shapes import CONTRACTS, response_errors

ServerFactory = Callable[..., ServerProcess]


@pytest.fixture
def fresh(make_server: InProcessFactory) -> Iterator[tuple[ServerProcess, AdminClient]]:
    srv = make_server()
    with AdminClient(srv.url) as owner:
        yield srv, owner.login()


def _agent_with_service(srv: ServerProcess, owner: AdminClient) -> tuple[AgentClient, str]:
    agent = register(srv.url, owner.create_token(name=unique("obs")), unique("obs-agent"))
    reported = agent.report(service(unique("obs-svc"), action("noop")))
    return agent, reported["services"][0]["id"]


def _execute(owner: AdminClient, service_id: str) -> str:
    command = owner.data(
        "POST", f"/api/admin/capsule-services/{service_id}/actions/noop", json={"payload": {}}
    )
    command_id: str = command["id"]
    return command_id


# --- dashboard and admin metrics --------------------------------------------------------------


def test_dashboard_summary_counts_by_effective_status(
    fresh: tuple[ServerProcess, AdminClient],
) -> None:
    srv, owner = fresh
    empty = owner.data("GET", "/api/admin/dashboard/summary")
    assert empty["agentCounts"] == {}
    assert empty["serviceCounts"] == {}
    assert empty["commandCounts"] == {}

    agent, service_id = _agent_with_service(srv, owner)
    pending = register(srv.url, owner.create_token(name="pending"), unique("pending"), online=False)
    command_id = _execute(owner, service_id)

    summary = owner.data("GET", "/api/admin/dashboard/summary")
    assert summary["agentCounts"] == {"ONLINE": 1, "PENDING": 1}
    assert summary["serviceCounts"] == {"HEALTHY": 1}
    assert summary["commandCounts"] == {"PENDING": 1}
    assert [c["id"] for c in summary["recentCommands"]] == [command_id]
    assert summary["recentCommands"][0]["status"] == "PENDING"
    audit = summary["recentAuditEvents"]
    assert 0 < len(audit) <= 10
    assert [e["createdAt"] for e in audit] == sorted((e["createdAt"] for e in audit), reverse=True)
    assert audit[0]["action"] == "command.created"
    listed = owner.get("/api/admin/audit-events", params={"pageSize": 1}).json()
    assert summary["auditEventCount"] == listed["pagination"]["total"]

    owner.data("POST", f"/api/admin/agents/{pending.agent_id}/disable", json={})
    after = owner.data("GET", "/api/admin/dashboard/summary")
    assert after["agentCounts"] == {"ONLINE": 1, "DISABLED": 1}
    agent.close()
    pending.close()


def test_admin_metrics_durations_error_codes_and_operational_counters(
    fresh: tuple[ServerProcess, AdminClient],
) -> None:
    srv, owner = fresh
    agent, service_id = _agent_with_service(srv, owner)
    outcomes: list[dict[str, Any]] = [
        {"success": True},
        {"success": False, "error": {"code": "DISK_FULL"}, "slow": True},
        {"success": False, "error": {"code": "DISK_FULL"}},
        {"success": False, "error": {"code": "OOPS", "message": "no"}},
    ]
    for outcome in outcomes:
        _execute(owner, service_id)
        (claimed,) = agent.poll(limit=1)
        if outcome.pop("slow", False):
            time.sleep(0.7)  # RUNNING → FAILED takes at least 700 ms for this one
        r = agent.result(claimed["id"], **outcome)
        assert r.status_code == 200, r.text

    m = owner.data("GET", "/api/admin/metrics")
    assert m["byStatus"]["commands"] == {"SUCCEEDED": 1, "FAILED": 3}
    assert m["byStatus"]["agents"] == {"ONLINE": 1}
    assert m["byStatus"]["capsuleServices"] == {"HEALTHY": 1}
    assert m["byStatus"]["registrationTokens"] == {"USED": 1}
    assert m["totals"]["commands"] == 4
    assert m["totals"]["agents"] == 1
    assert m["totals"]["users"] == 1

    op = m["operational"]
    assert op["commandsDispatched"] == 4
    assert op["commandsCompleted"] == 1
    assert op["commandsFailed"] == 3
    assert op["actionPrepareRequested"] == 0
    assert op["actionPrepareFailures"] == 0
    assert op["actionPrepareTimeouts"] == 0
    assert op["agentCommandPolls"] >= 4
    assert op["oversizedCommandResultsRejected"] == 0

    durations = m["commandDurations"]
    assert durations["count"] == 4
    assert durations["p95Ms"] >= 700, durations
    assert durations["maxMs"] == durations["p95Ms"]
    assert durations["p50Ms"] < 700, durations
    assert durations["byType"]["ACTION_EXECUTE"]["count"] == 4

    assert m["topErrorCodes"]["items"] == [
        {"code": "DISK_FULL", "count": 2},
        {"code": "OOPS", "count": 1},
    ]
    assert m["staleAgents"]["count"] == 0
    agent.close()


def test_stale_agents_are_reported_before_any_sweep(make_server: InProcessFactory) -> None:
    # The fake clock runs on with the wall clock after `advance`, and so does every read's
    # cutoff: the alive agent must stay fresh for as long as the reads below take. A threshold
    # of 2 s was not enough on a loaded PostgreSQL pass (the second read counted the alive agent
    # in staleOnlineAgents), whatever the clock; a minute is.
    srv = make_server(
        OPSTAGE_AGENT_OFFLINE_THRESHOLD_SECONDS="60", OPSTAGE_MAINTENANCE_INTERVAL_SECONDS="0"
    )
    clock = srv.fake_clock()
    with AdminClient(srv.url) as owner:
        owner.login()
        silent = register(srv.url, owner.create_token(name="a"), unique("silent"))
        alive = register(srv.url, owner.create_token(name="b"), unique("alive"))
        clock.advance(61)
        alive.heartbeat()

        stale = owner.data("GET", "/api/admin/metrics")["staleAgents"]
        assert stale["thresholdSeconds"] == 60
        assert stale["count"] == 1
        (item,) = stale["items"]
        assert item["id"] == silent.agent_id
        assert item["status"] == "ONLINE"  # stored; the sweep is off
        assert item["silentSeconds"] >= 61
        assert owner.data("GET", "/api/admin/metrics")["operational"]["staleOnlineAgents"] == 1
        # As the reference: an agent reads ONLINE until the sweep stores OFFLINE.
        counts = owner.data("GET", "/api/admin/dashboard/summary")["agentCounts"]
        assert counts == {"ONLINE": 2}

        owner.data("POST", f"/api/admin/agents/{silent.agent_id}/disable", json={})
        assert owner.data("GET", "/api/admin/metrics")["staleAgents"]["count"] == 0
        silent.close()
        alive.close()


@pytest.mark.skipif(CONTRACTS is None, reason="contract not found")
def test_dashboard_and_metrics_match_the_contract(fresh: tuple[ServerProcess, AdminClient]) -> None:
    srv, owner = fresh
    agent, service_id = _agent_with_service(srv, owner)
    _execute(owner, service_id)
    for path in ("/api/admin/dashboard/summary", "/api/admin/metrics"):
        r = owner.get(path)
        assert r.status_code == 200, r.text
        problems = response_errors(path, "GET", 200, r.json())
        assert not problems, f"{path}:\n" + "\n".join(problems)
        assert response_errors(path, "GET", 401, httpx.get(srv.url + path, timeout=30).json()) == []
    summary = owner.data("GET", "/api/admin/dashboard/summary")
    assert summary["recentCommands"] and summary["recentAuditEvents"]  # the items were checked
    agent.close()


# --- diagnostics -------------------------------------------------------------------------------


def test_runtime_diagnostics_reports_the_process_and_masks_secrets(
    make_server_process: ServerFactory,
) -> None:
    metrics_token = "metrics-" + secrets.token_hex(12)
    srv = make_server_process(OPSTAGE_METRICS_TOKEN=metrics_token)
    with AdminClient(srv.url) as owner:
        owner.login()
        r = owner.get("/api/admin/diagnostics/runtime")
        assert r.status_code == 200, r.text
        d = r.json()["data"]
    assert d["version"] == __version__
    assert d["edition"] == "ce"
    assert srv.proc is not None and d["pid"] == srv.proc.pid
    assert 0 <= d["uptimeSeconds"] < 600
    assert d["database"]["kind"] == ENGINE
    assert d["database"]["sizeBytes"] > 0
    assert d["database"]["serverVersion"]
    bus = d["eventBus"]
    assert bus["subscribers"] >= 1  # the waiters
    cross_node = d["waiters"]["crossNode"]  # other nodes exist only on a shared PostgreSQL
    if ENGINE == "postgres":
        assert cross_node["connected"] is True and cross_node["channel"] == "opstage_wake"
    else:
        assert cross_node is None
    # One node alone leads its own sweeps; only PostgreSQL elects (ADR 0007).
    maintenance = d["maintenance"]
    election = "postgres-advisory-lock" if ENGINE == "postgres" else None
    assert maintenance["election"] == election
    with AdminClient(srv.url) as owner:
        owner.login()
        deadline = time.monotonic() + 10
        while not maintenance["leader"]:
            assert time.monotonic() < deadline, maintenance
            time.sleep(0.1)
            maintenance = owner.data("GET", "/api/admin/diagnostics/runtime")["maintenance"]
    assert bus["publishedTotal"] >= 1  # at least the login
    assert bus["droppedTotal"] == 0
    assert bus["maxLag"] >= 0
    assert d["eventLog"]["lastId"] >= 1
    assert d["eventLog"]["retentionHours"] == 24
    config = d["config"]
    assert config["session_secret"] == "********"
    assert config["admin_password"] == "********"
    assert config["metrics_token"] == "********"
    assert config["event_stream_keepalive_seconds"] == 15
    for secret in (srv.env["OPSTAGE_SESSION_SECRET"], ADMIN_PASSWORD, metrics_token):
        assert secret not in r.text
    password = urlsplit(srv.database_url or "").password
    if password:
        assert password not in r.text


def test_observability_routes_follow_the_permission_table(
    server: ServerProcess, admin: AdminClient
) -> None:
    creds = {role: admin.create_user(role) for role in ("operator", "viewer")}
    expected = {
        "/api/admin/dashboard/summary": {"operator": 200, "viewer": 200},
        "/api/admin/metrics": {"operator": 200, "viewer": 200},
        "/api/admin/diagnostics/runtime": {"operator": 200, "viewer": 403},
    }
    for path, by_role in expected.items():
        assert httpx.get(server.url + path, timeout=30).status_code == 401
        for role, status in by_role.items():
            with AdminClient(server.url) as client:
                client.login(*creds[role])
                r = client.get(path)
                assert r.status_code == status, (path, role, r.text)
                if status == 403:
                    assert r.json()["error"]["details"]["required"] == "diagnostics:read"


# --- Prometheus --------------------------------------------------------------------------------


def _scrape(url: str, **headers: str) -> dict[str, list[Any]]:
    r = httpx.get(url + "/metrics", headers=headers, timeout=30)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    families: dict[str, list[Any]] = {}
    for family in text_string_to_metric_families(r.text):  # a parse error fails the test
        families.setdefault(family.name, []).extend(family.samples)
    return families


def _value(samples: list[Any], name: str, **labels: str) -> float | None:
    for s in samples:
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
            return float(s.value)
    return None


def test_prometheus_exposition(fresh: tuple[ServerProcess, AdminClient]) -> None:
    srv, owner = fresh
    agent, service_id = _agent_with_service(srv, owner)
    _execute(owner, service_id)
    owner.data("GET", f"/api/admin/agents/{agent.agent_id}")
    assert httpx.get(srv.url + "/api/no-such-route", timeout=30).status_code == 404

    f = _scrape(srv.url)  # no credentials needed while OPSTAGE_METRICS_TOKEN is unset
    requests = f["opstage_http_requests"]
    detail = _value(
        requests,
        "opstage_http_requests_total",
        method="GET",
        route="/api/admin/agents/{agentId}",
        status="200",
    )
    assert detail == 1
    assert _value(requests, "opstage_http_requests_total", route="<unmatched>", status="404") == 1
    assert all(agent.agent_id not in str(s.labels) for s in requests), "raw paths as labels"
    latency = f["opstage_http_request_duration_seconds"]
    beats = _value(
        latency,
        "opstage_http_request_duration_seconds_count",
        method="POST",
        route="/api/agents/{agentId}/heartbeat",
    )
    assert beats == 1
    inf = _value(
        latency,
        "opstage_http_request_duration_seconds_bucket",
        route="/api/agents/{agentId}/heartbeat",
        le="+Inf",
    )
    assert inf == 1

    assert _value(f["opstage_agents"], "opstage_agents", status="ONLINE") == 1
    assert _value(f["opstage_capsule_services"], "opstage_capsule_services", status="HEALTHY") == 1
    assert (
        _value(f["opstage_commands"], "opstage_commands", type="ACTION_EXECUTE", status="PENDING")
        == 1
    )
    assert (
        _value(f["opstage_registration_tokens"], "opstage_registration_tokens", status="USED") == 1
    )
    assert (
        _value(f["opstage_capsule_bus_events"], "opstage_capsule_bus_events", kind="accepted") == 0
    )
    published = _value(
        f["opstage_domain_events_published"], "opstage_domain_events_published_total"
    )
    assert published is not None and published > 0
    assert _value(f["opstage_domain_events_dropped"], "opstage_domain_events_dropped_total") == 0
    assert "opstage_domain_event_bus_max_lag" in f
    last_id = _value(f["opstage_event_log_last_id"], "opstage_event_log_last_id")
    assert last_id is not None and last_id >= published
    assert _value(f["opstage_build_info"], "opstage_build_info", version=__version__) == 1
    assert "process_resident_memory_bytes" in {s.name for v in f.values() for s in v}

    # Counters only go up: the scrape itself is counted for the next one.
    again = _scrape(srv.url)
    scrapes = _value(
        again["opstage_http_requests"], "opstage_http_requests_total", route="/metrics"
    )
    assert scrapes is not None and scrapes >= 1
    agent.close()


def test_collector_passes_and_loop_lag_are_reported(make_server: InProcessFactory) -> None:
    """ADR 0019: full passes run on the server's schedule, and every pause is measured."""
    srv = make_server(OPSTAGE_GC_FULL_INTERVAL_SECONDS="0.3")
    with AdminClient(srv.url) as owner:
        owner.login()
        deadline = time.monotonic() + 15
        while True:
            pauses = owner.data("GET", "/api/admin/diagnostics/runtime")["pauses"]
            if pauses["scheduledFullPasses"] >= 2 and pauses["loopLag"]["samples"] >= 3:
                break
            assert time.monotonic() < deadline, pauses
            time.sleep(0.05)
        assert pauses["fullIntervalSeconds"] == 0.3
        assert pauses["thresholds"][2] == 1 << 30  # CPython starts no full pass itself
        full = pauses["gc"][2]
        assert full["generation"] == 2 and full["passes"] >= 2 and full["totalMs"] > 0
        assert pauses["loopLag"]["sampleSeconds"] == 0.1

        f = _scrape(srv.url)
        assert _value(f["opstage_gc_passes"], "opstage_gc_passes_total", generation="2") >= 2  # type: ignore[operator]
        assert (
            _value(f["opstage_gc_pause_seconds"], "opstage_gc_pause_seconds_total", generation="2")
            > 0
        )  # type: ignore[operator]
        assert "opstage_gc_pause_max_seconds" in f
        lag = f["opstage_event_loop_lag_seconds"]
        count = _value(lag, "opstage_event_loop_lag_seconds_count")
        assert count is not None and count >= 3
        assert _value(lag, "opstage_event_loop_lag_seconds_bucket", le="+Inf") == count


def test_metrics_bearer_token(make_server: InProcessFactory) -> None:
    token = "scrape-" + secrets.token_hex(16)
    srv = make_server(OPSTAGE_METRICS_TOKEN=token)
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {token}"}):
        r = httpx.get(srv.url + "/metrics", headers=headers, timeout=30)
        assert r.status_code == 401, (headers, r.text)
        assert r.json()["error"]["code"] == "UNAUTHORIZED"
        assert r.headers["www-authenticate"].startswith("Bearer")
        assert "opstage_" not in r.text
    f = _scrape(srv.url, Authorization=f"Bearer {token}")
    assert "opstage_agents" in f
    assert token not in srv.log()


def test_metrics_can_be_disabled(make_server: InProcessFactory) -> None:
    srv = make_server(OPSTAGE_METRICS_ENABLED="false")
    r = httpx.get(srv.url + "/metrics", timeout=30)
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "NOT_FOUND"
    with AdminClient(srv.url) as owner:  # the console's own metrics do not depend on it
        owner.login()
        assert owner.data("GET", "/api/admin/metrics")["totals"]["users"] == 1


# --- logs --------------------------------------------------------------------------------------


def _log_records(srv: ServerProcess) -> list[dict[str, Any]]:
    records = []
    for line in srv.log().splitlines():
        if line.startswith("{"):
            records.append(json.loads(line))
    return records


def _access_lines(
    srv: ServerProcess, request_id: str, timeout: float = 5.0
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        found = [
            r
            for r in _log_records(srv)
            if r.get("logger") == "opstage.access" and r.get("request_id") == request_id
        ]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_one_access_line_per_request_with_its_request_id(server: ServerProcess) -> None:
    mine = "obs-" + secrets.token_hex(6)
    r = httpx.get(server.url + "/api/system/health", headers={"X-Request-Id": mine}, timeout=30)
    assert r.headers["x-request-id"] == mine
    (line,) = _access_lines(server, mine)
    assert line["status"] == 200
    assert line["method"] == "GET"
    assert line["route"] == "/api/system/health"
    assert isinstance(line["duration_ms"], float | int)
    assert line["msg"] == "GET /api/system/health 200"

    generated = httpx.get(server.url + "/api/no-such-thing", timeout=30)
    rid = generated.headers["x-request-id"]
    assert rid and rid != mine
    (miss,) = _access_lines(server, rid)
    assert miss["status"] == 404 and miss["route"] is None

    hostile = httpx.get(
        server.url + "/api/system/health", headers={"X-Request-Id": "bad id {inject}"}, timeout=30
    )
    assert hostile.headers["x-request-id"] != "bad id {inject}"
    assert len(_access_lines(server, hostile.headers["x-request-id"])) == 1


def test_logs_are_json_lines_when_not_on_a_terminal(make_server_process: ServerFactory) -> None:
    srv = make_server_process(OPSTAGE_LOG_FORMAT="auto")  # stdout/stderr are a file: JSON
    r = httpx.get(srv.url + "/api/system/health", timeout=30)
    rid = r.headers["x-request-id"]
    assert len(_access_lines(srv, rid)) == 1
    lines = [ln for ln in srv.log().splitlines() if ln.strip()]
    banner = [ln for ln in lines if ln.startswith("Opstage ")]
    assert len(banner) == 1  # the CLI's one human line, printed before logging takes over
    for ln in lines:
        if ln in banner:
            continue
        record = json.loads(ln)
        assert {"ts", "level", "logger", "msg"} <= record.keys(), record


def test_logs_are_human_lines_on_a_terminal(
    tmp_path: Path, database_factory: Callable[[Path], str | None]
) -> None:
    template = ServerProcess(tmp_path, database_factory(tmp_path), {"OPSTAGE_LOG_FORMAT": "auto"})
    env = template.environment()
    port = free_port()
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [opstage_executable(), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
    )
    os.close(slave)
    out = b""
    rid = "tty-" + secrets.token_hex(6)

    def drain(seconds: float) -> None:
        nonlocal out
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    out += os.read(master, 65536)
                except OSError:
                    return

    try:
        deadline = time.monotonic() + 30
        while True:
            drain(0.1)
            try:
                r = httpx.get(
                    f"http://127.0.0.1:{port}/api/system/health",
                    headers={"X-Request-Id": rid},
                    timeout=2,
                )
                if r.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, out.decode(errors="replace")
            assert time.monotonic() < deadline, out.decode(errors="replace")
        end = time.monotonic() + 5
        while rid.encode() not in out and time.monotonic() < end:
            drain(0.2)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        drain(0.5)
        os.close(master)
    text = out.decode(errors="replace")
    lines = [ln for ln in text.splitlines() if rid in ln]
    assert lines, text
    (line,) = lines
    assert "GET /api/system/health 200" in line
    assert "opstage.access" in line
    assert not line.lstrip().startswith("{"), line
    assert not any(ln.lstrip().startswith('{"ts"') for ln in text.splitlines()), text
