"""Issue 15, A4: secrets do not stay in the database, nor in its backups.

- An operator's payload secrets reach the agent as typed, and are erased from the ``commands``
  row once the agent has them (or when the command ends without it): read directly from the
  database and from a backup (``POST /api/admin/backup/sqlite``, ``opstage backup``; PostgreSQL:
  ``pg_dump``), they are gone.
- Raw ``opstage_agent_…``/``opstage_reg_…`` tokens in any free text an agent or an operator
  sends are masked on the way in: no table holds one.
- A count under a token-named key in audit metadata is shown as the number it is.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx
import pytest
from opstage.domain.ids import new_token
from opstage_testing.cli import run_cli
from opstage_testing.clients import AdminClient, AgentClient, action, register, service
from opstage_testing.fixtures import DatabaseFactory
from opstage_testing.server import ServerProcess

from ..conftest import unique

REDACTED = "[REDACTED]"


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory,
    database_factory: DatabaseFactory,
    topic_engine_env: dict[str, str],
) -> Iterator[ServerProcess]:
    """A server process of this module's own, never the shared in-process one: these tests read
    the live database file with plain file I/O, and closing any descriptor of a file drops every
    POSIX lock the process holds on it, SQLite's included (ADR 0013). In the server's own
    process that left its connections failing with ``disk I/O error``."""
    data_dir = tmp_path_factory.mktemp("scrubbing-server")
    srv = ServerProcess(data_dir, database_factory(data_dir, migrated=True), dict(topic_engine_env))
    yield srv.start()
    srv.stop()


SCHEMA = {
    "type": "object",
    "properties": {
        "dbPassword": {"type": "string"},  # secret by its name
        "pin": {"type": "string", "writeOnly": True},  # secret by its declaration
        "nested": {
            "type": "object",
            "properties": {"passphrase": {"type": "string", "format": "password"}},
        },
        "note": {"type": "string"},
        "retries": {"type": "integer"},
        "apiKey": {"type": "string"},
    },
}


def _secrets() -> dict[str, str]:
    return {k: f"{k}-S3CRET-{unique('v')}" for k in ("dbPassword", "pin", "passphrase", "apiKey")}


def _payload(s: dict[str, str]) -> dict[str, Any]:
    return {
        "dbPassword": s["dbPassword"],
        "pin": s["pin"],
        "nested": {"passphrase": s["passphrase"]},
        "note": "kept as typed",
        "retries": 3,
        # Last, where a shorter row rewritten in place would leave the old bytes behind.
        "apiKey": s["apiKey"],
    }


# Reading the database directly ------------------------------------------------------------


def _query(srv: ServerProcess, sql: str) -> list[tuple[Any, ...]]:
    if srv.database_url is None:
        conn = sqlite3.connect(srv.data_dir / "opstage.db", timeout=30)
        try:
            return [tuple(r) for r in conn.execute(sql).fetchall()]
        finally:
            conn.close()

    async def go() -> list[tuple[Any, ...]]:
        conn = await asyncpg.connect(srv.database_url)
        try:
            return [tuple(r) for r in await conn.fetch(sql)]
        finally:
            await conn.close()

    return asyncio.run(go())


def _stored_payload(srv: ServerProcess, command_id: str) -> str:
    (row,) = _query(srv, f"SELECT payload FROM commands WHERE id = '{command_id}'")
    return str(row[0])


def _database_text(srv: ServerProcess) -> str:
    """Every row of every table, as text."""
    if srv.database_url is None:
        conn = sqlite3.connect(srv.data_dir / "opstage.db", timeout=30)
        try:
            return "\n".join(conn.iterdump())
        finally:
            conn.close()
    tables = [
        r[0]
        for r in _query(srv, "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
    ]
    return "\n".join(
        str(r[0]) for t in tables for r in _query(srv, f'SELECT row_to_json(t)::text FROM "{t}" t')
    )


def _checkpoint(srv: ServerProcess) -> bytes:
    """SQLite: move the WAL into the database file and return the file's bytes."""
    if srv.database_url is None:
        conn = sqlite3.connect(srv.data_dir / "opstage.db", timeout=30)
        try:
            # While another connection checkpoints (the server's own WalCheckpointer, every
            # 0.1 s: store/checkpoint.py) SQLite answers (1, -1, -1) at once, copying nothing
            # and calling no busy handler; the raw secret then was not in the file. Again
            # until a checkpoint is whole.
            deadline = time.monotonic() + 30
            while (row := conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone())[0]:
                assert time.monotonic() < deadline, f"the checkpoint stays busy: {row}"
                time.sleep(0.05)
        finally:
            conn.close()
        return (srv.data_dir / "opstage.db").read_bytes()
    return b""


