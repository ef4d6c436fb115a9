"""Issue 15, A1: one agent's failing write fails only its own requests, not its group commit's.

Heartbeats and polls of every agent are folded into one transaction (app/heartbeats.py). A
write the database refuses used to fail the whole batch: every agent that heartbeated in the
same few milliseconds got 500 too (1,560 of 1,828 heartbeats of six other agents in 4 s).

The failure here is a real one of the database, on the real write path: a trigger planted in
the server's own database refuses to store one agent's health message ("poison"), as a
constraint or a value the driver cannot bind would. Six other agents heartbeat concurrently
with it; every one of their heartbeats must succeed and be stored.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import httpx
from opstage_testing.clients import AdminClient, AgentClient, register, service
from opstage_testing.server import ServerProcess

from ..conftest import ServerFactory, unique
from ..support.sql import execute

POISON = "poison"
SECONDS = 3.0
HUGE = b"100000000000000000000000000000"

SQLITE_TRIGGER = [
    "CREATE TRIGGER opstage_test_poison BEFORE UPDATE ON capsule_services "
    f"WHEN NEW.health_message = '{POISON}' "
    "BEGIN SELECT RAISE(ABORT, 'planted failure: this health cannot be stored'); END"
]
POSTGRES_TRIGGER = [
    "CREATE FUNCTION opstage_test_poison() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "BEGIN RAISE EXCEPTION 'planted failure: this health cannot be stored'; END $$",
    "CREATE TRIGGER opstage_test_poison BEFORE UPDATE ON capsule_services FOR EACH ROW "
    f"WHEN (NEW.health_message = '{POISON}') EXECUTE FUNCTION opstage_test_poison()",
]


def _fleet(srv: ServerProcess, admin: AdminClient, n: int) -> list[AgentClient]:
    agents = []
    for _ in range(n):
        code = unique("fleet")
        agent = register(srv.url, admin.create_token(), code)
        agent.report(service(code + "-svc"))
        agents.append(agent)
    return agents


def _hammer(
    url: str,
    agents: list[AgentClient],
    body_of: Any,
    seconds: float,
    polling: frozenset[str] = frozenset(),
) -> dict[str, Counter[int]]:
    """Every agent heartbeats back to back for ``seconds`` (those in ``polling`` also poll
    for commands after each heartbeat); status counts per agent."""
    results: dict[str, Counter[int]] = {a.agent_id: Counter() for a in agents}
    bodies: dict[str, list[dict[str, Any]]] = {a.agent_id: [] for a in agents}
    stop = time.monotonic() + seconds

    def run(agent: AgentClient) -> None:
        with httpx.Client(base_url=url, timeout=30) as client:
            headers = {"Authorization": f"Bearer {agent.token}"}
            n = 0
            while time.monotonic() < stop:
                n += 1
                content = body_of(agent, n)
                r = client.post(
                    f"/api/agents/{agent.agent_id}/heartbeat",
                    content=content,
                    headers={**headers, "Content-Type": "application/json"},
                )
                results[agent.agent_id][r.status_code] += 1
                if r.status_code != 200:
                    bodies[agent.agent_id].append(r.json())
                if agent.agent_id in polling:  # a poll's contact rides the same group commit
                    r = client.get(f"/api/agents/{agent.agent_id}/commands", headers=headers)
                    results[agent.agent_id][r.status_code] += 1
                    if r.status_code != 200:
                        bodies[agent.agent_id].append(r.json())

    threads = [threading.Thread(target=run, args=(a,)) for a in agents]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 60)
    results["__bodies__"] = bodies  # type: ignore[assignment]
    return results


def _health(n: int, message: str) -> bytes:
    return (b'{"health":{"status":"UP","message":"%s","details":{"n":%d}}}') % (
        message.encode(),
        n,
    )


def test_a_write_the_database_refuses_fails_only_its_own_heartbeats(
    make_server_process: ServerFactory,
) -> None:
    srv = make_server_process(OPSTAGE_ACCESS_LOG="false")
    with AdminClient(srv.url) as admin:
        admin.login()
        agents = _fleet(srv, admin, 7)
        execute(srv, SQLITE_TRIGGER, POSTGRES_TRIGGER)
        culprit, others = agents[0], agents[1:]

        def body_of(agent: AgentClient, n: int) -> bytes:
            return _health(n, POISON if agent is culprit else f"beat {agent.agent_id} {n}")

        pollers = frozenset(a.agent_id for a in others[::2])
        results = _hammer(srv.url, agents, body_of, SECONDS, pollers)
        bodies = results.pop("__bodies__")
        for agent in others:
            counts = results[agent.agent_id]
            assert set(counts) == {200}, (counts, bodies[agent.agent_id][:3])
            assert counts[200] > 3
        refused = results[culprit.agent_id]
        assert refused[200] == 0 and sum(refused.values()) > 3, refused
        for body in bodies[culprit.agent_id]:
            assert body["success"] is False and body["error"]["code"], body
        # What the others sent last was stored; the culprit's health never was.
        for agent in others:
            svc = admin.data(
                "GET", "/api/admin/capsule-services", params={"agentId": agent.agent_id}
            )
            assert svc[0]["healthStatus"] == "UP"
            detail = admin.data("GET", f"/api/admin/capsule-services/{svc[0]['id']}")
            assert detail["health"]["message"].startswith(f"beat {agent.agent_id} ")
        # The culprit is still an agent in good standing: a heartbeat it can store succeeds.
        culprit.heartbeat({"status": "UP", "message": "fixed"})
    for agent in agents:
        agent.close()


def test_a_huge_integer_in_one_heartbeat_fails_none_of_the_others(
    make_server_process: ServerFactory,
) -> None:
    """The issue's own reproduction: ``{"n": 10**29}`` in one agent's health details."""
    srv = make_server_process(OPSTAGE_ACCESS_LOG="false")
    with AdminClient(srv.url) as admin:
        admin.login()
        agents = _fleet(srv, admin, 7)
    culprit, others = agents[0], agents[1:]

    def body_of(agent: AgentClient, n: int) -> bytes:
        if agent is culprit:
            return b'{"health":{"status":"UP","details":{"n":' + HUGE + b"}}}"
        return _health(n, "ok")

    results = _hammer(srv.url, agents, body_of, SECONDS)
    bodies = results.pop("__bodies__")
    for agent in others:
        assert set(results[agent.agent_id]) == {200}, bodies[agent.agent_id][:3]
    assert set(results[culprit.agent_id]) == {422}
    issue = bodies[culprit.agent_id][0]["error"]
    assert issue["code"] == "VALIDATION_FAILED"
    assert issue["details"]["issues"][0]["path"] == "health.details.n"
    for agent in agents:
        agent.close()
