"""Capsule Bus answers as the reference server (CE v0.4) gives them, so CE routes and the
clients that read CE's answers work unchanged (bus-enabled server: e2e/conftest.py)."""

from __future__ import annotations

from typing import Any

import pytest

from ..support.bus import EXPERIMENTAL, World

ROUTES = "/api/admin/bus/routes"


def test_the_route_object_itself_carries_experimental(world: World) -> None:
    created = world.route(action="note")
    assert created["experimental"] == EXPERIMENTAL
    fetched = world.ops.data("GET", f"{ROUTES}/{created['id']}")
    assert fetched["experimental"] == EXPERIMENTAL
    listed = [r for r in world.ops.every(ROUTES) if r["id"] == created["id"]]
    assert [r["experimental"] for r in listed] == [EXPERIMENTAL]
    replaced = world.ops.data(
        "PUT",
        f"{ROUTES}/{created['id']}",
        json={
            "name": "again",
            "status": "DRY_RUN",
            "match": {"eventType": world.event_type},
            "target": {"serviceCode": world.target_code, "actionName": "note"},
        },
    )
    assert replaced["experimental"] == EXPERIMENTAL
    world.publish()
    (event, *_) = world.ops.data("GET", "/api/admin/bus/events")
    assert event["experimental"] == EXPERIMENTAL


def _entries(world: World, **body: Any) -> list[dict[str, Any]]:
    r = world.publish(**body)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["experimental"] == EXPERIMENTAL  # in the data too, as the reference's
    entries: list[dict[str, Any]] = data["routedCommands"]
    return entries


def test_routed_commands_carry_dry_run_and_failures_carry_error_message(world: World) -> None:
    dry = world.route(status="DRY_RUN", action="note")
    (entry,) = _entries(world)
    assert (entry["status"], entry["dryRun"]) == ("DRY_RUN", True)
    world.ops.data("DELETE", f"{ROUTES}/{dry['id']}")

    live = world.route(action="note")
    (entry,) = _entries(world, routePolicy={"dryRun": True})
    assert (entry["status"], entry["dryRun"]) == ("DRY_RUN", True)
    (entry,) = _entries(world)
    assert (entry["status"], entry["dryRun"]) == ("CREATED", False)
    assert entry["commandId"].startswith("cmd_")
    world.ops.data("DELETE", f"{ROUTES}/{live['id']}")

    world.route(action="doesNotExist")
    (entry,) = _entries(world)
    assert entry["status"] == "FAILED"
    assert entry["dryRun"] is False
    assert entry["errorCode"] == "BUS_TARGET_NOT_FOUND"
    assert isinstance(entry["errorMessage"], str) and entry["errorMessage"]


@pytest.mark.parametrize(
    ("mapping", "payload", "expected"),
    [
        ({"orderId": "$.payload.id"}, {"id": "o-1"}, {"orderId": "o-1"}),
        ({"orderId": "/payload/id"}, {"id": "o-2"}, {"orderId": "o-2"}),
        (
            {"orderId": "$.payload.order.id", "sku": "$.payload.lines[1].sku"},
            {"order": {"id": "o-3"}, "lines": [{"sku": "a"}, {"sku": "b"}]},
            {"orderId": "o-3", "sku": "b"},
        ),
        ({"orderId": "$['payload']['the id']"}, {"the id": "o-4"}, {"orderId": "o-4"}),
    ],
)
def test_input_mapping_accepts_the_reference_dollar_form_and_json_pointer(
    world: World, mapping: dict[str, str], payload: dict[str, Any], expected: dict[str, Any]
) -> None:
    route = world.route(inputMapping=mapping)
    assert route["inputMapping"] == mapping  # kept as written: CE clients read it back
    (entry,) = _entries(world, payload=payload)
    assert entry["status"] == "CREATED", entry
    (cmd,) = world.worker.poll()
    assert cmd["payload"]["mapping"] == expected
    assert cmd["payload"]["payload"] == payload


def test_a_dollar_mapping_to_nothing_fails_like_a_pointer_to_nothing(world: World) -> None:
    world.route(inputMapping={"orderId": "$.payload.missing"})
    (entry,) = _entries(world, payload={"id": "o"})
    assert (entry["status"], entry["errorCode"]) == ("FAILED", "BUS_INPUT_INVALID")
    assert entry["errorMessage"]
    assert world.worker.poll() == []


@pytest.mark.parametrize("source", ["payload.id", "$..id", "$.payload.*", "$.", "$[x]"])
def test_a_mapping_that_is_neither_form_is_refused(world: World, source: str) -> None:
    body = {
        "name": "bad",
        "match": {"eventType": world.event_type},
        "target": {"serviceCode": world.target_code, "actionName": "ship"},
        "inputMapping": {"orderId": source},
    }
    r = world.ops.post(ROUTES, json=body)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "VALIDATION_FAILED"
    assert r.json()["error"]["details"]["issues"][0]["path"] == "inputMapping/orderId"