def _backup_bytes(srv: ServerProcess, admin: AdminClient, tmp_path: Path) -> list[bytes]:
    """Every kind of backup there is for this engine, as bytes."""
    if srv.database_url is not None:
        dump = subprocess.run(
            ["pg_dump", "--no-owner", srv.database_url],
            capture_output=True,
            timeout=120,
            check=True,
        )
        return [dump.stdout]
    r = admin.post("/api/admin/backup/sqlite")
    assert r.status_code == 200, r.text
    target = tmp_path / "cli-backup.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPSTAGE_")}
    env.pop("DATABASE_URL", None)
    env["OPSTAGE_DATA_DIR"] = str(srv.data_dir)
    out = run_cli(["backup", "--output", str(target)], env)
    assert out.returncode == 0, out.stderr
    return [r.content, target.read_bytes()]


def _service(admin: AdminClient, agent: AgentClient, **action_extra: Any) -> str:
    svc = agent.report(
        service(unique("svc"), action("connect", inputSchema=SCHEMA, **action_extra))
    )
    return str(svc["services"][0]["id"])


# Payload secrets --------------------------------------------------------------------------


def test_payload_secrets_are_erased_once_the_agent_has_them(
    server: ServerProcess, admin: AdminClient, new_agent: Any, tmp_path: Path
) -> None:
    agent = new_agent()
    service_id = _service(admin, agent)
    secrets = _secrets()
    cmd = admin.data(
        "POST",
        f"/api/admin/capsule-services/{service_id}/actions/connect",
        json={"payload": _payload(secrets)},
    )
    # The raw payload reaches the database file itself before the agent takes it.
    assert secrets["pin"].encode() in _checkpoint(server) or server.database_url
    (delivered,) = agent.poll()
    assert delivered["payload"] == _payload(secrets), "the agent gets what the operator typed"

    stored = _stored_payload(server, cmd["id"])
    assert not any(v in stored for v in secrets.values()), stored
    assert "kept as typed" in stored

    r = agent.result(cmd["id"], success=True, message="connected")
    assert r.status_code == 200, r.text
    detail = admin.data("GET", f"/api/admin/commands/{cmd['id']}")
    assert detail["payload"] == {
        "dbPassword": REDACTED,
        "pin": REDACTED,
        "nested": {"passphrase": REDACTED},
        "note": "kept as typed",
        "retries": 3,
        "apiKey": REDACTED,
    }
    stored = _stored_payload(server, cmd["id"])
    assert not any(v in stored for v in secrets.values()), stored
    live = _checkpoint(server)
    for backup in [live, *_backup_bytes(server, admin, tmp_path)]:
        for value in secrets.values():
            assert value.encode() not in backup

    # Sending it again would send "[REDACTED]": a retry is refused with the reason.
    r = agent.result(cmd["id"], success=True)  # (already completed)
    assert r.status_code == 409
    failed = admin.data(
        "POST",
        f"/api/admin/capsule-services/{service_id}/actions/connect",
        json={"payload": _payload(_secrets())},
    )
    agent.poll()
    agent.result(failed["id"], success=False, error={"code": "DOWN", "message": "down"})
    r = admin.post(f"/api/admin/commands/{failed['id']}/retry", json={})
    assert r.status_code == 409, r.text
    assert r.json()["error"]["code"] == "COMMAND_NOT_RETRYABLE"
    assert r.json()["error"]["details"] == {"reason": "PAYLOAD_SECRETS_ERASED"}


def test_payload_secrets_are_erased_when_the_command_ends_undelivered(
    server: ServerProcess, admin: AdminClient, new_agent: Any
) -> None:
    agent = new_agent()
    cancelled_secrets, expired_secrets = _secrets(), _secrets()
    service_id = _service(admin, agent, timeoutSeconds=1)
    path = f"/api/admin/capsule-services/{service_id}/actions/connect"
    cancelled = admin.data("POST", path, json={"payload": _payload(cancelled_secrets)})
    admin.data("POST", f"/api/admin/commands/{cancelled['id']}/cancel")
    expired = admin.data("POST", path, json={"payload": _payload(expired_secrets)})
    time.sleep(1.5)
    admin.data("POST", "/api/admin/maintenance/run")
    assert admin.data("GET", f"/api/admin/commands/{expired['id']}")["status"] == "EXPIRED"
    for command_id, values in (
        (cancelled["id"], cancelled_secrets),
        (expired["id"], expired_secrets),
    ):
        stored = _stored_payload(server, command_id)
        assert not any(v in stored for v in values.values()), stored
    assert agent.poll() == []


# Tokens in free text ------------------------------------------------------------------------


