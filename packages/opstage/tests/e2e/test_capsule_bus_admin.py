"""Capsule Bus admin API over HTTP: the route document, mapped input against the action's
schema, ``exists`` filters, simulation, the flag switched off and the experimental mark."""

from __future__ import annotations

import time
from typing import Any

import httpx
from opstage_testing.clients import AdminClient, register
from opstage_testing.server import ServerProcess

from ..support.bus import EXPERIMENTAL, World

ROUTES = "/api/admin/bus/routes"


def _total(ops: AdminClient, path: str, **params: Any) -> int:
    r = ops.get(path, params={"pageSize": 1, **params})
    assert r.status_code == 200, r.text
    return int(r.json()["pagination"]["total"])


def _side_effect_counts(ops: AdminClient) -> tuple[int, int, int]:
    # SYSTEM rows are left out: the offline sweep may write one at any moment.
    return (
        _total(ops, "/api/admin/bus/events"),
        _total(ops, "/api/admin/commands"),
        _total(ops, "/api/admin/audit-events", actorType=["USER", "AGENT"]),
    )


def _my_events(ops: AdminClient, event_type: str) -> list[dict[str, Any]]:
    events = ops.data("GET", "/api/admin/bus/events", params={"pageSize": 100})
    return [e for e in events if e["eventType"] == event_type]


def _route_body(world: World, **extra: Any) -> dict[str, Any]:
    return {
        "name": extra.pop("name", "r"),
        "match": {"eventType": world.event_type},
        "target": {"serviceCode": world.target_code, "actionName": extra.pop("action", "note")},
        **extra,
    }


# --- mapped input meets the action's inputSchema --------------------------------------------


def test_mapped_input_of_the_wrong_type_fails_and_creates_nothing(world: World) -> None:
    # Every pointer resolves, so only the schema check (orderId must be a string) can refuse it.
    world.route(inputMapping={"orderId": "/payload/order/id"})
    commands_before = _total(world.ops, "/api/admin/commands")
    r = world.publish(payload={"order": {"id": 7}})
    assert r.status_code == 200, r.text
    (entry,) = r.json()["data"]["routedCommands"]
    assert entry["status"] == "FAILED"
    assert entry["errorCode"] == "BUS_INPUT_INVALID"
    assert "commandId" not in entry
    assert "orderId" in str(entry["details"]["issues"])
    assert world.worker.poll() == []
    assert _total(world.ops, "/api/admin/commands") == commands_before
    # The same route with a string id goes through: the refusal above was the type.
    (ok,) = world.publish(payload={"order": {"id": "o-7"}}).json()["data"]["routedCommands"]
    assert ok["status"] == "CREATED"


# --- exists filters ---------------------------------------------------------------------------


def test_exists_filters_match_on_presence_and_on_absence(world: World) -> None:
    present = world.route(name="present", filters=[{"path": "/payload/flag", "op": "exists"}])
    explicit = world.route(
        name="explicit", filters=[{"path": "/payload/flag", "op": "exists", "value": True}]
    )
    absent = world.route(
        name="absent", filters=[{"path": "/payload/flag", "op": "exists", "value": False}]
    )

    def routed(payload: dict[str, Any]) -> set[str]:
        r = world.publish(payload={"orderId": "o", **payload})
        assert r.status_code == 200, r.text
        return {e["routeId"] for e in r.json()["data"]["routedCommands"]}

    assert routed({}) == {absent["id"]}
    # A present field matches even when its value is falsy.
    assert routed({"flag": False}) == {present["id"], explicit["id"]}
    assert routed({"flag": None}) == {present["id"], explicit["id"]}
    assert routed({"other": 1}) == {absent["id"]}


# --- simulation -----------------------------------------------------------------------------


