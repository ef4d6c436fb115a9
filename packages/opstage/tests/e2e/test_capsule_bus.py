"""Capsule Bus: CE v0.4 behaviour, then what goes beyond it — over HTTP, real server."""

from __future__ import annotations

import concurrent.futures
import json
from pathlib import Path
from typing import Any

import httpx
from opstage_testing.clients import AdminClient, AgentClient, action, register, service
from opstage_testing.server import ServerProcess

from ..conftest import unique
from ..support.bus import EXPERIMENTAL, World

# --- the flag -------------------------------------------------------------------------------


def test_disabled_bus_answers_404_after_auth(server: ServerProcess, admin: AdminClient) -> None:
    anon = httpx.get(server.url + "/api/admin/bus/routes")
    assert anon.status_code == 401
    r = admin.get("/api/admin/bus/routes")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "CAPSULE_BUS_DISABLED"
    assert "OPSTAGE_CAPSULE_BUS_ENABLED" in r.json()["error"]["message"]
    no_csrf = httpx.post(server.url + "/api/admin/bus/routes", json={}, cookies=admin.cookies)
    assert no_csrf.status_code == 403
    agent = register(server.url, admin.create_token(), unique("a"))
    r = agent.post(f"/api/agents/{agent.agent_id}/bus/events", json={})
    assert r.json()["error"]["code"] == "CAPSULE_BUS_DISABLED"
    anon_ingest = httpx.post(server.url + f"/api/agents/{agent.agent_id}/bus/events", json={})
    assert anon_ingest.status_code == 401


# --- routes ---------------------------------------------------------------------------------


def test_route_crud_and_audit(world: World) -> None:
    ops = world.ops
    created = ops.data(
        "POST",
        "/api/admin/bus/routes",
        json={
            "name": "n",
            "match": {"eventType": "x"},
            "target": {"serviceCode": world.target_code, "actionName": "note"},
        },
    )
    assert created["id"].startswith("brt_")
    assert created["status"] == "DISABLED", "routes are disabled unless created otherwise"
    r = ops.get(f"/api/admin/bus/routes/{created['id']}")
    assert r.json()["experimental"] == EXPERIMENTAL
    replaced = ops.data(
        "PUT",
        f"/api/admin/bus/routes/{created['id']}",
        json={
            "name": "n2",
            "status": "DRY_RUN",
            "match": {"eventType": "y"},
            "target": {"serviceCode": world.target_code, "actionName": "note"},
        },
    )
    assert replaced["name"] == "n2"
    assert replaced["match"]["eventType"] == "y"
    assert replaced["description"] is None
    ops.data("DELETE", f"/api/admin/bus/routes/{created['id']}")
    gone = ops.get(f"/api/admin/bus/routes/{created['id']}")
    assert gone.status_code == 404
    assert gone.json()["error"]["code"] == "BUS_ROUTE_NOT_FOUND"
    audit = ops.get("/api/admin/bus/audit", params={"pageSize": 100}).json()
    assert audit["experimental"] == EXPERIMENTAL
    mine = {e["action"] for e in audit["data"] if e["targetId"] == created["id"]}
    assert {"bus.route.created", "bus.route.updated", "bus.route.deleted"} <= mine
    assert all(e["action"].startswith("bus.") for e in audit["data"])


def test_viewer_reads_but_cannot_write_routes(bus_server: ServerProcess, ops: AdminClient) -> None:
    name, pw = ops.create_user("viewer")
    with AdminClient(bus_server.url) as viewer:
        viewer.login(name, pw)
        assert viewer.get("/api/admin/bus/routes").status_code == 200
        r = viewer.post("/api/admin/bus/routes", json={})
        assert r.status_code == 403
        assert r.json()["error"]["code"] == "FORBIDDEN"


# --- ingest ---------------------------------------------------------------------------------


