"""``opstage token …`` and ``opstage user …`` against a real database and a real server.

The CLI runs the API's use cases, so the API's rules must hold when it is the one calling:
the last active owner stays, a disabled user's or a re-roled user's sessions end at once.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path

import httpx
from opstage_testing.clients import AdminClient, register
from opstage_testing.inprocess import InProcessServer

from ..support.cli import json_out, one_line_error
from .conftest import Run


def test_token_create_list_revoke(run: Run, env: dict[str, str]) -> None:
    assert run("migrate").returncode == 0
    plain = run("token", "create", "--name", "plain")
    assert plain.returncode == 0, plain.stderr
    raw = plain.stdout.strip()
    assert re.fullmatch(r"opstage_reg_[\w-]+", raw)  # alone on stdout: $(opstage token create)
    plain_id = re.search(r"registration token (tok_\w+) \('plain'\) never expires", plain.stderr)
    assert plain_id, plain.stderr

    timed = json_out(run("token", "create", "--name", "timed", "--expires-in", "3600", "--json"))
    assert timed["id"].startswith("tok_") and timed["token"].startswith("opstage_reg_")
    assert timed["status"] == "ACTIVE" and timed["expiresAt"] is not None
    shown = run("token", "create", "--name", "shown", "--expires-in", "120")
    assert re.search(r"\('shown'\) expires 20\d\d-\d\d-\d\dT", shown.stderr), shown.stderr

    listed = json_out(run("token", "list", "--json"))
    assert [t["name"] for t in listed] == ["shown", "timed", "plain"]  # newest first
    assert all("token" not in t and "tokenHash" not in t for t in listed)
    assert raw not in run("token", "list").stdout
    table = run("token", "list").stdout.splitlines()
    assert table[0].split()[:3] == ["ID", "NAME", "STATUS"] and len(table) == 4

    revoked = json_out(run("token", "revoke", timed["id"], "--json"))
    assert revoked["status"] == "REVOKED" and revoked["revokedAt"]
    again = run("token", "revoke", timed["id"])
    assert again.returncode == 0  # already revoked: nothing to do, no error
    active = json_out(run("token", "list", "--status", "ACTIVE", "--json"))
    assert {t["name"] for t in active} == {"plain", "shown"}
    assert [t["name"] for t in json_out(run("token", "list", "--status", "REVOKED", "--json"))] == [
        "timed"
    ]
    missing = run("token", "revoke", "tok_nope")
    assert "REGISTRATION_TOKEN_NOT_FOUND" in one_line_error(missing)

    # The server sees it the same way: the revoked token no longer registers, the plain one
    # does, and once used it cannot be revoked from the CLI either.
    srv = InProcessServer(Path(env["OPSTAGE_DATA_DIR"]), env.get("DATABASE_URL"), {}).start()
    try:
        refused = httpx.post(
            srv.url + "/api/agents/register",
            json={"registrationToken": timed["token"], "agent": {"code": "cli-x", "name": "x"}},
        )
        assert refused.status_code in (401, 403), refused.text
        register(srv.url, raw, "cli-agent").close()
        used = run("token", "revoke", plain_id.group(1))
        assert "can no longer be revoked" in one_line_error(used)
        assert {t["status"] for t in json_out(run("token", "list", "--json"))} == {
            "ACTIVE",
            "USED",
            "REVOKED",
        }
        with AdminClient(srv.url) as owner:
            owner.login()
            actions = [
                (e["action"], e["actorType"], e["actorId"][:4])
                for e in owner.every("/api/admin/audit-events", action="registration_token.revoked")
            ]
        assert actions == [("registration_token.revoked", "SYSTEM", "cli:")]
    finally:
        srv.stop()


def test_user_commands_keep_the_api_rules(run: Run, env: dict[str, str]) -> None:
    srv = InProcessServer(Path(env["OPSTAGE_DATA_DIR"]), env.get("DATABASE_URL"), {}).start()
    try:
        _user_commands(run, srv)
    finally:
        srv.stop()


def _user_commands(run: Run, srv: InProcessServer) -> None:
    # The server created its bootstrap owner "admin"; it is the only owner.
    password = "cli-user-" + secrets.token_hex(6)
    made = json_out(
        run(
            "user",
            "create",
            "ops1",
            "--role",
            "operator",
            "--password-stdin",
            "--json",
            stdin=password,
        )
    )
    assert (made["username"], made["role"], made["status"]) == ("ops1", "operator", "ACTIVE")
    assert "passwordHash" not in made and "password_hash" not in made
    short = run("user", "create", "tiny", "--password-stdin", stdin="short")
    assert "12 characters" in one_line_error(short)
    assert "USER_ALREADY_EXISTS" in one_line_error(
        run("user", "create", "ops1", "--password-stdin", stdin=password)
    )
    users = json_out(run("user", "list", "--json"))
    assert [u["username"] for u in users] == ["admin", "ops1"]
    assert [u["username"] for u in json_out(run("user", "list", "--role", "owner", "--json"))] == [
        "admin"
    ]

    # Last-owner guard, as in the API.
    assert "LAST_OWNER_REQUIRED" in one_line_error(run("user", "disable", "admin"))
    assert "LAST_OWNER_REQUIRED" in one_line_error(run("user", "set-role", "admin", "viewer"))
    assert "USER_NOT_FOUND" in one_line_error(run("user", "disable", "nobody"))
    bad_role = run("user", "set-role", "ops1", "king")
    assert bad_role.returncode == 2

    with AdminClient(srv.url) as ops:
        ops.login("ops1", password)
        assert ops.get("/api/admin/auth/me").status_code == 200
        changed = json_out(run("user", "set-role", "ops1", "viewer", "--json"))
        assert changed["role"] == "viewer"
        assert ops.get("/api/admin/auth/me").status_code == 401  # its session ended
        ops.login("ops1", password)
        assert ops.get("/api/admin/auth/me").json()["data"]["user"]["role"] == "viewer"

        disabled = run("user", "disable", "ops1")
        assert disabled.returncode == 0 and "sessions have ended" in disabled.stdout
        assert ops.get("/api/admin/auth/me").status_code == 401
        login = httpx.post(
            srv.url + "/api/admin/auth/login", json={"username": "ops1", "password": password}
        )
        assert login.status_code in (401, 403)
        assert json_out(run("user", "enable", "ops1", "--json"))["status"] == "ACTIVE"

        new_password = "cli-reset-" + secrets.token_hex(6)
        ops.login("ops1", password)
        reset = run("user", "reset-password", "ops1", "--password-stdin", stdin=new_password)
        assert reset.returncode == 0, reset.stderr
        assert ops.get("/api/admin/auth/me").status_code == 401
        old = httpx.post(
            srv.url + "/api/admin/auth/login", json={"username": "ops1", "password": password}
        )
        assert old.status_code == 401
        ops.login("ops1", new_password)

    # A second owner may now demote the first; then the second is the last one.
    run("user", "create", "boss", "--role", "owner", "--password-stdin", stdin=password)
    assert json_out(run("user", "set-role", "admin", "operator", "--json"))["role"] == "operator"
    assert "LAST_OWNER_REQUIRED" in one_line_error(run("user", "disable", "boss"))

    with AdminClient(srv.url) as owner:
        owner.login("boss", password)
        trail = owner.every("/api/admin/audit-events", action="user.updated")
    assert len(trail) == 4 and all(e["actorId"].startswith("cli:") for e in trail)
    assert password not in str(trail) and new_password not in str(trail)
