"""The status model of the reference server (``deriveEffectiveStatus``, ``runMaintenance``) and
``contracts/enums``, seen over HTTP as the console and the reference's agents see it.

- An agent reads its stored status: ONLINE until the sweep stores OFFLINE.
- A service reads OFFLINE when its agent is OFFLINE, DISABLED or REVOKED; STALE when its agent
  has not sent a heartbeat yet or none within the offline threshold; otherwise its stored
  status, which the sweep sets to STALE (health UNKNOWN) and the next report sets again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from opstage_testing.clients import AdminClient, AgentClient, register, service
from opstage_testing.contracts import contract_dir
from opstage_testing.inprocess import InProcessServer
from opstage_testing.server import ServerProcess

from ..conftest import ServerFactory, unique

A = "/api/admin"
THRESHOLD = 2  # seconds: OPSTAGE_AGENT_OFFLINE_THRESHOLD_SECONDS of these servers


@pytest.fixture
def paused(make_server: ServerFactory) -> Iterator[tuple[InProcessServer, AdminClient]]:
    """A server whose sweep runs only when asked, with a short offline threshold and a fake
    clock: ``srv.clock.advance`` is time passing, not a sleep."""
    srv = make_server(
        OPSTAGE_AGENT_OFFLINE_THRESHOLD_SECONDS=str(THRESHOLD),
        OPSTAGE_MAINTENANCE_INTERVAL_SECONDS="0",
    )
    srv.fake_clock()
    with AdminClient(srv.url) as owner:
        yield srv, owner.login()


def _service(owner: AdminClient, service_id: str) -> dict[str, Any]:
    data: dict[str, Any] = owner.data("GET", f"{A}/capsule-services/{service_id}")
    return data


def _agent(owner: AdminClient, agent_id: str) -> dict[str, Any]:
    data: dict[str, Any] = owner.data("GET", f"{A}/agents/{agent_id}")
    return data


def _with_service(srv: ServerProcess, owner: AdminClient) -> tuple[AgentClient, str]:
    agent = register(srv.url, owner.create_token(), unique("st"))
    (svc,) = agent.report(service(unique("svc"), health={"status": "UP"}))["services"]
    return agent, svc["id"]


def test_a_registered_agent_without_a_heartbeat_has_its_service_read_stale(
    admin: AdminClient, server: ServerProcess
) -> None:
    code = unique("svc")
    r = admin.post(f"{A}/registration-tokens", json={})
    body = {
        "registrationToken": r.json()["data"]["rawToken"],
        "agent": {"code": unique("new"), "mode": "embedded"},
        "service": service(code, health={"status": "UP"}),
    }
    with AdminClient(server.url) as anon:
        reg = anon.post("/api/agents/register", json=body)
    assert reg.status_code == 200, reg.text
    agent_id = reg.json()["data"]["agentId"]
    (svc,) = [s for s in admin.every(f"{A}/capsule-services") if s["code"] == code]
    assert svc["status"] == "STALE", svc
    assert svc["storedStatus"] == "HEALTHY"
    assert _service(admin, svc["id"])["status"] == "STALE"
    assert [s["id"] for s in admin.every(f"{A}/capsule-services", status="STALE")].count(
        svc["id"]
    ) == 1
    # Its first heartbeat makes the reported health count.
    with AgentClient(server.url, agent_id, reg.json()["data"]["agentToken"]) as agent:
        agent.heartbeat()
    assert _service(admin, svc["id"])["status"] == "HEALTHY"


def test_enable_after_disable_gives_online(paused: tuple[InProcessServer, AdminClient]) -> None:
    srv, owner = paused
    quiet = register(srv.url, owner.create_token(), unique("quiet"), online=False)
    silent = register(srv.url, owner.create_token(), unique("silent"))
    srv.clock.advance(THRESHOLD + 0.5)  # silent past the threshold; the sweep does not run
    for agent in (quiet, silent):
        path = f"{A}/agents/{agent.agent_id}"
        assert owner.data("POST", f"{path}/disable", json={})["status"] == "DISABLED"
        assert owner.data("POST", f"{path}/enable", json={})["status"] == "ONLINE"
        assert _agent(owner, agent.agent_id)["status"] == "ONLINE"
        agent.close()


def test_an_agent_stays_online_until_the_sweep_and_its_service_reads_stale_between(
    paused: tuple[InProcessServer, AdminClient],
) -> None:
    srv, owner = paused
    agent, service_id = _with_service(srv, owner)
    assert _service(owner, service_id)["status"] == "HEALTHY"
    srv.clock.advance(THRESHOLD + 0.5)

    assert _agent(owner, agent.agent_id)["status"] == "ONLINE"
    online = owner.every(f"{A}/agents", status="ONLINE")
    assert agent.agent_id in {a["id"] for a in online}
    assert owner.every(f"{A}/agents", status="OFFLINE") == []
    svc = _service(owner, service_id)
    assert (svc["status"], svc["storedStatus"], svc["healthStatus"]) == ("STALE", "HEALTHY", "UP")
    assert {s["id"] for s in owner.every(f"{A}/capsule-services", status="STALE")} == {service_id}
    summary = owner.data("GET", f"{A}/dashboard/summary")
    assert summary["agentCounts"] == {"ONLINE": 1}
    assert summary["serviceCounts"] == {"STALE": 1}
    agent.close()


def _audit_actions() -> set[str]:
    where = contract_dir()
    assert where is not None
    listed = json.loads((where / "enums" / "audit-actions.json").read_text())["actions"]
    return {a["name"] for a in listed}


def test_the_sweep_stores_the_service_stale_and_audits_only_the_reference_actions(
    paused: tuple[InProcessServer, AdminClient],
) -> None:
    srv, owner = paused
    agent, service_id = _with_service(srv, owner)
    before = {e["id"] for e in owner.every(f"{A}/audit-events")}
    srv.clock.advance(THRESHOLD + 0.5)
    result = owner.data("POST", f"{A}/maintenance/run", json={})
    assert (result["offlineAgents"], result["offlineServices"]) == (1, 1)

    assert _agent(owner, agent.agent_id)["status"] == "OFFLINE"
    svc = _service(owner, service_id)
    assert (svc["status"], svc["storedStatus"], svc["healthStatus"]) == (
        "OFFLINE",
        "STALE",
        "UNKNOWN",
    )
    written = [e for e in owner.every(f"{A}/audit-events") if e["id"] not in before]
    actions = {e["action"] for e in written}
    assert {"system.agent.offline", "system.service.stale", "maintenance.run"} <= actions
    assert actions - {"maintenance.triggered"} == {
        "system.agent.offline",
        "system.service.stale",
        "maintenance.run",
    }, actions
    assert actions <= _audit_actions(), actions - _audit_actions()
    for e in written:
        if e["action"] != "maintenance.triggered":
            assert (e["actorType"], e["targetType"], e["targetId"]) == (
                "SYSTEM",
                "Workspace",
                "wks_default",
            ), e
    agent.close()


def test_the_scheduled_sweep_writes_only_the_reference_actions(make_server: ServerFactory) -> None:
    srv = make_server(
        OPSTAGE_AGENT_OFFLINE_THRESHOLD_SECONDS=str(THRESHOLD),
        OPSTAGE_MAINTENANCE_INTERVAL_SECONDS="1",
    )
    with AdminClient(srv.url) as owner:
        owner.login()
        agent, service_id = _with_service(srv, owner)
        before = {e["id"] for e in owner.every(f"{A}/audit-events")}
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if _service(owner, service_id)["storedStatus"] == "STALE":
                break
            time.sleep(0.3)
        ran: list[dict[str, Any]] = []
        while time.monotonic() < deadline and not ran:
            time.sleep(0.2)
            ran = owner.every(f"{A}/audit-events", action="maintenance.run")
        assert ran, "the sweep did not run"
        written = [e for e in owner.every(f"{A}/audit-events") if e["id"] not in before]
        actions = {e["action"] for e in written}
        assert actions == {"system.agent.offline", "system.service.stale", "maintenance.run"}
        agent.close()


def test_a_service_whose_agent_comes_back_reads_stale_until_its_next_report(
    paused: tuple[InProcessServer, AdminClient],
) -> None:
    srv, owner = paused
    agent, service_id = _with_service(srv, owner)
    srv.clock.advance(THRESHOLD + 0.5)
    owner.data("POST", f"{A}/maintenance/run", json={})
    assert _agent(owner, agent.agent_id)["status"] == "OFFLINE"

    agent.heartbeat()  # back, without a health report
    assert _agent(owner, agent.agent_id)["status"] == "ONLINE"
    svc = _service(owner, service_id)
    assert (svc["status"], svc["storedStatus"]) == ("STALE", "STALE")
    agent.poll()
    assert _service(owner, service_id)["status"] == "STALE"

    # Its next report: a heartbeat carrying health, as the reference's agents send it.
    agent.heartbeat({"status": "DEGRADED"})
    svc = _service(owner, service_id)
    assert (svc["status"], svc["storedStatus"], svc["healthStatus"]) == (
        "UNHEALTHY",
        "UNHEALTHY",
        "DEGRADED",
    )
    # Or a service report.
    srv.clock.advance(THRESHOLD + 0.5)
    owner.data("POST", f"{A}/maintenance/run", json={})
    agent.heartbeat()
    assert _service(owner, service_id)["status"] == "STALE"
    (svc,) = agent.report(service(svc["code"], health={"status": "UP"}))["services"]
    assert svc["status"] == "HEALTHY"
    assert _service(owner, service_id)["status"] == "HEALTHY"
    agent.close()