def test_event_routed_to_a_command(world: World) -> None:
    route = world.route()
    r = world.publish(payload={"orderId": "o-1", "apiToken": "secret-value"}, correlationId="c1")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["experimental"] == EXPERIMENTAL
    data = body["data"]
    assert data["eventId"].startswith("bev_")
    (entry,) = data["routedCommands"]
    assert entry["status"] == "CREATED"
    assert entry["routeId"] == route["id"]
    (cmd,) = world.worker.poll()
    assert cmd["id"] == entry["commandId"]
    assert cmd["type"] == "ACTION_EXECUTE"
    assert cmd["payload"]["busEvent"]["id"] == data["eventId"]
    assert cmd["payload"]["payload"]["orderId"] == "o-1"
    assert "secret-value" not in str(cmd)

    events = world.ops.data("GET", "/api/admin/bus/events")
    stored = next(e for e in events if e["id"] == data["eventId"])
    assert stored["routeCount"] == 1
    assert stored["payload"]["apiToken"] == "[REDACTED]"
    actions = {
        e["action"]
        for e in world.ops.data("GET", "/api/admin/bus/audit", params={"pageSize": 100})
        if data["eventId"] in str(e)
    }
    assert {"bus.event.received", "bus.route.matched", "bus.command.created"} <= actions


def test_group_commit_counters_are_reported(bus_server: ServerProcess, world: World) -> None:
    world.route()

    def counters() -> tuple[dict[str, int], dict[str, float]]:
        runtime = world.ops.data("GET", "/api/admin/diagnostics/runtime")["busIngest"]
        scraped = httpx.get(bus_server.url + "/metrics", timeout=30).text
        metrics = {
            line.split()[0]: float(line.split()[1])
            for line in scraped.splitlines()
            if line.startswith("opstage_bus_ingest_")
        }
        return runtime, metrics

    before, scraped_before = counters()
    for i in range(3):
        assert world.publish(payload={"orderId": f"o-{i}"}).status_code == 200
    after, scraped_after = counters()
    # Other tests may publish to this server meanwhile: at least ours were counted.
    assert after["events"] - before["events"] >= 3
    assert after["batches"] - before["batches"] >= 1
    assert after["batches"] <= after["events"]
    assert after["fallbacks"] == before["fallbacks"] == 0
    moved = scraped_after["opstage_bus_ingest_events_total"]
    assert moved - scraped_before["opstage_bus_ingest_events_total"] >= 3
    assert scraped_after["opstage_bus_ingest_fallbacks_total"] == 0


def test_unmatched_dry_run_and_failed_entries(world: World) -> None:
    assert world.publish().json()["data"]["routedCommands"] == []
    dry = world.route(status="DRY_RUN", action="note")
    (entry,) = world.publish().json()["data"]["routedCommands"]
    assert entry["status"] == "DRY_RUN"
    assert entry["routeId"] == dry["id"]
    world.ops.data("DELETE", f"/api/admin/bus/routes/{dry['id']}")

    world.route(action="note")
    (entry,) = world.publish(routePolicy={"dryRun": True}).json()["data"]["routedCommands"]
    assert entry["status"] == "DRY_RUN"
    assert world.worker.poll() == []

    world.route(action="doesNotExist")
    entries = world.publish().json()["data"]["routedCommands"]
    failed = [e for e in entries if e["status"] == "FAILED"]
    assert failed[0]["errorCode"] == "BUS_TARGET_NOT_FOUND"

    world.ops.data("POST", f"/api/admin/agents/{world.worker.agent_id}/disable")
    entries = world.publish().json()["data"]["routedCommands"]
    assert any(e.get("errorCode") == "AGENT_DISABLED" for e in entries)


def test_ingest_refusals_in_order(bus_server: ServerProcess, world: World) -> None:
    r = world.publish(sourceServiceCode="no-such-service")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "BUS_SOURCE_SERVICE_NOT_FOUND"
    r = world.publish(sourceServiceCode=world.target_code)  # owned by the worker agent
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "BUS_SOURCE_SERVICE_FORBIDDEN"

    first = world.publish().json()["data"]["eventId"]
    child = world.publish(causationId=first)
    assert child.status_code == 200, "depth 1 is allowed"
    grandchild = world.publish(causationId=child.json()["data"]["eventId"])
    assert grandchild.status_code == 422
    assert grandchild.json()["error"]["code"] == "BUS_DEPTH_EXCEEDED"
    stored = [
        e
        for e in world.ops.data("GET", "/api/admin/bus/events", params={"pageSize": 100})
        if e["eventType"] == world.event_type
    ]
    # The two accepted events only: every refusal above stored nothing.
    assert sorted(e["id"] for e in stored) == sorted([first, child.json()["data"]["eventId"]])


