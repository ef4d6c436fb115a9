"""``GET /api/admin/events/stream``: live domain events over SSE, resumable from the durable log.

The client here is a plain httpx stream parsed by the rules of the SSE specification, so what
passes here is what a browser's ``EventSource`` sees.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from opstage_testing.clients import AdminClient, action, register, service
from opstage_testing.server import ServerProcess
from opstage_testing.sse import STREAM, Frame, kind_is, open_stream

from ..conftest import unique

ServerFactory = Callable[..., ServerProcess]


def assert_well_formed(frames: list[Frame], after: int = 0) -> None:
    last = after
    for f in frames:
        assert f.id is not None and int(f.id) == f.data["id"], f
        assert f.data["kind"] == f.event
        assert f.data["createdAt"].endswith("Z")
        assert int(f.id) > last, f"ids not strictly increasing at {f}"
        last = int(f.id)


def create_token(owner: AdminClient, name: str) -> str:
    token_id: str = owner.data("POST", "/api/admin/registration-tokens", json={"name": name})["id"]
    return token_id


def diagnostics_log(owner: AdminClient) -> dict[str, Any]:
    log: dict[str, Any] = owner.data("GET", "/api/admin/diagnostics/runtime")["eventLog"]
    return log


# --- access ------------------------------------------------------------------------------------


def test_stream_requires_a_session(server: ServerProcess) -> None:
    r = httpx.get(server.url + STREAM, timeout=10)
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "UNAUTHORIZED"
    r = httpx.get(server.url + STREAM, cookies={"opstage_session": "forged"}, timeout=10)
    assert r.status_code == 401


def test_a_viewer_may_follow_the_stream(server: ServerProcess, admin: AdminClient) -> None:
    username, password = admin.create_user("viewer")
    with AdminClient(server.url) as viewer:
        viewer.login(username, password)
        with open_stream(viewer) as sse:
            (ready,) = sse.until(lambda f: f.event == "ready")
            assert ready.id == str(ready.data["lastEventId"])
            assert sse.retry == 3000
            token_id = create_token(admin, "seen-by-viewer")
            sse.until(kind_is("registration_token.changed", tokenId=token_id))


def test_malformed_last_event_id_is_refused(admin: AdminClient) -> None:
    r = admin.get(STREAM, headers={"Last-Event-ID": "abc"})
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "VALIDATION_FAILED"


# --- live events -------------------------------------------------------------------------------


def test_live_events_cover_agents_commands_and_audit(
    server: ServerProcess, admin: AdminClient
) -> None:
    with open_stream(admin) as sse:
        (ready,) = sse.until(lambda f: f.event == "ready")
        start = ready.data["lastEventId"]
        assert ready.id == str(start)

        token_id = create_token(admin, "live")
        frames = sse.until(kind_is("registration_token.changed", tokenId=token_id))
        assert frames[-1].data["data"]["status"] == "ACTIVE"
        raw = admin.create_token(name="live-agent")
        agent = register(server.url, raw, unique("live"))
        frames += sse.until(kind_is("agent.status_changed", agentId=agent.agent_id))
        assert frames[-1].data["data"] == {
            "agentId": agent.agent_id,
            "fromStatus": "PENDING",
            "toStatus": "ONLINE",
        }
        svc = agent.report(service(unique("live-svc"), action("noop")))["services"][0]
        command = admin.data(
            "POST", f"/api/admin/capsule-services/{svc['id']}/actions/noop", json={"payload": {}}
        )
        frames += sse.until(kind_is("command.created", commandId=command["id"]))
        (claimed,) = agent.poll()
        frames += sse.until(
            kind_is("command.status_changed", commandId=command["id"], status="RUNNING")
        )
        assert agent.result(claimed["id"], success=True).status_code == 200
        frames += sse.until(
            kind_is("command.status_changed", commandId=command["id"], status="SUCCEEDED")
        )
        agent.close()

    events = sse.events(frames)
    assert_well_formed(events, after=start)
    audit_actions = {f.data["data"]["action"] for f in events if f.event == "audit.recorded"}
    assert {
        "registration_token.created",
        "agent.registered",
        "command.created",
        "command.dispatched",
        "command.completed",
    } <= audit_actions
    # The audit events the stream announced are the rows the audit API lists.
    audit_id = next(
        f.data["data"]["auditId"]
        for f in events
        if f.event == "audit.recorded" and f.data["data"]["action"] == "command.completed"
    )
    row = admin.data("GET", f"/api/admin/audit-events/{audit_id}")
    assert row["targetId"] == command["id"]


def test_kind_filter(server: ServerProcess, admin: AdminClient) -> None:
    agent = register(server.url, admin.create_token(name="filter"), unique("filter"))
    svc = agent.report(service(unique("filter-svc"), action("noop")))["services"][0]
    with open_stream(admin, kind=["command."]) as sse:
        sse.until(lambda f: f.event == "ready")
        create_token(admin, "filtered-out")  # audit + token events: not command.*
        command = admin.data(
            "POST", f"/api/admin/capsule-services/{svc['id']}/actions/noop", json={"payload": {}}
        )
        frames = sse.until(kind_is("command.created", commandId=command["id"]))
    events = sse.events(frames)
    assert events, frames
    assert {f.event.split(".")[0] for f in events} == {"command"}
    agent.close()


# --- resume ------------------------------------------------------------------------------------


def test_resume_with_last_event_id_across_a_restart(make_server: ServerFactory) -> None:
    srv = make_server()
    with AdminClient(srv.url) as owner:
        owner.login()
        with open_stream(owner) as sse:
            sse.until(lambda f: f.event == "ready")
            first = create_token(owner, "before-disconnect")
            seen = sse.until(kind_is("registration_token.changed", tokenId=first))[-1]
        resume_from = int(seen.id or 0)
        while_away = create_token(owner, "while-disconnected")

    srv.stop()
    srv.start()  # same data and session secret, new port

    with AdminClient(srv.url) as owner:
        owner.login()
        after_restart = create_token(owner, "after-restart")
        with open_stream(owner, last_event_id=resume_from) as sse:
            frames = sse.until(kind_is("registration_token.changed", tokenId=after_restart))
    assert frames[0].event == "ready"
    assert frames[0].id == str(resume_from)
    events = sse.events(frames)
    assert_well_formed(events, after=resume_from)
    # Nothing lost, nothing repeated: the ids continue exactly where the client stopped.
    assert [int(f.id or 0) for f in events] == list(
        range(resume_from + 1, resume_from + 1 + len(events))
    )
    tokens = [f.data["data"]["tokenId"] for f in events if f.event == "registration_token.changed"]
    assert tokens == [while_away, after_restart]
    assert first not in tokens
    logins = [
        f
        for f in events
        if f.event == "audit.recorded" and f.data["data"]["action"] == "session.login.succeeded"
    ]
    assert len(logins) == 1  # the login after the restart


def test_first_connect_may_resume_from_a_query_parameter(
    server: ServerProcess, admin: AdminClient
) -> None:
    with open_stream(admin) as sse:
        (ready,) = sse.until(lambda f: f.event == "ready")
    head = ready.data["lastEventId"]
    token_id = create_token(admin, "query-resume")
    # The header (sent by a reconnecting EventSource) wins over the query parameter.
    with open_stream(admin, lastEventId=head) as sse:
        frames = sse.until(kind_is("registration_token.changed", tokenId=token_id))
    assert frames[0].id == str(head)
    with open_stream(admin, last_event_id=int(frames[-1].id or 0), lastEventId=0) as sse:
        (again,) = sse.until(lambda f: f.event == "ready")
    assert again.data["lastEventId"] == int(frames[-1].id or 0)


def test_gap_when_the_history_asked_for_was_pruned(make_server: ServerFactory) -> None:
    srv = make_server(
        OPSTAGE_EVENT_LOG_RETENTION_HOURS="0.0005",  # 1.8 s
        OPSTAGE_MAINTENANCE_INTERVAL_SECONDS="1",
    )
    with AdminClient(srv.url) as owner:
        owner.login()
        first_id = diagnostics_log(owner)["lastId"]
        assert first_id >= 1
        deadline = time.monotonic() + 20
        while diagnostics_log(owner)["prunedThrough"] < first_id:
            assert time.monotonic() < deadline, diagnostics_log(owner)
            time.sleep(0.25)
        pruned = diagnostics_log(owner)["prunedThrough"]

        with open_stream(owner, last_event_id=0) as sse:
            gap, ready = sse.until(lambda f: f.event == "ready")
            assert gap.event == "gap"
            assert gap.data["requestedAfter"] == 0
            assert gap.data["reason"] == "pruned"
            resume = gap.data["resumeAfter"]
            assert resume >= pruned
            assert gap.id == str(resume)  # a reconnect after the gap does not repeat it
            assert ready.id == str(resume)
            token_id = create_token(owner, "after-gap")
            frames = sse.until(kind_is("registration_token.changed", tokenId=token_id))
            assert_well_formed(sse.events(frames), after=resume)

        # Resuming from the newest pruned id itself misses nothing: no gap.
        with open_stream(owner, last_event_id=pruned) as sse:
            (first,) = sse.until(lambda f: f.event in ("ready", "gap"))
            if first.event == "gap":  # only if the sweep pruned further in between
                assert first.data["requestedAfter"] == pruned
                assert diagnostics_log(owner)["prunedThrough"] > pruned

        # An id this log never handed out is a gap too (another database, a restored backup).
        with open_stream(owner, last_event_id=10**12) as sse:
            gap, _ready = sse.until(lambda f: f.event == "ready")
            assert gap.event == "gap" and gap.data["reason"] == "unknown"
            assert int(gap.id or 0) < 10**12


# --- keep-alive and session end ----------------------------------------------------------------


def test_keep_alive_comments_and_session_end(make_server: ServerFactory) -> None:
    srv = make_server(OPSTAGE_EVENT_STREAM_KEEPALIVE_SECONDS="0.5")
    with AdminClient(srv.url) as owner, AdminClient(srv.url) as other:
        owner.login()
        other.login()
        with open_stream(other) as sse:
            sse.until(lambda f: f.event == "ready")
            started = time.monotonic()
            comments = []
            for _ in range(3):
                comments += sse.until(lambda f: f.event == "comment", timeout=3)
            elapsed = time.monotonic() - started
            assert [f.text for f in comments] == ["keep-alive"] * 3
            assert 1.0 <= elapsed < 3.0, elapsed

            r = other.post("/api/admin/auth/logout", json={})
            assert r.status_code == 200, r.text
            tail = sse.until(lambda f: f.event == "session-ended", timeout=5)
            assert tail[-1].event == "session-ended"
            assert list(sse) == []  # and the server closed the stream
        # The owner's session is untouched.
        assert owner.get("/api/admin/auth/me").status_code == 200


# --- the log does not grow with heartbeats ----------------------------------------------------


@pytest.mark.parametrize("beats", [20])
def test_heartbeats_do_not_grow_the_event_log(make_server: ServerFactory, beats: int) -> None:
    srv = make_server()
    with AdminClient(srv.url) as owner:
        owner.login()
        agent = register(srv.url, owner.create_token(name="beats"), unique("beats"))
        before = diagnostics_log(owner)["lastId"]
        for _ in range(beats):
            agent.heartbeat()
            agent.poll()
        assert diagnostics_log(owner)["lastId"] == before
        owner.data("POST", f"/api/admin/agents/{agent.agent_id}/disable", json={})
        assert diagnostics_log(owner)["lastId"] > before  # a real change is logged
        agent.close()
