"""Admin users: password policy, filters, the last owner, sessions that end, and the audit trail."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from opstage_testing.clients import AdminClient
from opstage_testing.server import ADMIN_PASSWORD, ADMIN_USERNAME, ServerProcess

from ..conftest import unique

USERS = "/api/admin/users"


def _password() -> str:
    return "pw-" + secrets.token_hex(8)


def _create(admin: AdminClient, role: str, **extra: Any) -> tuple[dict[str, Any], str]:
    password = extra.pop("password", None) or _password()
    body = {"username": unique(role), "password": password, "role": role, **extra}
    return admin.data("POST", USERS, json=body), password


def _login(url: str, username: str, password: str) -> AdminClient:
    return AdminClient(url).login(username, password)


@contextmanager
def _session(url: str, username: str, password: str) -> Iterator[AdminClient]:
    with AdminClient(url) as client:
        yield client.login(username, password)


def _me_status(client: AdminClient) -> int:
    return client.get("/api/admin/auth/me").status_code


def _error(r: httpx.Response) -> str:
    code: str = r.json()["error"]["code"]
    return code


def test_password_policy_on_create_and_reset(admin: AdminClient) -> None:
    short = admin.post(
        USERS, json={"username": unique("u"), "password": "elevenchars", "role": "viewer"}
    )
    assert short.status_code == 422, short.text
    assert _error(short) == "VALIDATION_FAILED"
    assert any(i["path"] == "password" for i in short.json()["error"]["details"]["issues"])

    name = unique("same-as-password")
    same = admin.post(USERS, json={"username": name, "password": name.upper(), "role": "viewer"})
    assert same.status_code == 422, same.text
    assert "username" in same.json()["error"]["message"]

    user, _ = _create(admin, "viewer")
    weak = admin.post(f"{USERS}/{user['id']}/reset-password", json={"password": "too-short"})
    assert weak.status_code == 422
    equal = admin.post(f"{USERS}/{user['id']}/reset-password", json={"password": user["username"]})
    assert equal.status_code == 422, equal.text
    dup = admin.post(
        USERS, json={"username": user["username"], "password": _password(), "role": "viewer"}
    )
    assert dup.status_code == 409 and _error(dup) == "USER_ALREADY_EXISTS"


def test_list_filters(admin: AdminClient) -> None:
    tag = secrets.token_hex(4)
    viewer, _ = _create(admin, "viewer", displayName=f"Filter {tag} viewer")
    operator, _ = _create(admin, "operator", displayName=f"Filter {tag} operator")
    admin.data("PATCH", f"{USERS}/{operator['id']}", json={"status": "DISABLED"})

    def ids(**params: Any) -> set[str]:
        return {u["id"] for u in admin.data("GET", USERS, params={"pageSize": 100, **params})}

    assert ids(q=tag) == {viewer["id"], operator["id"]}
    assert ids(q=tag, role="viewer") == {viewer["id"]}
    assert ids(q=tag, status="DISABLED") == {operator["id"]}
    assert ids(q=tag, role="operator", status="ACTIVE") == set()
    for bad in ({"q": ""}, {"role": "root"}, {"status": "GONE"}):
        r = admin.get(USERS, params=bad)
        assert r.status_code == 422, (bad, r.text)


def test_role_change_and_disable_end_the_users_sessions(
    server: ServerProcess, admin: AdminClient
) -> None:
    user, password = _create(admin, "viewer")
    with _session(server.url, user["username"], password) as c:
        assert _me_status(c) == 200
        admin.data("PATCH", f"{USERS}/{user['id']}", json={"role": "operator"})
        assert _me_status(c) == 401, "a session must not keep its old role"
    with _session(server.url, user["username"], password) as c:
        assert c.get("/api/admin/auth/me").json()["data"]["user"]["role"] == "operator"
        # A display-name change is not a reason to log anyone out.
        admin.data("PATCH", f"{USERS}/{user['id']}", json={"displayName": "Renamed"})
        assert _me_status(c) == 200
        admin.data("PATCH", f"{USERS}/{user['id']}", json={"status": "DISABLED"})
        assert _me_status(c) == 401
    refused = httpx.post(
        server.url + "/api/admin/auth/login",
        json={"username": user["username"], "password": password},
    )
    assert refused.status_code == 401
    admin.data("PATCH", f"{USERS}/{user['id']}", json={"status": "ACTIVE"})
    with _session(server.url, user["username"], password) as c:
        assert _me_status(c) == 200


def test_password_reset_ends_the_users_sessions(server: ServerProcess, admin: AdminClient) -> None:
    user, password = _create(admin, "operator")
    first = _login(server.url, user["username"], password)
    second = _login(server.url, user["username"], password)
    try:
        new_password = _password()
        admin.data("POST", f"{USERS}/{user['id']}/reset-password", json={"password": new_password})
        assert _me_status(first) == 401
        assert _me_status(second) == 401
    finally:
        first.close()
        second.close()
    old = httpx.post(
        server.url + "/api/admin/auth/login",
        json={"username": user["username"], "password": password},
    )
    assert old.status_code == 401
    with _session(server.url, user["username"], new_password) as c:
        assert _me_status(c) == 200


def test_changing_your_own_password_keeps_this_session_only(make_server: Any) -> None:
    srv = make_server()
    with (
        _session(srv.url, ADMIN_USERNAME, ADMIN_PASSWORD) as here,
        _session(srv.url, ADMIN_USERNAME, ADMIN_PASSWORD) as elsewhere,
    ):
        me = here.data("GET", "/api/admin/auth/me")["user"]
        new_password = _password()
        here.data("POST", f"{USERS}/{me['id']}/reset-password", json={"password": new_password})
        assert _me_status(here) == 200
        assert _me_status(elsewhere) == 401
    with _session(srv.url, ADMIN_USERNAME, new_password) as c:
        assert _me_status(c) == 200


def test_last_active_owner_cannot_be_demoted_disabled_or_deleted(make_server: Any) -> None:
    srv = make_server()
    with _session(srv.url, ADMIN_USERNAME, ADMIN_PASSWORD) as owner:
        me = owner.data("GET", "/api/admin/auth/me")["user"]
        for change in ({"role": "operator"}, {"role": "viewer"}, {"status": "DISABLED"}):
            r = owner.patch(f"{USERS}/{me['id']}", json=change)
            assert r.status_code == 409, (change, r.text)
            assert _error(r) == "LAST_OWNER_REQUIRED"
        r = owner.delete(f"{USERS}/{me['id']}")
        assert r.status_code == 409 and _error(r) == "LAST_OWNER_REQUIRED"

        # A disabled owner does not count: it cannot take over the last active one's place.
        second, second_pw = _create(owner, "owner")
        owner.data("PATCH", f"{USERS}/{second['id']}", json={"status": "DISABLED"})
        r = owner.patch(f"{USERS}/{me['id']}", json={"role": "viewer"})
        assert r.status_code == 409

        # With a second active owner, either may go — but not both.
        owner.data("PATCH", f"{USERS}/{second['id']}", json={"status": "ACTIVE"})
        with _session(srv.url, second["username"], second_pw) as other:
            other.data("PATCH", f"{USERS}/{me['id']}", json={"role": "operator"})
            assert _me_status(owner) == 401  # demoted: its session ended
            r = other.delete(f"{USERS}/{second['id']}")
            assert r.status_code == 409 and _error(r) == "LAST_OWNER_REQUIRED"
            remaining = other.data("GET", USERS, params={"role": "owner", "status": "ACTIVE"})
            assert [u["id"] for u in remaining] == [second["id"]]


def test_two_owners_demoting_each_other_at_once_leave_one_owner(
    make_server_process: Any,
) -> None:
    """Without a lock, both demotions could commit under PostgreSQL's READ COMMITTED."""
    # A process: twenty password hashes and two racing clients must not share the GIL with
    # the server, or the race is decided by the interpreter's scheduler (ADR 0013).
    srv = make_server_process()
    for _ in range(10):
        with _session(srv.url, ADMIN_USERNAME, ADMIN_PASSWORD) as keeper:
            keeper_id = keeper.data("GET", "/api/admin/auth/me")["user"]["id"]
            a, a_pw = _create(keeper, "owner")
            b, b_pw = _create(keeper, "owner")
        with (
            _session(srv.url, a["username"], a_pw) as ca,
            _session(srv.url, b["username"], b_pw) as cb,
        ):
            # Leave exactly two active owners: a and b.
            for u in ca.data("GET", USERS, params={"role": "owner", "pageSize": 100}):
                if u["id"] not in (a["id"], b["id"]):
                    ca.data("PATCH", f"{USERS}/{u['id']}", json={"role": "operator"})
            barrier = threading.Barrier(2)
            statuses: dict[str, int] = {}

            def demote(
                client: AdminClient,
                target: str,
                key: str,
                barrier: threading.Barrier = barrier,
                statuses: dict[str, int] = statuses,
            ) -> None:
                barrier.wait()
                r = client.patch(f"{USERS}/{target}", json={"role": "viewer"})
                statuses[key] = r.status_code

            threads = [
                threading.Thread(target=demote, args=(ca, b["id"], "a")),
                threading.Thread(target=demote, args=(cb, a["id"], "b")),
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
            # One wins; the other is refused (409), or finds its session already ended (401)
            # when it is checked after the winner's demotion committed.
            assert sorted(statuses.values()) in ([200, 401], [200, 409]), statuses
            survivor = ca if statuses["a"] == 200 else cb
            owners = survivor.data("GET", USERS, params={"role": "owner", "status": "ACTIVE"})
            assert len(owners) == 1, (statuses, owners)
            # Hand ownership back to the keeper for the next round.
            survivor.data("PATCH", f"{USERS}/{keeper_id}", json={"role": "owner"})


def test_delete_user_ends_sessions_and_is_audited(
    server: ServerProcess, admin: AdminClient
) -> None:
    user, password = _create(admin, "viewer")
    with _session(server.url, user["username"], password) as c:
        deleted = admin.data("DELETE", f"{USERS}/{user['id']}")
        assert deleted["id"] == user["id"]
        assert _me_status(c) == 401
    again = admin.delete(f"{USERS}/{user['id']}")
    assert again.status_code == 404 and _error(again) == "USER_NOT_FOUND"
    assert user["id"] not in {
        u["id"] for u in admin.data("GET", USERS, params={"q": user["username"]})
    }
    trail = admin.data("GET", "/api/admin/audit-events", params={"targetId": user["id"]})
    assert trail[0]["action"] == "user.deleted"


def test_only_owners_administer_users(server: ServerProcess, admin: AdminClient) -> None:
    target, _ = _create(admin, "viewer")
    for role in ("operator", "viewer"):
        caller, password = _create(admin, role)
        with _session(server.url, caller["username"], password) as c:
            for method, path, body in (
                ("GET", USERS, None),
                (
                    "POST",
                    USERS,
                    {"username": unique("x"), "password": _password(), "role": "viewer"},
                ),
                ("PATCH", f"{USERS}/{target['id']}", {"displayName": "x"}),
                ("POST", f"{USERS}/{target['id']}/reset-password", {"password": _password()}),
                ("DELETE", f"{USERS}/{target['id']}", None),
            ):
                r = c.request(method, path, json=body)
                assert r.status_code == 403, (role, method, path, r.text)
    assert admin.data("GET", USERS, params={"q": target["username"]})[0]["displayName"] is None


def test_every_user_change_is_audited_without_the_password(admin: AdminClient) -> None:
    me = admin.data("GET", "/api/admin/auth/me")["user"]
    user, password = _create(admin, "viewer")
    admin.data("PATCH", f"{USERS}/{user['id']}", json={"role": "operator", "displayName": "Op"})
    new_password = _password()
    admin.data("POST", f"{USERS}/{user['id']}/reset-password", json={"password": new_password})
    admin.data("DELETE", f"{USERS}/{user['id']}")
    trail = admin.data(
        "GET", "/api/admin/audit-events", params={"targetId": user["id"], "sort": "createdAt"}
    )
    assert [e["action"] for e in trail] == [
        "user.created",
        "user.updated",
        "user.password.reset",
        "user.deleted",
    ]
    assert all(e["actorType"] == "USER" and e["actorId"] == me["id"] for e in trail)
    assert all(e["targetType"] == "User" and e["result"] == "SUCCESS" for e in trail)
    changes = trail[1]["metadata"]["changes"]
    assert changes["role"] == {"from": "viewer", "to": "operator"}
    text = str(trail)
    assert password not in text and new_password not in text


@pytest.mark.parametrize("body", [{}, {"role": "root"}, {"status": "GONE"}])
def test_update_validation(admin: AdminClient, body: dict[str, Any]) -> None:
    user, _ = _create(admin, "viewer")
    r = admin.patch(f"{USERS}/{user['id']}", json=body)
    assert r.status_code == 422, r.text