def test_bad_publish_bodies_get_the_envelope_and_store_nothing(world: World) -> None:
    """The publish route is served by the agent hot path: same codes as every FastAPI route."""
    url = f"/api/agents/{world.publisher.agent_id}/bus/events"
    json_type = {"Content-Type": "application/json"}
    valid = {"eventType": world.event_type, "sourceServiceCode": world.source_code}
    cases = [
        (b"", json_type, 422, "VALIDATION_FAILED"),
        (b'{"eventType": ', json_type, 422, "VALIDATION_FAILED"),
        (b'{"sourceServiceCode": "x"}', json_type, 422, "VALIDATION_FAILED"),
        (b'{"eventType": 7, "sourceServiceCode": []}', json_type, 422, "VALIDATION_FAILED"),
        (json.dumps(valid).encode(), {"Content-Type": "text/plain"}, 415, "UNSUPPORTED_MEDIA_TYPE"),
        (
            json.dumps({**valid, "payload": {"blob": "x" * 2_100_000}}).encode(),
            json_type,
            413,
            "PAYLOAD_TOO_LARGE",
        ),
    ]
    for content, headers, status, code in cases:
        r = world.publisher.post(url, content=content, headers=headers)
        assert (r.status_code, r.json()["error"]["code"]) == (status, code), content[:40]
        assert r.json()["success"] is False
        assert r.json()["experimental"] == "v0.4-experimental"
    malformed = world.publisher.post(url, content=b"{", headers=json_type).json()["error"]
    assert malformed["details"]["issues"]
    stored = world.ops.data("GET", "/api/admin/bus/events", params={"pageSize": 100})
    assert not [e for e in stored if e["eventType"] == world.event_type]


def test_rate_limit_is_exact_under_concurrency(tmp_path: Path, database_factory: Any) -> None:
    srv = ServerProcess(
        tmp_path,
        database_factory(tmp_path),
        {"OPSTAGE_CAPSULE_BUS_ENABLED": "true", "OPSTAGE_CAPSULE_BUS_INGEST_PER_MIN": "7"},
    ).start()
    try:
        with AdminClient(srv.url) as ops:
            ops.login()
            w = World(srv.url, ops, [action("note")])
            with concurrent.futures.ThreadPoolExecutor(20) as pool:
                codes = list(pool.map(lambda _: w.publish().status_code, range(20)))
            assert codes.count(200) == 7, codes
            assert codes.count(429) == 13
            limited = w.publish()
            assert limited.json()["error"]["code"] == "BUS_RATE_LIMITED"
            assert int(limited.headers["retry-after"]) >= 1
            events = ops.get("/api/admin/bus/events", params={"pageSize": 100}).json()
            assert events["pagination"]["total"] == 7, "refused events are not stored"
            w.publisher.close()
            w.worker.close()
            # The budget survives a restart (the window is seeded from stored events).
            srv.stop()
            srv.start()
            again = AgentClient(srv.url, w.publisher.agent_id, w.publisher.token)
            r = again.post(
                f"/api/agents/{again.agent_id}/bus/events",
                json={"eventType": "x", "sourceServiceCode": w.source_code},
            )
            assert r.status_code == 429
            again.close()
    finally:
        srv.stop()


# --- beyond the reference -------------------------------------------------------------------


def test_idempotent_publish_replays_and_creates_nothing_new(world: World) -> None:
    world.route(action="note")
    key = {"Idempotency-Key": unique("k")}
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda _: world.publish(headers=key), range(8)))
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    ids = {r.json()["data"]["eventId"] for r in responses}
    assert len(ids) == 1
    assert sum(1 for r in responses if r.json()["data"].get("replay")) == 7
    commands = {r.json()["data"]["routedCommands"][0]["commandId"] for r in responses}
    assert len(commands) == 1
    assert len(world.worker.poll(limit=10)) == 1
    by_event_id = world.publish(eventId="publisher-chosen-1")
    again = world.publish(eventId="publisher-chosen-1")
    assert again.json()["data"]["replay"] is True
    assert again.json()["data"]["eventId"] == by_event_id.json()["data"]["eventId"]


