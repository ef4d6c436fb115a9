"""Issue 15, A1: integers beyond 64 bits in free-form JSON are refused with 422, never a 500.

The JSON codec that stores free-form JSON writes integers of 64 bits at most: a larger one used
to fail the write itself (500, and for a heartbeat its whole group commit). Every field the
issue lists is tried over HTTP on the real server: manifest, health details, configs, action
payloads, bus payloads and metadata, route metadata and filters, command result data. Each is
``422 VALIDATION_FAILED`` naming the number's path; the 64-bit extremes are stored losslessly.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from opstage_testing.clients import AdminClient, AgentClient, action, register, service
from opstage_testing.server import ServerProcess

from ..conftest import unique
from ..support.bus import World

BIG = 10**29
INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)
OUT_OF_RANGE = [BIG, -BIG, INT64_MAX + 1, INT64_MIN - 1]


def _refused(r: httpx.Response, *paths: str) -> None:
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "VALIDATION_FAILED", error
    assert [i["path"] for i in error["details"]["issues"]] == list(paths), error


def _agent(srv: ServerProcess, ops: AdminClient) -> tuple[AgentClient, str]:
    code = unique("ints")
    agent = register(srv.url, ops.create_token(), code)
    return agent, code


@pytest.mark.parametrize("n", OUT_OF_RANGE)
def test_manifest_health_and_configs(bus_server: ServerProcess, ops: AdminClient, n: int) -> None:
    agent, code = _agent(bus_server, ops)
    report = f"/api/agents/{agent.agent_id}/services/report"
    _refused(
        agent.post(report, json={"services": [service(code, manifest={"kind": "x", "n": n})]}),
        "services.0.manifest.n",
    )
    nested = {"status": "UP", "details": {"deep": [1, {"n": n}]}}
    _refused(
        agent.post(report, json={"services": [service(code, health=nested)]}),
        "services.0.health.details.deep.1.n",
    )
    config = {"key": "K", "type": "string", "defaultValue": n}
    r = agent.post(report, json={"services": [service(code, configs=[config])]})
    assert r.status_code == 422 and r.json()["error"]["code"] == "VALIDATION_FAILED"
    assert [i["path"] for i in r.json()["error"]["details"]["issues"]] == [
        "services.0.configs.0.defaultValue"
    ]
    # The hot path (heartbeat) and the registration that may carry a first service.
    beat = f"/api/agents/{agent.agent_id}/heartbeat"
    _refused(agent.post(beat, json={"health": nested}), "health.details.deep.1.n")
    body = {
        "registrationToken": ops.create_token(),
        "agent": {"code": unique("reg"), "name": "r"},
        "service": service(unique("regsvc"), manifest={"n": n}),
    }
    _refused(httpx.post(bus_server.url + "/api/agents/register", json=body), "service.manifest.n")
    # Nothing of it was stored: the agent has no service yet.
    assert ops.data("GET", "/api/admin/capsule-services", params={"agentId": agent.agent_id}) == []
    agent.close()


def test_the_64_bit_extremes_are_stored_losslessly(
    bus_server: ServerProcess, ops: AdminClient
) -> None:
    agent, code = _agent(bus_server, ops)
    extremes = {"max": INT64_MAX, "min": INT64_MIN, "list": [INT64_MAX, INT64_MIN]}
    svc = agent.report(service(code, manifest={"kind": "x", **extremes}))["services"][0]
    agent.heartbeat({"status": "UP", "details": extremes})
    manifest = ops.data("GET", f"/api/admin/capsule-services/{svc['id']}/manifest")
    assert {k: manifest[k] for k in extremes} == extremes
    health = ops.data("GET", f"/api/admin/capsule-services/{svc['id']}/health")
    assert health["details"] == extremes
    agent.close()


@pytest.mark.parametrize("n", OUT_OF_RANGE)
def test_action_payloads_and_command_results(
    bus_server: ServerProcess, ops: AdminClient, n: int
) -> None:
    agent, code = _agent(bus_server, ops)
    svc = agent.report(service(code, action("note")))["services"][0]
    run = f"/api/admin/capsule-services/{svc['id']}/actions/note"
    _refused(ops.post(run, json={"payload": {"count": n}}), "payload.count")
    command = ops.data("POST", run, json={"payload": {"count": INT64_MAX}})
    assert [c["id"] for c in agent.poll()] == [command["id"]]
    # A result the server cannot store is refused: the agent can then send one it can.
    _refused(agent.result(command["id"], success=True, data={"rows": [n]}), "data.rows.0")
    _refused(
        agent.result(command["id"], success=False, error={"code": "E", "details": {"n": n}}),
        "error.details.n",
    )
    assert ops.data("GET", f"/api/admin/commands/{command['id']}")["status"] == "RUNNING"
    r = agent.result(command["id"], success=True, data={"rows": [INT64_MIN]})
    assert r.status_code == 200, r.text
    done = ops.data("GET", f"/api/admin/commands/{command['id']}")
    assert done["status"] == "SUCCEEDED" and done["result"]["data"] == {"rows": [INT64_MIN]}
    agent.close()


@pytest.mark.parametrize("n", OUT_OF_RANGE)
def test_bus_payloads_and_route_metadata(world: World, n: int) -> None:
    _refused(world.publish(payload={"orderId": "o1", "amount": n}), "payload.amount")
    _refused(world.publish(payload={"orderId": "o1"}, metadata={"trace": [n]}), "metadata.trace.0")
    ops = world.ops
    route: dict[str, Any] = {
        "name": "r",
        "match": {"eventType": world.event_type},
        "target": {"serviceCode": world.target_code, "actionName": "note"},
    }
    _refused(
        ops.post("/api/admin/bus/routes", json={**route, "metadata": {"owner": {"n": n}}}),
        "metadata.owner.n",
    )
    bad_filter = {"path": "/payload/n", "op": "equals", "value": n}
    _refused(
        ops.post("/api/admin/bus/routes", json={**route, "filters": [bad_filter]}),
        "filters.0.value",
    )
    simulate = {"route": {**route, "metadata": {"n": n}}, "limit": 5}
    _refused(ops.post("/api/admin/bus/routes/simulate", json=simulate), "route.metadata.n")
    # The same event with a number in range is accepted and routed.
    ok = world.publish(payload={"orderId": "o1", "amount": INT64_MAX})
    assert ok.status_code == 200, ok.text


@pytest.mark.parametrize("number", [b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-2E+999"])
def test_numbers_that_are_not_finite_are_refused_too(
    bus_server: ServerProcess, ops: AdminClient, number: bytes
) -> None:
    """The parser takes them, the codec would store ``null``: refused instead of lost."""
    agent, code = _agent(bus_server, ops)
    svc = agent.report(service(code, action("note")))["services"][0]
    raw = b'{"health":{"status":"UP","details":{"ratio":' + number + b"}}}"
    headers = {"Content-Type": "application/json"}
    _refused(
        agent.post(f"/api/agents/{agent.agent_id}/heartbeat", content=raw, headers=headers),
        "health.details.ratio",
    )
    raw = b'{"payload":{"x":[1,' + number + b"]}}"
    run = f"/api/admin/capsule-services/{svc['id']}/actions/note"
    _refused(ops.post(run, content=raw, headers=headers), "payload.x.1")
    # An ordinary float with a large but finite exponent is kept as it is.
    fine = b'{"health":{"status":"UP","details":{"ratio":1.5e300}}}'
    r = agent.post(f"/api/agents/{agent.agent_id}/heartbeat", content=fine, headers=headers)
    assert r.status_code == 200, r.text
    health = ops.data("GET", f"/api/admin/capsule-services/{svc['id']}/health")
    assert health["details"] == {"ratio": 1.5e300}
    agent.close()


def test_text_with_a_nul_character_is_refused_on_every_engine(
    bus_server: ServerProcess, ops: AdminClient
) -> None:
    """PostgreSQL's text cannot hold U+0000: a 500 there, stored on SQLite; 422 on both now."""
    agent, code = _agent(bus_server, ops)
    report = f"/api/agents/{agent.agent_id}/services/report"
    _refused(
        agent.post(report, json={"services": [service(code, description="a\x00b")]}),
        "services.0.description",
    )
    _refused(
        agent.post(report, json={"services": [service(code, manifest={"k\x00": "v"})]}),
        "services.0.manifest.k\\u0000",
    )
    _refused(
        ops.post("/api/admin/registration-tokens", json={"name": "nul\x00name"}),
        "name",
    )
    beat = f"/api/agents/{agent.agent_id}/heartbeat"
    _refused(
        agent.post(beat, json={"health": {"status": "UP", "details": {"k": ["ok", "\x00"]}}}),
        "health.details.k.1",
    )
    # A backslash followed by "u0000" is ordinary text, and is kept.
    svc = agent.report(service(code, description="literally \\u0000"))["services"][0]
    assert ops.data("GET", f"/api/admin/capsule-services/{svc['id']}")["description"] == (
        "literally \\u0000"
    )
    agent.close()
