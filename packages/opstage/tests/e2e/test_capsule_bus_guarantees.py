"""Capsule Bus guarantees that need their own server: atomic fan-out across a crash, closing
the loop with outcome events, and OpHub agents that front many services."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import httpx
from opstage_testing.clients import AdminClient, AgentClient, action, register, service
from opstage_testing.server import ServerProcess

from ..conftest import unique


def test_fan_out_is_atomic_across_a_crash(tmp_path: Path, database_factory: Any) -> None:
    srv = ServerProcess(
        tmp_path,
        database_factory(tmp_path),
        {
            "OPSTAGE_CAPSULE_BUS_ENABLED": "true",
            "OPSTAGE_CAPSULE_BUS_INGEST_PER_MIN": "1000000",
            "OPSTAGE_ACCESS_LOG": "false",
        },
    ).start()
    try:
        ops = AdminClient(srv.url).login()
        src, dst = unique("src"), unique("dst")
        pub = register(srv.url, ops.create_token(), unique("pub"))
        pub.report(service(src))
        wrk = register(srv.url, ops.create_token(), unique("wrk"))
        wrk.report(service(dst, action("a"), action("b"), action("c")))
        for name in ("a", "b", "c"):
            ops.data(
                "POST",
                "/api/admin/bus/routes",
                json={
                    "name": name,
                    "status": "ENABLED",
                    "match": {"eventType": "burst"},
                    "target": {"serviceCode": dst, "actionName": name},
                },
            )
        acked: list[str] = []
        stop = threading.Event()

        def publish() -> None:
            with httpx.Client(
                base_url=srv.url, headers={"Authorization": f"Bearer {pub.token}"}
            ) as c:
                while not stop.is_set():
                    try:
                        r = c.post(
                            f"/api/agents/{pub.agent_id}/bus/events",
                            json={"eventType": "burst", "sourceServiceCode": src},
                        )
                    except httpx.HTTPError:
                        return
                    if r.status_code == 200:
                        acked.append(r.json()["data"]["eventId"])

        threads = [threading.Thread(target=publish) for _ in range(6)]
        for t in threads:
            t.start()
        # Kill once the burst is well under way (by count, not time: a loaded CI box is slow).
        deadline = time.monotonic() + 30
        while len(acked) < 25 and time.monotonic() < deadline:
            time.sleep(0.02)
        srv.kill()  # SIGKILL mid-burst: no shutdown hooks, transactions cut wherever they are
        stop.set()
        for t in threads:
            t.join(10)
        assert len(acked) >= 25, "the burst never got going"

        srv.start()
        ops = AdminClient(srv.url).login()
        events = {e["id"]: e for e in ops.every("/api/admin/bus/events")}
        commands = [c for c in ops.every("/api/admin/commands") if c["busEventId"]]
        per_event: dict[str, int] = {}
        for c in commands:
            assert c["busEventId"] in events, "a command exists without its event"
            per_event[c["busEventId"]] = per_event.get(c["busEventId"], 0) + 1
        for event_id in acked:
            assert event_id in events, "an acknowledged event was lost"
        for event_id, event in events.items():
            assert event["routeCount"] == 3
            assert per_event.get(event_id) == 3, f"partial fan-out for {event_id}"
    finally:
        srv.stop()


def test_outcome_events_close_the_loop_and_depth_ends_it(
    tmp_path: Path, database_factory: Any
) -> None:
    srv = ServerProcess(
        tmp_path,
        database_factory(tmp_path),
        {"OPSTAGE_CAPSULE_BUS_ENABLED": "true", "OPSTAGE_CAPSULE_BUS_OUTCOME_EVENTS": "true"},
    ).start()
    try:
        with AdminClient(srv.url) as ops:
            ops.login()
            src, dst = unique("src"), unique("dst")
            pub = register(srv.url, ops.create_token(), unique("pub"))
            pub.report(service(src))
            wrk = register(srv.url, ops.create_token(), unique("wrk"))
            wrk.report(service(dst, action("work"), action("cleanup")))
            for event_type, target in (("job.requested", "work"), ("command.failed", "cleanup")):
                ops.data(
                    "POST",
                    "/api/admin/bus/routes",
                    json={
                        "name": target,
                        "status": "ENABLED",
                        "match": {"eventType": event_type},
                        "target": {"serviceCode": dst, "actionName": target},
                    },
                )
            original = pub.post(
                f"/api/agents/{pub.agent_id}/bus/events",
                json={"eventType": "job.requested", "sourceServiceCode": src},
            ).json()["data"]
            (work,) = wrk.poll()
            wrk.result(work["id"], success=False, error={"code": "BOOM", "message": "x"})
            (cleanup,) = wrk.poll()
            assert cleanup["actionName"] == "cleanup"
            assert cleanup["payload"]["payload"]["commandId"] == work["id"]
            outcome = cleanup["payload"]["busEvent"]
            assert outcome["causationId"] == original["eventId"]
            # The cleanup fails too, but its outcome would be depth 2 > 1: the loop ends.
            wrk.result(cleanup["id"], success=False, error={"code": "BOOM", "message": "x"})
            assert wrk.poll() == []
            types = [e["eventType"] for e in ops.data("GET", "/api/admin/bus/events")]
            assert types.count("command.failed") == 1
            pub.close()
            wrk.close()
    finally:
        srv.stop()


def test_ophub_agent_fronts_many_services(server: ServerProcess, admin: AdminClient) -> None:
    body = {
        "registrationToken": admin.create_token(),
        "agent": {"code": unique("hub"), "name": "hub", "mode": "ophub"},
    }
    r = httpx.post(server.url + "/api/agents/register", json=body)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    hub = AgentClient(server.url, data["agentId"], data["agentToken"])
    hub.heartbeat()
    codes = [unique("adapter") for _ in range(3)]
    reported = hub.report(*(service(c, action("sync")) for c in codes))["services"]
    assert {s["code"] for s in reported} == set(codes)
    target = reported[1]
    cmd = admin.data(
        "POST", f"/api/admin/capsule-services/{target['id']}/actions/sync", json={"payload": {}}
    )
    (polled,) = hub.poll()
    assert polled["id"] == cmd["id"]
    assert polled["serviceId"] == target["id"]
    agent = admin.data("GET", f"/api/admin/agents/{hub.agent_id}")
    assert agent["mode"] == "ophub"
    hub.close()