def test_input_mapping_and_filters(world: World) -> None:
    world.route(
        inputMapping={"orderId": "/payload/order/id"},
        filters=[{"path": "/payload/region", "op": "in", "value": ["eu", "us"]}],
    )
    skipped = world.publish(payload={"order": {"id": "o-9"}, "region": "apac"})
    assert skipped.json()["data"]["routedCommands"] == []
    ok = world.publish(payload={"order": {"id": "o-9"}, "region": "eu"})
    (entry,) = ok.json()["data"]["routedCommands"]
    assert entry["status"] == "CREATED"
    (cmd,) = world.worker.poll()
    assert cmd["payload"]["mapping"] == {"orderId": "o-9"}
    assert cmd["payload"]["busEvent"]["eventType"] == world.event_type
    bad = world.publish(payload={"order": {}, "region": "us"})
    (entry,) = bad.json()["data"]["routedCommands"]
    assert entry["status"] == "FAILED"
    assert entry["errorCode"] == "BUS_INPUT_INVALID"


def test_invalid_filter_is_refused(world: World) -> None:
    r = world.ops.post(
        "/api/admin/bus/routes",
        json={
            "name": "bad",
            "match": {"eventType": "x"},
            "target": {"serviceCode": world.target_code, "actionName": "note"},
            "filters": [{"path": "no-slash", "op": "equals", "value": 1}],
        },
    )
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "VALIDATION_FAILED"


def test_simulation_has_no_side_effects(world: World) -> None:
    for region in ("eu", "apac", "eu"):
        world.publish(payload={"region": region, "order": {"id": "o"}})
    route = world.route(
        status="DISABLED",
        action="note",
        filters=[{"path": "/payload/region", "op": "equals", "value": "eu"}],
    )
    before = world.ops.get("/api/admin/commands").json()["pagination"]["total"]
    sim = world.ops.data(
        "POST", f"/api/admin/bus/routes/{route['id']}/simulate", json={"limit": 10}
    )
    assert sim["evaluated"] == 3
    assert sim["counts"]["CREATED"] == 2
    assert sim["counts"]["UNMATCHED"] == 1
    after = world.ops.get("/api/admin/commands").json()["pagination"]["total"]
    assert after == before
    assert world.worker.poll() == []


# --- issue 6, point 4: confirmation cannot be bypassed through the bus ------------------------


def test_route_to_dangerous_action_needs_owner_preapproval(
    bus_server: ServerProcess, world: World
) -> None:
    refused = world.ops.post(
        "/api/admin/bus/routes",
        json={
            "name": "refund",
            "status": "ENABLED",
            "match": {"eventType": world.event_type},
            "target": {"serviceCode": world.target_code, "actionName": "refund"},
        },
    )
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "BUS_ROUTE_REQUIRES_APPROVAL"

    name, pw = world.ops.create_user("operator")
    with AdminClient(bus_server.url) as operator:
        operator.login(name, pw)
        r = operator.post(
            "/api/admin/bus/routes",
            json={
                "name": "refund",
                "status": "ENABLED",
                "preApproved": True,
                "match": {"eventType": world.event_type},
                "target": {"serviceCode": world.target_code, "actionName": "refund"},
            },
        )
        assert r.status_code == 403
        assert r.json()["error"]["code"] == "BUS_ROUTE_APPROVAL_FORBIDDEN"

    approved = world.route(action="refund", preApproved=True)
    assert approved["preApproved"] is True
    assert approved["preApprovedByUserId"]
    (entry,) = world.publish().json()["data"]["routedCommands"]
    assert entry["status"] == "CREATED"


def test_dispatch_rechecks_confirmation(world: World) -> None:
    world.route(action="note")
    # The action becomes dangerous after the route was made: dispatch refuses it.
    world.worker.report(service(world.target_code, action("note", requiresConfirmation=True)))
    (entry,) = world.publish().json()["data"]["routedCommands"]
    assert entry["status"] == "FAILED"
    assert entry["errorCode"] == "ACTION_REQUIRES_CONFIRMATION"
    assert world.worker.poll() == []