def test_simulation_forms_honour_limit_and_write_nothing(world: World) -> None:
    published = []
    for i in range(5):
        r = world.publish(payload={"orderId": f"o-{i}"})
        assert r.status_code == 200, r.text
        published.append(r.json()["data"]["eventId"])
    newest_two = list(reversed(published[-2:]))
    stored = world.route(status="DISABLED", inputMapping={"orderId": "/payload/orderId"})
    draft = _route_body(world, action="ship", inputMapping={"orderId": "/payload/orderId"})

    before = _side_effect_counts(world.ops)
    sim = world.ops.post(f"{ROUTES}/simulate", json={"limit": 2, "route": draft})
    assert sim.status_code == 200, sim.text
    assert sim.json()["experimental"] == EXPERIMENTAL
    report = sim.json()["data"]
    assert report["evaluated"] == 2
    assert [x["eventId"] for x in report["results"]] == newest_two
    assert report["counts"]["CREATED"] == 2
    assert report["counts"]["FAILED"] == report["counts"]["UNMATCHED"] == 0
    assert [x["payload"]["mapping"] for x in report["results"]] == [
        {"orderId": "o-4"},
        {"orderId": "o-3"},
    ]
    assert all(x["routeId"] is None for x in report["results"]), "a draft has no id"

    by_id = world.ops.data("POST", f"{ROUTES}/{stored['id']}/simulate", json={"limit": 2})
    assert by_id["evaluated"] == 2
    assert [x["eventId"] for x in by_id["results"]] == newest_two
    assert by_id["counts"]["CREATED"] == 2
    everything = world.ops.data("POST", f"{ROUTES}/simulate", json={"limit": 50, "route": draft})
    assert everything["evaluated"] == 5
    assert _side_effect_counts(world.ops) == before
    assert world.worker.poll() == []

    # A draft without its route is a validation error, not a simulation of nothing.
    bad = world.ops.post(f"{ROUTES}/simulate", json={"limit": 2})
    assert bad.status_code == 422
    assert bad.json()["error"]["code"] == "VALIDATION_FAILED"


# --- PUT replaces the whole route ---------------------------------------------------------------


def test_put_replaces_the_whole_route_and_unknown_ids_are_404(world: World) -> None:
    bare = world.ops.data("POST", ROUTES, json=_route_body(world))
    assert bare["description"] is None
    assert bare["inputMapping"] == {}
    assert bare["metadata"] == {}
    assert bare["filters"] == []
    assert bare["createdAt"] and bare["updatedAt"] == bare["createdAt"]

    full = world.ops.data(
        "POST",
        ROUTES,
        json=_route_body(
            world,
            name="full",
            action="ship",
            status="ENABLED",
            description="ships orders",
            inputMapping={"orderId": "/payload/orderId"},
            filters=[{"path": "/payload/region", "op": "equals", "value": "eu"}],
            metadata={"owner": "team-a"},
        ),
    )
    assert full["description"] == "ships orders"
    assert full["inputMapping"] == {"orderId": "/payload/orderId"}
    assert full["filters"][0]["value"] == "eu"
    assert full["metadata"] == {"owner": "team-a"}
    time.sleep(0.05)  # so that a moved updatedAt is visible at millisecond precision

    replaced = world.ops.data(
        "PUT", f"{ROUTES}/{full['id']}", json=_route_body(world, name="full", action="ship")
    )
    stored = world.ops.data("GET", f"{ROUTES}/{full['id']}")
    for route in (replaced, stored):
        assert route["description"] is None
        assert route["inputMapping"] == {}
        assert route["filters"] == []
        assert route["metadata"] == {}
        assert route["status"] == "DISABLED", "an omitted status is the default, not the old one"
        assert route["createdAt"] == full["createdAt"]
        assert route["updatedAt"] > full["updatedAt"]

    for method in ("PUT", "DELETE"):
        r = world.ops.request(method, f"{ROUTES}/brt_missing", json=_route_body(world))
        assert r.status_code == 404, (method, r.text)
        assert r.json()["error"]["code"] == "BUS_ROUTE_NOT_FOUND"
        assert r.json()["experimental"] == EXPERIMENTAL


# --- the flag off: every endpoint -------------------------------------------------------------


