"""Capsule Bus rules seen from outside: the live stream, the idempotency window, the defaults a
server starts with, and outcome events of bus-created commands — over HTTP, real server."""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from opstage_testing.clients import AdminClient, action
from opstage_testing.inprocess import InProcessServer
from opstage_testing.server import ServerProcess
from opstage_testing.sse import Frame, Sse, kind_is, open_stream

from ..conftest import unique
from ..support.bus import World
from ..support.sql import set_timestamp

Row = dict[str, Any]


def _server(
    factory: pytest.TempPathFactory, database_factory: Any, env: dict[str, str]
) -> ServerProcess:
    data_dir: Path = factory.mktemp("bus-live")
    return InProcessServer(data_dir, database_factory(data_dir, migrated=True), env).start()


@pytest.fixture(scope="module")
def default_bus(
    tmp_path_factory: pytest.TempPathFactory, database_factory: Any
) -> Iterator[ServerProcess]:
    """The bus switched on and nothing else: every other Capsule Bus setting at its default."""
    srv = _server(tmp_path_factory, database_factory, {"OPSTAGE_CAPSULE_BUS_ENABLED": "true"})
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def outcome_bus(
    tmp_path_factory: pytest.TempPathFactory, database_factory: Any
) -> Iterator[ServerProcess]:
    srv = _server(
        tmp_path_factory,
        database_factory,
        {"OPSTAGE_CAPSULE_BUS_ENABLED": "true", "OPSTAGE_CAPSULE_BUS_OUTCOME_EVENTS": "true"},
    )
    yield srv
    srv.stop()


def _world(srv: ServerProcess) -> Iterator[World]:
    with AdminClient(srv.url) as ops:
        ops.login()
        w = World(srv.url, ops, [action("note"), action("cleanup")])
        yield w
        w.close()


@pytest.fixture
def plain(default_bus: ServerProcess) -> Iterator[World]:
    yield from _world(default_bus)


@pytest.fixture
def looped(outcome_bus: ServerProcess) -> Iterator[World]:
    yield from _world(outcome_bus)


def _stored_events(ops: AdminClient) -> list[Row]:
    return ops.every("/api/admin/bus/events")


def _published(w: World, **body: Any) -> Row:
    r = w.publish(**body)
    assert r.status_code == 200, r.text
    data: Row = r.json()["data"]
    return data


def _until_all(sse: Sse, wanted: dict[str, Callable[[Frame], bool]]) -> dict[str, Frame]:
    """The first frame matching each of ``wanted``, in whatever order the stream sends them."""
    found: dict[str, Frame] = {}
    deadline = time.monotonic() + 15
    try:
        for frame in sse:
            for name, match in wanted.items():
                if name not in found and match(frame):
                    found[name] = frame
            if len(found) == len(wanted):
                return found
            if time.monotonic() > deadline:
                break
    except httpx.ReadTimeout:  # silence longer than the read timeout: nothing more is coming
        pass
    raise AssertionError(f"the stream never carried {_missing(wanted, found)}")


def _missing(wanted: dict[str, Any], found: dict[str, Any]) -> list[str]:
    return sorted(set(wanted) - set(found))


# --- live: bus events, routed commands and route changes are domain events -------------------


def test_live_stream_shows_bus_events_routed_commands_and_route_changes(plain: World) -> None:
    ops = plain.ops
    with open_stream(ops) as sse:
        sse.until(lambda f: f.event == "ready")
        route = plain.route(action="note")
        created = sse.until(kind_is("bus.route.changed", routeId=route["id"]))[-1]
        assert created.data["data"] == {"routeId": route["id"], "change": "created"}

        data = _published(plain)
        (entry,) = data["routedCommands"]
        assert entry["status"] == "CREATED"
        frames = _until_all(
            sse,
            {
                "event": kind_is("bus.event.accepted", eventId=data["eventId"]),
                "command": kind_is("command.created", commandId=entry["commandId"]),
            },
        )
        assert frames["event"].data["data"] == {
            "eventId": data["eventId"],
            "eventType": plain.event_type,
            "agentId": plain.publisher.agent_id,
            "routeCount": 1,
        }
        command = frames["command"].data["data"]
        assert command["agentId"] == plain.worker.agent_id
        assert command["serviceId"] == plain.target["id"]
        assert command["actionName"] == "note"

        body = {
            "name": "renamed",
            "status": "DRY_RUN",
            "match": {"eventType": plain.event_type},
            "target": {"serviceCode": plain.target_code, "actionName": "note"},
        }
        ops.data("PUT", f"/api/admin/bus/routes/{route['id']}", json=body)
        updated = sse.until(kind_is("bus.route.changed", routeId=route["id"], change="updated"))
        ops.data("DELETE", f"/api/admin/bus/routes/{route['id']}")
        deleted = sse.until(kind_is("bus.route.changed", routeId=route["id"], change="deleted"))
    # Stream ids grow in commit order: created, then updated, then deleted.
    assert int(created.id or 0) < int(updated[-1].id or 0) < int(deleted[-1].id or 0)


