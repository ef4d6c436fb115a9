"""Answers that existing CE users and their agents compare with the reference server's.

Each test pins one place where the reference server (CE v0.4, ``apps/opstage-backend``) and this
server used to answer differently on the wire; docs/compatibility.md lists the differences that
remain on purpose.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from opstage_testing.clients import AdminClient, AgentClient, action, register, service
from opstage_testing.server import ServerProcess

from ..conftest import ServerFactory, unique
from ..support.sql import audit_row, insert_audit

A = "/api/admin"
REFERENCE_WORKSPACE = {
    "id": "wks_default",
    "code": "default",
    "name": "Default Workspace",
    "status": "ACTIVE",
}


@pytest.fixture
def fresh(make_server: ServerFactory) -> Iterator[tuple[ServerProcess, AdminClient]]:
    srv = make_server(OPSTAGE_MAINTENANCE_INTERVAL_SECONDS="0")
    with AdminClient(srv.url) as owner:
        yield srv, owner.login()


def test_dashboard_and_metrics_carry_the_reference_workspace(admin: AdminClient) -> None:
    assert admin.data("GET", f"{A}/dashboard/summary")["workspace"] == REFERENCE_WORKSPACE
    assert admin.data("GET", f"{A}/metrics")["workspace"] == REFERENCE_WORKSPACE


def _fail_commands(srv: ServerProcess, owner: AdminClient, codes: list[str | None]) -> None:
    agent = register(srv.url, owner.create_token(), unique("err"))
    svc = agent.report(service(unique("svc"), action("work")))["services"][0]
    for code in codes:
        owner.data("POST", f"{A}/capsule-services/{svc['id']}/actions/work", json={"payload": {}})
        (claimed,) = agent.poll(limit=1)
        outcome: dict[str, Any] = {"success": code is None}
        if code is not None:
            outcome["error"] = {"code": code, "message": "no"}
        assert agent.result(claimed["id"], **outcome).status_code == 200
    agent.close()


def test_metrics_name_the_error_list_top_command_errors(
    fresh: tuple[ServerProcess, AdminClient],
) -> None:
    srv, owner = fresh
    assert owner.data("GET", f"{A}/metrics")["topCommandErrors"] == []
    codes = ["DISK_FULL", "OOPS", "DISK_FULL", None, "E3", "E4", "E5", "E6", "E6"]
    _fail_commands(srv, owner, codes)
    m = owner.data("GET", f"{A}/metrics")
    # The reference's shape: [{code, count}], most frequent first, at most five.
    top = m["topCommandErrors"]
    assert top[:2] == [{"code": "DISK_FULL", "count": 2}, {"code": "E6", "count": 2}]
    assert len(top) == 5
    assert {e["code"] for e in top[2:]} <= {"OOPS", "E3", "E4", "E5"}
    assert all(e["count"] == 1 for e in top[2:])
    assert m["operational"]["staleOnlineAgents"] == 0


def test_a_used_registration_token_cannot_be_deleted(admin: AdminClient, server: Any) -> None:
    created = admin.data("POST", f"{A}/registration-tokens", json={"name": unique("t")})
    agent = register(server.url, created["rawToken"], unique("used"))
    r = admin.delete(f"{A}/registration-tokens/{created['id']}")
    assert r.status_code == 409, r.text
    assert r.json()["error"]["code"] == "REGISTRATION_TOKEN_NOT_DELETABLE"
    tokens = admin.every(f"{A}/registration-tokens")
    assert [t["status"] for t in tokens if t["id"] == created["id"]] == ["USED"]
    # A revoked one still can be (the reference allows expired or revoked).
    spare = admin.data("POST", f"{A}/registration-tokens", json={"name": unique("t")})
    admin.data("POST", f"{A}/registration-tokens/{spare['id']}/revoke")
    assert admin.delete(f"{A}/registration-tokens/{spare['id']}").status_code == 200
    agent.close()


def test_configs_are_listed_sorted_by_key(admin: AdminClient, new_agent: Any) -> None:
    agent: AgentClient = new_agent()
    keys = ["zeta", "Alpha", "mid.key", "alpha", "beta"]
    configs = [{"key": k, "label": k, "type": "string", "valuePreview": "v"} for k in keys]
    svc = agent.report(service(unique("cfg"), configs=configs))["services"][0]
    detail = admin.data("GET", f"{A}/capsule-services/{svc['id']}")
    assert [c["key"] for c in detail["configs"]] == sorted(keys)


def test_audit_bounds_compare_at_the_precision_the_api_shows(
    fresh: tuple[ServerProcess, AdminClient],
) -> None:
    srv, owner = fresh
    marker = unique("bound")
    # Microseconds the API does not show: .123456 is shown as .123.
    at = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
    insert_audit(srv, [audit_row(at, action=marker)])
    (row,) = owner.data("GET", f"{A}/audit-events", params={"action": marker})
    shown = row["createdAt"]
    assert shown == "2026-03-01T12:00:00.123Z"
    for params in ({"to": shown}, {"from": shown}, {"from": shown, "to": shown}):
        got = owner.data("GET", f"{A}/audit-events", params={"action": marker, **params})
        assert [e["id"] for e in got] == [row["id"]], params
    # The neighbouring milliseconds still exclude it.
    for params in ({"to": "2026-03-01T12:00:00.122Z"}, {"from": "2026-03-01T12:00:00.124Z"}):
        got = owner.data("GET", f"{A}/audit-events", params={"action": marker, **params})
        assert got == [], params
    exported = owner.get(
        f"{A}/audit-events/export", params={"format": "json", "action": marker, "to": shown}
    )
    assert [e["id"] for e in exported.json()["data"]] == [row["id"]]


def test_user_updated_metadata_holds_role_and_status(admin: AdminClient) -> None:
    username, _ = admin.create_user("viewer")
    (user,) = [u for u in admin.every(f"{A}/users") if u["username"] == username]
    admin.data("PATCH", f"{A}/users/{user['id']}", json={"role": "operator"})
    (row, *_) = admin.data(
        "GET", f"{A}/audit-events", params={"action": "user.updated", "targetId": user["id"]}
    )
    assert row["metadata"]["role"] == "operator"
    assert row["metadata"]["status"] == "ACTIVE"
    admin.data("PATCH", f"{A}/users/{user['id']}", json={"status": "DISABLED"})
    (row, *_) = admin.data(
        "GET", f"{A}/audit-events", params={"action": "user.updated", "targetId": user["id"]}
    )
    assert {k: row["metadata"][k] for k in ("role", "status")} == {
        "role": "operator",
        "status": "DISABLED",
    }


def test_patch_maintenance_settings_with_an_empty_object_answers_the_settings(
    admin: AdminClient,
) -> None:
    before = admin.data("GET", f"{A}/settings/maintenance")
    r = admin.patch(f"{A}/settings/maintenance", json={})
    assert r.status_code == 200, r.text
    assert r.json()["data"] == before