def test_every_bus_endpoint_is_404_when_the_flag_is_off(
    server: ServerProcess, admin: AdminClient
) -> None:
    # Bodies are valid and the caller is an owner with CSRF: only the flag can refuse them.
    body = {
        "name": "n",
        "match": {"eventType": "x"},
        "target": {"serviceCode": "no-such-service", "actionName": "a"},
    }
    calls: list[tuple[str, str, dict[str, Any] | None]] = [
        ("GET", ROUTES, None),
        ("POST", ROUTES, body),
        ("GET", f"{ROUTES}/brt_any", None),
        ("PUT", f"{ROUTES}/brt_any", body),
        ("DELETE", f"{ROUTES}/brt_any", None),
        ("POST", f"{ROUTES}/brt_any/simulate", {"limit": 5}),
        ("POST", f"{ROUTES}/simulate", {"limit": 5, "route": body}),
        ("GET", "/api/admin/bus/events", None),
        ("GET", "/api/admin/bus/audit", None),
    ]
    for method, path, json_body in calls:
        r = admin.request(method, path, json=json_body)
        assert r.status_code == 404, (method, path, r.text)
        error = r.json()["error"]
        assert error["code"] == "CAPSULE_BUS_DISABLED", (method, path)
        assert "OPSTAGE_CAPSULE_BUS_ENABLED" in error["message"]
        assert r.json()["experimental"] == EXPERIMENTAL, (method, path)
    bus_audit = [
        e
        for e in admin.data("GET", "/api/admin/audit-events", params={"pageSize": 100})
        if e["action"].startswith("bus.")
    ]
    assert bus_audit == [], "a disabled bus writes nothing"

    agent = register(server.url, admin.create_token(), "flag-off-" + str(time.time_ns()))
    r = agent.post(
        f"/api/agents/{agent.agent_id}/bus/events",
        json={"eventType": "x", "sourceServiceCode": "whatever"},
    )
    assert r.status_code == 404, r.text
    assert r.json()["error"]["code"] == "CAPSULE_BUS_DISABLED"
    assert "OPSTAGE_CAPSULE_BUS_ENABLED" in r.json()["error"]["message"]
    agent.close()


# --- the experimental mark and the events list ----------------------------------------------


def test_every_bus_response_is_marked_experimental(bus_server: ServerProcess, world: World) -> None:
    ops = world.ops
    seen: list[tuple[str, httpx.Response]] = []

    def call(label: str, method: str, path: str, **kw: Any) -> httpx.Response:
        r = ops.request(method, path, **kw)
        seen.append((label, r))
        return r

    created = call("create", "POST", ROUTES, json=_route_body(world)).json()["data"]
    rid = created["id"]
    call("list routes", "GET", ROUTES)
    call("get", "GET", f"{ROUTES}/{rid}")
    call("put", "PUT", f"{ROUTES}/{rid}", json=_route_body(world, name="r2"))
    call("simulate stored", "POST", f"{ROUTES}/{rid}/simulate", json={"limit": 1})
    call("simulate draft", "POST", f"{ROUTES}/simulate", json={"route": _route_body(world)})
    call("events", "GET", "/api/admin/bus/events")
    call("audit", "GET", "/api/admin/bus/audit")
    call("delete", "DELETE", f"{ROUTES}/{rid}")
    assert all(r.status_code == 200 for _, r in seen), [(n, r.text) for n, r in seen]
    errors = [
        ("get unknown", "GET", f"{ROUTES}/brt_missing", {}, 404),
        ("simulate unknown", "POST", f"{ROUTES}/brt_missing/simulate", {"json": {}}, 404),
        ("body invalid", "POST", ROUTES, {"json": {"name": ""}}, 422),
        ("bad filter", "POST", ROUTES, {"json": _route_body(world, filters=[{"path": "x"}])}, 422),
        ("bad pointer", "POST", ROUTES, {"json": _route_body(world, inputMapping={"a": "x"})}, 422),
        ("query invalid", "GET", "/api/admin/bus/events", {"params": {"page": 0}}, 422),
        ("page size invalid", "GET", ROUTES, {"params": {"pageSize": 100000}}, 422),
        ("method not allowed", "PATCH", f"{ROUTES}/brt_missing", {"json": {}}, 405),
    ]
    for label, method, path, kw, status in errors:
        r = call(label, method, path, **kw)
        assert r.status_code == status, (label, r.text)
        assert r.json()["success"] is False
    for label, r in seen:
        assert r.json().get("experimental") == EXPERIMENTAL, (label, r.text)


def test_events_list_newest_first_with_metadata_redacted(world: World) -> None:
    ids = []
    for i in range(3):
        r = world.publish(payload={"i": i}, metadata={"password": "hunter2", "note": f"n{i}"})
        assert r.status_code == 200, r.text
        ids.append(r.json()["data"]["eventId"])
    mine = _my_events(world.ops, world.event_type)
    assert [e["id"] for e in mine] == list(reversed(ids))
    accepted = [e["acceptedAt"] for e in mine]
    assert accepted == sorted(accepted, reverse=True)
    for event in mine:
        assert event["metadata"]["password"] == "[REDACTED]"
        assert event["metadata"]["note"] == f"n{event['payload']['i']}"
    assert "hunter2" not in str(mine)