# --- idempotency: a key replays for 24 h, then it is free again -------------------------------


def test_idempotency_key_replays_for_24_hours_then_starts_a_new_event(
    default_bus: ServerProcess, plain: World
) -> None:
    plain.route(action="note")
    key = {"Idempotency-Key": unique("k")}
    first = _published(plain, headers=key)
    now = datetime.now(UTC)

    # 23 h old: still inside the default 24 h window, so a retry is a replay.
    aged = now - timedelta(hours=23)
    assert set_timestamp(default_bus, "bus_events", "accepted_at", first["eventId"], aged) == 1
    replay = _published(plain, headers=key)
    assert replay["replay"] is True
    assert replay["eventId"] == first["eventId"]
    assert len(plain.worker.poll(limit=10)) == 1  # the original command, nothing new

    # 25 h old: past the window, so the same key is a new event with its own command.
    expired = now - timedelta(hours=25)
    assert set_timestamp(default_bus, "bus_events", "accepted_at", first["eventId"], expired) == 1
    fresh = _published(plain, headers=key)
    assert "replay" not in fresh
    assert fresh["eventId"] != first["eventId"]
    (entry,) = fresh["routedCommands"]
    (cmd,) = plain.worker.poll(limit=10)
    assert cmd["id"] == entry["commandId"]
    assert cmd["payload"]["busEvent"]["id"] == fresh["eventId"]
    # The key now belongs to the new event: a retry replays that one.
    again = _published(plain, headers=key)
    assert again["replay"] is True and again["eventId"] == fresh["eventId"]
    ids = {e["id"] for e in _stored_events(plain.ops) if e["eventType"] == plain.event_type}
    assert ids == {first["eventId"], fresh["eventId"]}


# --- defaults: 60 accepted events per agent and minute ------------------------------------------


def test_default_rate_limit_accepts_60_events_a_minute(plain: World) -> None:
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        codes = list(pool.map(lambda _: plain.publish().status_code, range(60)))
    assert codes == [200] * 60
    limited = plain.publish()
    assert time.monotonic() - started < 60, "too slow to test a per-minute limit"
    assert limited.status_code == 429, limited.text
    error = limited.json()["error"]
    assert error["code"] == "BUS_RATE_LIMITED"
    assert error["details"]["limitPerMinute"] == 60
    assert int(limited.headers["retry-after"]) >= 1
    stored = [e for e in _stored_events(plain.ops) if e["eventType"] == plain.event_type]
    assert len(stored) == 60


# --- outcome events ---------------------------------------------------------------------------


def test_outcome_events_are_off_by_default(plain: World) -> None:
    plain.route(action="note")
    originals = {_published(plain)["eventId"] for _ in range(2)}
    ok, failed = plain.worker.poll(limit=10)
    assert plain.worker.result(ok["id"], success=True).status_code == 200
    r = plain.worker.result(failed["id"], success=False, error={"code": "BOOM", "message": "x"})
    assert r.status_code == 200, r.text
    assert plain.ops.data("GET", f"/api/admin/commands/{ok['id']}")["status"] == "SUCCEEDED"
    assert plain.ops.data("GET", f"/api/admin/commands/{failed['id']}")["status"] == "FAILED"
    # The outcome would be written with the result, in its transaction: no need to wait.
    events = _stored_events(plain.ops)
    assert not [e for e in events if e["causationId"] in originals]
    assert not [e for e in events if e["payload"].get("commandId") in (ok["id"], failed["id"])]
    assert plain.worker.poll(limit=10) == []


def test_success_outcome_is_a_bus_event_caused_by_the_original(looped: World) -> None:
    looped.route(action="note")
    # A route reacting to the success outcome of the target service: the loop closes.
    looped.route(
        action="cleanup",
        match={"eventType": "command.succeeded", "sourceServiceCode": looped.target_code},
    )
    correlation = unique("corr")
    original = _published(looped, correlationId=correlation)
    (work,) = looped.worker.poll()
    assert work["actionName"] == "note"
    assert looped.worker.result(work["id"], success=True).status_code == 200

    outcomes = [
        e
        for e in _stored_events(looped.ops)
        if e["eventType"] == "command.succeeded" and e["payload"].get("commandId") == work["id"]
    ]
    assert len(outcomes) == 1, outcomes
    (outcome,) = outcomes
    assert outcome["causationId"] == original["eventId"]
    assert outcome["correlationId"] == correlation
    assert outcome["depth"] == 1
    assert outcome["agentId"] == looped.worker.agent_id
    assert outcome["sourceServiceCode"] == looped.target_code
    assert outcome["payload"]["status"] == "SUCCEEDED"
    assert outcome["payload"]["errorCode"] is None
    assert outcome["routeCount"] == 1

    (cleanup,) = looped.worker.poll()
    assert cleanup["actionName"] == "cleanup"
    assert cleanup["payload"]["busEvent"]["id"] == outcome["id"]
    assert cleanup["payload"]["busEvent"]["causationId"] == original["eventId"]
