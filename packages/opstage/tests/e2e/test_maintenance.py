"""Maintenance: runtime settings, run-now, each transition audited and published, retention."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from opstage.app.agents import AgentRegistration, register_agent
from opstage.app.context import Actor
from opstage.app.maintenance import run_maintenance
from opstage.app.services import report_services
from opstage.app.tokens import create_token
from opstage.domain.events import (
    AgentStatusChanged,
    AuditRecorded,
    RegistrationTokenChanged,
    ServiceStatusChanged,
)
from opstage.runtime import Runtime
from opstage_testing.clients import (
    AdminClient,
    AgentClient,
    action,
    register,
    service,
    service_report,
)
from opstage_testing.server import ServerProcess

from ..conftest import unique
from ..support.settings import migrated_settings
from ..support.sql import audit_row, insert_audit, scalar, set_timestamp

SETTINGS = "/api/admin/settings/maintenance"
RUN = "/api/admin/maintenance/run"
EVENTS = "/api/admin/audit-events"
PAUSED = {"OPSTAGE_MAINTENANCE_INTERVAL_SECONDS": "0"}


@contextmanager
def _owner(srv: ServerProcess) -> Iterator[AdminClient]:
    with AdminClient(srv.url) as client:
        yield client.login()


@contextmanager
def _as(srv: ServerProcess, owner: AdminClient, role: str) -> Iterator[AdminClient]:
    username, password = owner.create_user(role)
    with AdminClient(srv.url) as client:
        yield client.login(username, password)


def _audit(admin: AdminClient, **params: Any) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = admin.data("GET", EVENTS, params={"pageSize": 100, **params})
    return data


def _stored_status(admin: AdminClient, agent_id: str) -> str:
    status: str = admin.data("GET", f"/api/admin/agents/{agent_id}")["storedStatus"]
    return status


def test_settings_come_from_the_environment_and_persist_changes(make_server: Any) -> None:
    srv = make_server(
        OPSTAGE_AUDIT_RETENTION_DAYS="45",
        OPSTAGE_AGENT_OFFLINE_THRESHOLD_SECONDS="120",
        OPSTAGE_MAINTENANCE_INTERVAL_SECONDS="600",
    )
    with _owner(srv) as owner:
        got = owner.data("GET", SETTINGS)
        assert {k: got[k] for k in ("agentOfflineThresholdSeconds", "auditRetentionDays")} == {
            "agentOfflineThresholdSeconds": 120,
            "auditRetentionDays": 45,
        }
        assert got["maintenanceIntervalSeconds"] == 600
        assert set(got["sources"].values()) == {"environment"}

        changed = owner.data("PATCH", SETTINGS, json={"auditRetentionDays": 7})
        assert changed["auditRetentionDays"] == 7
        assert changed["sources"]["auditRetentionDays"] == "database"
        assert changed["agentOfflineThresholdSeconds"] == 120
        trail = _audit(owner, action="settings.maintenance.updated")
        assert trail[0]["metadata"]["changes"] == {"auditRetentionDays": {"from": 45, "to": 7}}
        assert trail[0]["actorType"] == "USER"

    srv.stop()
    srv.start()
    with _owner(srv) as owner:
        assert owner.data("GET", SETTINGS)["auditRetentionDays"] == 7, "lost across a restart"
        reset = owner.data("PATCH", SETTINGS, json={"auditRetentionDays": None})
        assert reset["auditRetentionDays"] == 45
        assert reset["sources"]["auditRetentionDays"] == "environment"


@pytest.mark.parametrize(
    "body",
    [
        [1],
        {"agentOfflineThresholdSeconds": 0},
        {"auditRetentionDays": -1},
        {"maintenanceIntervalSeconds": "60"},
        {"maintenanceIntervalSeconds": 1.5},
        {"auditRetentionDays": True},
        {"auditRetentionDays": 10, "retention": 10},
    ],
)
def test_settings_patch_validation(admin: AdminClient, body: Any) -> None:
    before = admin.data("GET", SETTINGS)
    r = admin.patch(SETTINGS, json=body)
    assert r.status_code == 422, (body, r.text)
    assert r.json()["error"]["code"] == "VALIDATION_FAILED"
    assert admin.data("GET", SETTINGS) == before


def test_settings_and_run_now_permissions(server: ServerProcess, admin: AdminClient) -> None:
    with _as(server, admin, "operator") as operator, _as(server, admin, "viewer") as viewer:
        assert viewer.get(SETTINGS).status_code == 200
        for client in (operator, viewer):
            r = client.patch(SETTINGS, json={"auditRetentionDays": 1})
            assert r.status_code == 403, r.text
            assert r.json()["error"]["details"]["required"] == "settings:write"
        assert viewer.post(RUN, json={}).status_code == 403
        ran = operator.post(RUN, json={})
        assert ran.status_code == 200, ran.text
        me = operator.data("GET", "/api/admin/auth/me")["user"]
    trail = _audit(admin, action="maintenance.triggered")
    mine = [e for e in trail if e["actorId"] == me["id"]]
    assert mine and mine[0]["metadata"]["ranAt"] == ran.json()["data"]["ranAt"]


def _agent_with_service(srv: ServerProcess, owner: AdminClient) -> tuple[AgentClient, str]:
    agent = register(srv.url, owner.create_token(), unique("mnt"))
    svc = agent.report(service(unique("svc"), action("slow", timeoutSeconds=600)))
    return agent, svc["services"][0]["id"]


def test_run_now_takes_silent_agents_and_their_services_offline(make_server: Any) -> None:
    srv = make_server(**PAUSED)
    clock = srv.fake_clock()
    with _owner(srv) as owner:
        agent, service_id = _agent_with_service(srv, owner)
        fresh, fresh_service = _agent_with_service(srv, owner)
        owner.data("PATCH", SETTINGS, json={"agentOfflineThresholdSeconds": 2})
        clock.advance(1.0)
        fresh.heartbeat()
        clock.advance(1.5)
        fresh.heartbeat()  # silent for < 2 s: stays ONLINE
        result = owner.data("POST", RUN, json={})
        assert result["offlineAgents"] == 1, result
        assert result["offlineServices"] == 1, result
        assert _stored_status(owner, agent.agent_id) == "OFFLINE"
        assert _stored_status(owner, fresh.agent_id) == "ONLINE"
        swept = owner.data("GET", f"/api/admin/capsule-services/{service_id}")
        # The reference's sweep: health UNKNOWN, stored STALE; it reads OFFLINE with its agent.
        assert (swept["status"], swept["storedStatus"], swept["healthStatus"]) == (
            "OFFLINE",
            "STALE",
            "UNKNOWN",
        )
        assert owner.data("GET", f"/api/admin/capsule-services/{fresh_service}")["status"] != (
            "OFFLINE"
        )

        # One row per kind of change, on the workspace, as the reference writes them.
        (went,) = _audit(owner, action="system.agent.offline")
        assert went["actorType"] == "SYSTEM"
        assert (went["targetType"], went["targetId"]) == ("Workspace", "wks_default")
        assert went["metadata"]["count"] == 1
        assert went["metadata"]["agentIds"] == [agent.agent_id]
        (stale,) = _audit(owner, action="system.service.stale")
        assert (stale["targetType"], stale["targetId"]) == ("Workspace", "wks_default")
        assert stale["metadata"]["count"] == 1
        assert stale["metadata"]["serviceIds"] == [service_id]
        (run,) = _audit(owner, action="maintenance.run")
        assert run["metadata"]["offlineAgents"] == 1 and run["metadata"]["offlineServices"] == 1

        # A second run changes nothing: each transition is recorded once.
        again = owner.data("POST", RUN, json={})
        assert again["offlineAgents"] == 0 and again["offlineServices"] == 0
        assert len(_audit(owner, action="system.service.stale")) == 1
        # The agent comes back on its next heartbeat; its service reads STALE until it reports.
        agent.heartbeat()
        assert _stored_status(owner, agent.agent_id) == "ONLINE"
        back = owner.data("GET", f"/api/admin/capsule-services/{service_id}")
        assert (back["status"], back["storedStatus"]) == ("STALE", "STALE")
        agent.heartbeat({"status": "UP"})
        assert owner.data("GET", f"/api/admin/capsule-services/{service_id}")["status"] == (
            "HEALTHY"
        )
        agent.close()
        fresh.close()


def test_run_now_expires_tokens_and_commands(make_server: Any) -> None:
    srv = make_server(**PAUSED)
    past = datetime.now(UTC) - timedelta(minutes=5)
    with _owner(srv) as owner:
        token = owner.data("POST", "/api/admin/registration-tokens", json={"expiresInSeconds": 60})
        assert set_timestamp(srv, "registration_tokens", "expires_at", token["id"], past) == 1
        agent, service_id = _agent_with_service(srv, owner)
        cmd = owner.data(
            "POST", f"/api/admin/capsule-services/{service_id}/actions/slow", json={"payload": {}}
        )
        assert set_timestamp(srv, "commands", "expires_at", cmd["id"], past) == 1
        result = owner.data("POST", RUN, json={})
        assert result["expiredRegistrationTokens"] == 1, result
        assert result["expiredCommands"] == 1, result
        stored = scalar(srv, f"SELECT status FROM registration_tokens WHERE id = '{token['id']}'")
        assert stored == "EXPIRED"
        assert owner.data("GET", f"/api/admin/commands/{cmd['id']}")["status"] == "EXPIRED"
        # The reference audits no token one by one (maintenance.run counts them) and the
        # commands as one row on the workspace.
        assert _audit(owner, action="registration_token.expired") == []
        (expired,) = _audit(owner, action="system.command.expired")
        assert (expired["targetType"], expired["targetId"]) == ("Workspace", "wks_default")
        assert expired["metadata"]["count"] == 1
        assert expired["metadata"]["commandIds"] == [cmd["id"]]
        agent.close()


def test_run_now_prunes_the_domain_event_log_too(make_server: Any) -> None:
    srv = make_server(**PAUSED, OPSTAGE_EVENT_LOG_RETENTION_HOURS="0.0005")  # 1.8 s
    with _owner(srv) as owner:
        owner.data("POST", "/api/admin/registration-tokens", json={})  # at least one event
        # A real wait, not the fake clock: the log's rows are stamped by the wall clock
        # (store/uow.py), so an advanced clock would age the first run's own rows too.
        time.sleep(2.5)
        assert owner.data("POST", RUN, json={})["prunedDomainEvents"] >= 1
        assert owner.data("POST", RUN, json={})["prunedDomainEvents"] == 0


def test_audit_retention_prunes_old_rows_in_batches(make_server: Any) -> None:
    srv = make_server(**PAUSED)
    now = datetime.now(UTC)
    old, recent = unique("old"), unique("recent")
    insert_audit(
        srv, [audit_row(now - timedelta(days=40, seconds=i), action=old) for i in range(2500)]
    )
    insert_audit(
        srv, [audit_row(now - timedelta(days=10, seconds=i), action=recent) for i in range(10)]
    )
    with _owner(srv) as owner:
        owner.data("PATCH", SETTINGS, json={"auditRetentionDays": 0})
        assert owner.data("POST", RUN, json={})["deletedAuditEvents"] == 0, "0 keeps forever"
        owner.data("PATCH", SETTINGS, json={"auditRetentionDays": 30})
        result = owner.data("POST", RUN, json={})
        assert result["deletedAuditEvents"] == 2500  # more than one batch
        count = owner.get(EVENTS, params={"action": old}).json()["pagination"]["total"]
        assert count == 0
        assert owner.get(EVENTS, params={"action": recent}).json()["pagination"]["total"] == 10


@pytest.mark.slow
@pytest.mark.sqlite_only  # PostgreSQL's row locks never make an insert wait for a delete
def test_retention_never_holds_the_write_lock_for_long(make_server: Any) -> None:
    srv = make_server(**PAUSED)
    now = datetime.now(UTC)
    action_name = unique("ancient")
    for start in range(0, 200_000, 20_000):
        insert_audit(
            srv,
            [
                audit_row(
                    now - timedelta(days=400, seconds=i), action=action_name, message="x" * 200
                )
                for i in range(start, start + 20_000)
            ],
        )
    with _owner(srv) as owner, _owner(srv) as writer:
        owner.data("PATCH", SETTINGS, json={"auditRetentionDays": 30})
        latencies: list[float] = []
        done = threading.Event()

        def write_while_pruning() -> None:
            while not done.is_set():
                started = time.perf_counter()
                writer.data("POST", "/api/admin/registration-tokens", json={"name": "during"})
                latencies.append(time.perf_counter() - started)

        thread = threading.Thread(target=write_while_pruning)
        thread.start()
        try:
            time.sleep(0.2)
            started = time.perf_counter()
            result = owner.data("POST", RUN, json={})
            pruning = time.perf_counter() - started
        finally:
            done.set()
            thread.join(30)
    assert result["deletedAuditEvents"] == 200_000
    assert len(latencies) >= 3
    # One DELETE of everything would stall every writer for the whole prune.
    assert max(latencies) < max(0.5, pruning / 4), (max(latencies), pruning)


def test_the_timer_follows_the_interval_set_at_runtime(make_server: Any) -> None:
    srv = make_server(**PAUSED)
    with _owner(srv) as owner:
        agent = register(srv.url, owner.create_token(), unique("timer"))
        owner.data("PATCH", SETTINGS, json={"agentOfflineThresholdSeconds": 1})
        time.sleep(2.5)
        assert _stored_status(owner, agent.agent_id) == "ONLINE", "the timer was paused"
        owner.data("PATCH", SETTINGS, json={"maintenanceIntervalSeconds": 1})
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _stored_status(owner, agent.agent_id) != "OFFLINE":
            time.sleep(0.3)
        assert _stored_status(owner, agent.agent_id) == "OFFLINE"
        # The sweep's own audit row commits after the transitions it made: wait for it too.
        runs = _audit(owner, action="maintenance.run")
        while not runs and time.monotonic() < deadline + 5:
            time.sleep(0.2)
            runs = _audit(owner, action="maintenance.run")
        assert runs and runs[0]["actorType"] == "SYSTEM"
        assert runs[0]["metadata"]["offlineAgents"] >= 1
        agent.close()


async def test_transitions_are_published_as_domain_events(
    tmp_path: Path, database_factory: Callable[[Path], str | None]
) -> None:
    url = database_factory(tmp_path) or f"sqlite:///{tmp_path / 'events.db'}"
    settings = await migrated_settings(tmp_path, url)
    runtime = await Runtime.start(settings)
    try:
        ctx = runtime.ctx
        system = Actor.system()
        _, raw = await create_token(ctx, system, name="t", expires_in_seconds=None, agent_code=None)
        registered = await register_agent(
            ctx, system, AgentRegistration(registration_token=raw, code="evt-agent")
        )
        agent_id = registered.agent_id
        [svc] = await report_services(
            ctx, Actor("AGENT", agent_id), agent_id, [service_report("evt-svc")]
        )
        expiring, _ = await create_token(
            ctx, system, name="soon", expires_in_seconds=60, agent_code=None
        )
        later = datetime.now(UTC) + timedelta(seconds=settings.agent_offline_threshold_seconds + 5)
        ctx.clock = lambda: later
        with ctx.bus.subscribe("test") as sub:
            await run_maintenance(ctx)
            events = []
            while (item := sub.try_recv()) is not None:
                events.append(item)
        assert AgentStatusChanged(agent_id, "PENDING", "OFFLINE") in events, events
        assert ServiceStatusChanged(svc["id"], agent_id, "HEALTHY", "STALE") in events, events
        assert RegistrationTokenChanged(expiring["id"], "EXPIRED") in events, events
        audited = {e.action for e in events if isinstance(e, AuditRecorded)}
        assert audited == {
            "system.agent.offline",
            "system.service.stale",
            "maintenance.run",
        }, audited
    finally:
        await runtime.stop()
