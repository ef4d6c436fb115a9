"""Issue 15, A2: an unexpected failure answers the 500 envelope with a requestId, and nothing else.

The error used to escape to uvicorn, which logged it a second time and closed the connection
(a keep-alive client's next request met a reset); on the agents' hot path a 5xx was neither
masked nor logged and carried no requestId. The failures here are real: a stored value the
server cannot read back (support/sql.py), a database locked by another process.
"""

from __future__ import annotations

import http.client
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from opstage_testing.clients import AdminClient, AgentClient, action, register, service
from opstage_testing.server import ServerProcess

from ..conftest import InProcessFactory, unique
from ..support.sql import corrupt_timestamp


@pytest.fixture
def srv(make_server: InProcessFactory) -> ServerProcess:
    return make_server()


@pytest.fixture
def admin_of(srv: ServerProcess) -> Iterator[AdminClient]:
    with AdminClient(srv.url) as c:
        yield c.login()


def _connection(srv: ServerProcess) -> http.client.HTTPConnection:
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
    conn.connect()
    return conn


def _exchange(
    conn: http.client.HTTPConnection, method: str, path: str, headers: dict[str, str]
) -> tuple[int, dict[str, str], Any]:
    conn.request(method, path, headers=headers)
    r = conn.getresponse()
    raw = r.read()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, json.loads(raw) if raw else None


def _assert_masked_500(status: int, headers: dict[str, str], body: Any) -> str:
    assert status == 500, body
    request_id = headers["x-request-id"]
    assert body == {
        "success": False,
        "error": {
            "code": "INTERNAL_ERROR",
            "message": "Internal server error.",
            "details": {"requestId": request_id},
        },
    }
    return request_id


def _log_records(srv: ServerProcess) -> list[dict[str, Any]]:
    out = []
    for line in srv.log().splitlines():
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
    return out


def _assert_logged_once(srv: ServerProcess, request_id: str) -> None:
    deadline = time.monotonic() + 5
    while True:
        records = _log_records(srv)
        errors = [r for r in records if r.get("level") == "error"]
        mine = [r for r in errors if request_id in r.get("msg", "")]
        if mine or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert len(mine) == 1, errors
    assert mine[0].get("exc"), "the traceback is in the log, not in the answer"
    # Nothing reached the ASGI server (it would log "Exception in ASGI application").
    assert not [r for r in errors if r.get("logger") == "uvicorn.error"], errors


def _cookie_headers(admin: AdminClient) -> dict[str, str]:
    cookie = "; ".join(f"{k}={v}" for k, v in admin.cookies.items())
    return {"Cookie": cookie, "X-CSRF-Token": admin.csrf or ""}


def test_an_unreadable_row_answers_500_and_keeps_the_connection(
    srv: ServerProcess, admin_of: AdminClient
) -> None:
    agent = register(srv.url, admin_of.create_token(), unique("broken"))
    corrupt_timestamp(srv, "agents", "created_at", agent.agent_id)
    conn = _connection(srv)
    sock = conn.sock
    headers = _cookie_headers(admin_of)
    for path in (f"/api/admin/agents/{agent.agent_id}", "/api/admin/agents"):
        request_id = _assert_masked_500(*_exchange(conn, "GET", path, headers))
        _assert_logged_once(srv, request_id)
        # The same connection answers the next request.
        status, _, body = _exchange(conn, "GET", "/api/system/health", {})
        assert status == 200 and body["success"] is True
        assert conn.sock is sock, "the server closed the connection"
    conn.close()
    agent.close()


def test_an_unreadable_command_fails_the_poll_with_a_request_id(
    srv: ServerProcess, admin_of: AdminClient
) -> None:
    code = unique("poller")
    agent = register(srv.url, admin_of.create_token(), code)
    svc = agent.report(service(code + "-svc", action("ping")))["services"][0]
    command = admin_of.data("POST", f"/api/admin/capsule-services/{svc['id']}/actions/ping")
    corrupt_timestamp(srv, "commands", "created_at", command["id"])
    conn = _connection(srv)
    sock = conn.sock
    auth = {"Authorization": f"Bearer {agent.token}"}
    poll = f"/api/agents/{agent.agent_id}/commands"
    request_id = _assert_masked_500(*_exchange(conn, "GET", poll, auth))
    _assert_logged_once(srv, request_id)
    status, _, _ = _exchange(conn, "POST", f"/api/agents/{agent.agent_id}/heartbeat", auth)
    assert status == 200 and conn.sock is sock
    conn.close()
    agent.close()


@pytest.mark.sqlite_only  # PostgreSQL waits for a lock without a timeout of ours
def test_a_busy_database_is_503_with_a_request_id_on_every_path(
    srv: ServerProcess, admin_of: AdminClient
) -> None:
    agent = register(srv.url, admin_of.create_token(), unique("locked"))
    hold = sqlite3.connect(srv.data_dir / "opstage.db", timeout=30, isolation_level=None)
    hold.execute("BEGIN EXCLUSIVE")
    answers: dict[str, Any] = {}

    def heartbeat(client: AgentClient) -> None:
        r = client.post(f"/api/agents/{client.agent_id}/heartbeat", json={})
        answers["heartbeat"] = r

    def create_token() -> None:
        answers["token"] = admin_of.post("/api/admin/registration-tokens", json={})

    threads = [
        threading.Thread(target=heartbeat, args=(agent,)),
        threading.Thread(target=create_token),
    ]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    finally:
        hold.execute("ROLLBACK")
        hold.close()
    for name, r in answers.items():
        assert r.status_code == 503, (name, r.text)
        error = r.json()["error"]
        assert error["code"] == "DATABASE_UNAVAILABLE", name
        assert error["details"] == {"requestId": r.headers["x-request-id"]}, name
        assert r.headers["retry-after"] == "1"
        logged = [
            rec
            for rec in _log_records(srv)
            if rec.get("level") == "error" and r.headers["x-request-id"] in rec.get("msg", "")
        ]
        assert len(logged) == 1, (name, logged)
    assert len(answers) == 2
    agent.heartbeat()  # and back to normal once the lock is gone
    agent.close()