def test_raw_tokens_in_free_text_are_masked_on_the_way_in(
    server: ServerProcess, admin: AdminClient
) -> None:
    leaked = [new_token("opstage_agent_") for _ in range(3)] + [new_token("opstage_reg_")]
    a, b, c, reg = leaked

    def said(text: str) -> str:
        return f"see {text} here"

    # Operator-supplied free text.
    admin.data("POST", "/api/admin/registration-tokens", json={"name": said(reg)})
    user = admin.data(
        "POST",
        "/api/admin/users",
        json={
            "username": unique("u"),
            "password": "a-long-enough-password",
            "role": "viewer",
            "displayName": said(a),
        },
    )
    admin.data("PATCH", f"/api/admin/users/{user['id']}", json={"displayName": said(b)})

    # Agent-supplied free text.
    code = unique("leaky")
    body = {
        "registrationToken": admin.create_token(),
        "agent": {"code": code, "name": said(a)},
    }
    r = httpx.post(server.url + "/api/agents/register", json=body, headers={"User-Agent": said(c)})
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    agent = AgentClient(server.url, data["agentId"], data["agentToken"])
    with agent:
        reported = service(
            unique("svc"),
            action(
                "go",
                label=said(a),
                description=said(b),
                category=said(c),
                inputSchema={"type": "object", "description": said(reg)},
            ),
            description=said(a),
            version="1.0.0",
            configs=[
                {"key": "URL", "type": "string", "valuePreview": said(b), "defaultValue": said(c)},
                {"key": "NOTE", "type": "string", "label": said(reg), "source": said(a)},
            ],
            manifest={"kind": "CapsuleService", "code": "x", "about": said(b)},
            health={"status": "UP", "message": said(c), "details": {"why": said(a)}},
        )
        service_id = agent.report(reported)["services"][0]["id"]
        agent.heartbeat({"status": "DEGRADED", "message": said(reg)})
        cmd = admin.data(
            "POST", f"/api/admin/capsule-services/{service_id}/actions/go", json={"payload": {}}
        )
        agent.poll()
        r = agent.result(
            cmd["id"],
            success=False,
            message=said(a),
            data={"out": said(b)},
            error={"code": said(c), "message": said(reg)},
        )
        assert r.status_code == 200, r.text
    # Heartbeats are written in batches: wait until the last one is in.
    deadline = time.monotonic() + 10
    while admin.data("GET", f"/api/admin/capsule-services/{service_id}")["healthStatus"] not in (
        "DEGRADED",
        "UNHEALTHY",
    ):
        assert time.monotonic() < deadline, "the heartbeat's health never arrived"
        time.sleep(0.1)

    dump = _database_text(server)
    assert "opstage_agent_[REDACTED]" in dump, "the free text itself is kept"
    for token in leaked:
        assert token not in dump


def test_raw_tokens_in_bus_routes_and_events_are_masked_on_the_way_in(
    bus_server: ServerProcess, world: Any
) -> None:
    leaked = [new_token("opstage_agent_"), new_token("opstage_reg_")]
    a, reg = leaked
    route = world.route(
        name=f"route {a}",
        description=f"see {reg}",
        metadata={"owner": f"team {a}", "apiKey": "k-123"},
        action="note",
    )
    assert route["metadata"]["apiKey"] == REDACTED
    r = world.publish(payload={"text": f"hello {reg}"}, metadata={"by": a})
    assert r.status_code == 200, r.text
    dump = _database_text(bus_server)
    assert "k-123" not in dump
    for token in leaked:
        assert token not in dump


# Redaction by what a value is -------------------------------------------------------------


def test_counts_under_token_named_keys_are_shown_as_numbers(
    server: ServerProcess, admin: AdminClient, new_agent: Any
) -> None:
    result = admin.data("POST", "/api/admin/maintenance/run")
    (row, *_) = admin.data(
        "GET", "/api/admin/audit-events", params={"action": "maintenance.triggered"}
    )
    assert row["metadata"]["expiredRegistrationTokens"] == result["expiredRegistrationTokens"]
    assert isinstance(row["metadata"]["expiredRegistrationTokens"], int)

    agent = new_agent()
    (agent_row,) = [a for a in admin.every("/api/admin/agents") if a["id"] == agent.agent_id]
    register(server.url, admin.create_token(), agent_row["code"], online=False).close()
    (rotation,) = admin.data(
        "GET",
        "/api/admin/audit-events",
        params={"action": "agent.token.rotated", "targetId": agent.agent_id},
    )
    assert rotation["metadata"]["revokedTokens"] == 1
    assert rotation["metadata"]["registrationTokenId"].startswith("tok_")
