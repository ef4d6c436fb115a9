"""Capsule Bus ingest rules the other bus tests leave open: the order of refusals and what a
refused event costs, the depth limit along a chain, which routes match and in what order,
the failed/unmatched audits, and the expiry of a bus-created command. Over HTTP, real server.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from opstage_testing.clients import AdminClient, action, service
from opstage_testing.inprocess import InProcessServer

from ..conftest import unique
from ..support.bus import World

# Small enough to exhaust in a few publishes, large enough for a depth-2 chain plus one more.
LIMIT = 4


@pytest.fixture(scope="module")
def tight(tmp_path_factory: pytest.TempPathFactory, database_factory: Any) -> Iterator[str]:
    """A bus server with a per-agent budget of LIMIT events a minute and causation depth 2.

    Budgets are per agent, so each test brings its own publisher (a fresh ``World``).
    """
    data_dir: Path = tmp_path_factory.mktemp("bus-tight")
    srv = InProcessServer(
        data_dir,
        database_factory(data_dir, migrated=True),
        {
            "OPSTAGE_CAPSULE_BUS_ENABLED": "true",
            "OPSTAGE_CAPSULE_BUS_INGEST_PER_MIN": str(LIMIT),
            "OPSTAGE_CAPSULE_BUS_MAX_DEPTH": "2",
        },
    ).start()
    try:
        yield srv.url
    finally:
        srv.stop()


@pytest.fixture
def tight_ops(tight: str) -> Iterator[AdminClient]:
    with AdminClient(tight) as c:
        yield c.login()


def _world(url: str, ops: AdminClient) -> World:
    return World(url, ops, [action("note")])


def _error(r: httpx.Response) -> tuple[int, str]:
    return r.status_code, r.json()["error"]["code"]


def _event_id(r: httpx.Response) -> str:
    assert r.status_code == 200, r.text
    event_id: str = r.json()["data"]["eventId"]
    return event_id


def _chain(w: World, length: int) -> list[str]:
    """Publish an original event and ``length - 1`` reactions, each caused by the last."""
    ids = [_event_id(w.publish())]
    for _ in range(length - 1):
        ids.append(_event_id(w.publish(causationId=ids[-1])))
    return ids


def _events_of(ops: AdminClient, event_type: str) -> list[dict[str, Any]]:
    return [e for e in ops.every("/api/admin/bus/events") if e["eventType"] == event_type]


# --- 1. order of ingest refusals, and what a refusal costs ---------------------------------


def test_source_refusals_come_before_the_rate_limit_and_depth_after_it(
    tight: str, tight_ops: AdminClient
) -> None:
    w = _world(tight, tight_ops)
    try:
        deepest = _chain(w, 3)[-1]  # depths 0, 1, 2: all allowed at max depth 2
        _event_id(w.publish())  # the LIMIT-th event: the budget is now spent
        assert _error(w.publish()) == (429, "BUS_RATE_LIMITED")

        unknown = w.publish(sourceServiceCode=unique("nosuch"))
        assert _error(unknown) == (404, "BUS_SOURCE_SERVICE_NOT_FOUND")
        foreign = w.publish(sourceServiceCode=w.target_code)  # the worker agent's service
        assert _error(foreign) == (403, "BUS_SOURCE_SERVICE_FORBIDDEN")
        unknown_and_deep = w.publish(sourceServiceCode=unique("nosuch"), causationId=deepest)
        assert _error(unknown_and_deep) == (404, "BUS_SOURCE_SERVICE_NOT_FOUND")
        foreign_and_deep = w.publish(sourceServiceCode=w.target_code, causationId=deepest)
        assert _error(foreign_and_deep) == (403, "BUS_SOURCE_SERVICE_FORBIDDEN")

        too_deep = w.publish(causationId=deepest)  # depth 3 > 2, but the limit is checked first
        assert _error(too_deep) == (429, "BUS_RATE_LIMITED")
        assert int(too_deep.headers["retry-after"]) >= 1
        assert too_deep.json()["error"]["details"]["limitPerMinute"] == LIMIT
    finally:
        w.close()


def test_refused_events_are_neither_stored_nor_counted(tight: str, tight_ops: AdminClient) -> None:
    w, helper = _world(tight, tight_ops), _world(tight, tight_ops)
    try:
        # Another agent's depth-2 event: reacting to it is too deep, and costs w nothing yet.
        deepest = _chain(helper, 3)[-1]
        for _ in range(2):
            assert _error(w.publish(sourceServiceCode=unique("nosuch")))[0] == 404
            assert _error(w.publish(sourceServiceCode=w.target_code))[0] == 403
            assert _error(w.publish(causationId=deepest)) == (422, "BUS_DEPTH_EXCEEDED")
        accepted = [_event_id(w.publish()) for _ in range(LIMIT)]
        assert _error(w.publish()) == (429, "BUS_RATE_LIMITED")
        stored = _events_of(tight_ops, w.event_type)
        assert sorted(e["id"] for e in stored) == sorted(accepted)
    finally:
        w.close()
        helper.close()


# --- 2. the depth limit along a causation chain ---------------------------------------------


def test_max_depth_setting_is_honoured_along_the_chain(tight: str, tight_ops: AdminClient) -> None:
    w = _world(tight, tight_ops)
    try:
        chain = _chain(w, 3)
        depths = {e["id"]: e["depth"] for e in _events_of(tight_ops, w.event_type)}
        assert [depths[i] for i in chain] == [0, 1, 2]
        r = w.publish(causationId=chain[-1])
        assert _error(r) == (422, "BUS_DEPTH_EXCEEDED")
        assert r.json()["error"]["details"] == {"depth": 3, "maxDepth": 2}
        # Another reaction to the depth-1 event is depth 2 again: it is the depth that counts.
        sibling = _event_id(w.publish(causationId=chain[1]))
        depths = {e["id"]: e["depth"] for e in _events_of(tight_ops, w.event_type)}
        assert len(depths) == 4
        assert depths[sibling] == 2
    finally:
        w.close()


def test_unknown_causation_counts_as_depth_one(world: World) -> None:
    # The module's bus server runs with the default max depth 1.
    orphan = _event_id(world.publish(causationId=unique("bev_gone")))
    (stored,) = _events_of(world.ops, world.event_type)
    assert (stored["id"], stored["depth"]) == (orphan, 1)
    assert _error(world.publish(causationId=orphan)) == (422, "BUS_DEPTH_EXCEEDED")


# --- 3. matching ----------------------------------------------------------------------------


def _route(world: World, name: str, *, pause: bool = True, **extra: Any) -> str:
    extra.setdefault("action", "note")
    route_id: str = world.route(name=name, **extra)["id"]
    if pause:
        # Routes fire oldest first: keep creation times apart so "oldest" is unambiguous.
        time.sleep(0.01)
    return route_id


def test_only_live_routes_for_this_event_and_source_match_oldest_first(world: World) -> None:
    first = _route(world, "any-source", match={"sourceServiceCode": None})
    _route(world, "disabled", status="DISABLED")
    _route(world, "other-source", match={"sourceServiceCode": world.target_code})
    _route(world, "other-type", match={"eventType": unique("other.type")})
    second = _route(world, "this-source", match={"sourceServiceCode": world.source_code})
    _route(world, "disabled-2", status="DISABLED", match={"sourceServiceCode": world.source_code})
    third = _route(world, "plain")

    entries = world.publish().json()["data"]["routedCommands"]
    assert [e["routeId"] for e in entries] == [first, second, third]
    assert {e["status"] for e in entries} == {"CREATED"}
    polled = world.worker.poll(limit=10)
    assert sorted(c["id"] for c in polled) == sorted(e["commandId"] for e in entries)


def test_at_most_ten_routes_per_event_the_oldest(world: World) -> None:
    routes = [_route(world, f"r{i}") for i in range(12)]
    data = world.publish().json()["data"]
    assert [e["routeId"] for e in data["routedCommands"]] == routes[:10]
    (stored,) = _events_of(world.ops, world.event_type)
    assert stored["routeCount"] == 10
    commands = [
        c for c in world.ops.every("/api/admin/commands") if c["busEventId"] == stored["id"]
    ]
    assert sorted(c["busRouteId"] for c in commands) == sorted(routes[:10])


# --- 4. audits of failed and unmatched routing ----------------------------------------------


def _bus_audit(ops: AdminClient, ident: str) -> list[dict[str, Any]]:
    return [a for a in ops.every("/api/admin/bus/audit") if ident in str(a)]


def test_failed_and_unmatched_routing_is_audited(world: World) -> None:
    unmatched = _event_id(world.publish())
    (row,) = [a for a in _bus_audit(world.ops, unmatched) if a["action"] == "bus.route.unmatched"]
    assert (row["targetType"], row["targetId"]) == ("BusEvent", unmatched)
    assert row["metadata"]["eventType"] == world.event_type

    broken = _route(world, "broken", pause=False, action="doesNotExist")
    r = world.publish()
    failed_event = _event_id(r)
    (entry,) = r.json()["data"]["routedCommands"]
    assert (entry["status"], entry["errorCode"]) == ("FAILED", "BUS_TARGET_NOT_FOUND")
    rows = [a for a in _bus_audit(world.ops, broken) if a["action"] == "bus.route.failed"]
    (row,) = rows
    assert (row["targetType"], row["targetId"], row["result"]) == ("BusRoute", broken, "FAILURE")
    assert row["metadata"]["eventId"] == failed_event
    assert row["metadata"]["errorCode"] == "BUS_TARGET_NOT_FOUND"
    # A matched (even failing) event is not also "unmatched".
    actions = {a["action"] for a in _bus_audit(world.ops, failed_event)}
    assert "bus.route.unmatched" not in actions
    assert {"bus.event.received", "bus.route.matched", "bus.route.failed"} <= actions


# --- 5. expiry of a bus-created command -----------------------------------------------------


def _lifetime(ops: AdminClient, command_id: str) -> float:
    cmd = ops.data("GET", f"/api/admin/commands/{command_id}")
    created = datetime.fromisoformat(cmd["createdAt"].replace("Z", "+00:00"))
    expires = datetime.fromisoformat(cmd["expiresAt"].replace("Z", "+00:00"))
    return (expires - created).total_seconds()


def test_command_expiry_comes_from_the_action_timeout(world: World) -> None:
    world.worker.report(
        service(world.target_code, action("slow", timeoutSeconds=137), action("note"))
    )
    world.route(name="slow", action="slow")
    world.route(name="note", action="note")
    entries = world.publish().json()["data"]["routedCommands"]
    by_action = {e["actionName"]: e["commandId"] for e in entries}
    assert abs(_lifetime(world.ops, by_action["slow"]) - 137) < 1
    # No timeout declared: the server default (OPSTAGE_COMMAND_DEFAULT_TIMEOUT_SECONDS, 600).
    assert abs(_lifetime(world.ops, by_action["note"]) - 600) < 1
