"""Bootstrap, fail-closed secrets, the session cookie, CSRF and login throttling."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

import httpx
from opstage_testing.cli import run_cli
from opstage_testing.clients import AdminClient
from opstage_testing.server import ADMIN_PASSWORD, ADMIN_USERNAME, ServerProcess


def _serve_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPSTAGE_")}
    env.pop("DATABASE_URL", None)
    env.update(OPSTAGE_DATA_DIR=str(tmp_path), **extra)
    return env


def test_short_session_secret_refuses_to_start(tmp_path: Path) -> None:
    env = _serve_env(
        tmp_path,
        OPSTAGE_SESSION_SECRET="too-short",
        OPSTAGE_ADMIN_USERNAME="admin",
        OPSTAGE_ADMIN_PASSWORD="a-long-enough-password",
    )
    out = run_cli(["serve", "--port", "1"], env)
    assert out.returncode != 0
    assert "OPSTAGE_SESSION_SECRET" in out.stderr
    assert "Traceback" not in out.stderr


def test_dev_mode_generates_password_once_and_persists_secret(
    tmp_path: Path, database_factory: Any
) -> None:
    srv = ServerProcess(tmp_path / "dev", database_factory(tmp_path / "dev"), {})
    srv.env = {"OPSTAGE_DEV_MODE": "true", "OPSTAGE_SESSION_SECRET": ""}
    srv.environment = lambda: {  # type: ignore[method-assign]
        k: v
        for k, v in ServerProcess.environment(srv).items()
        if k not in ("OPSTAGE_ADMIN_PASSWORD", "OPSTAGE_SESSION_SECRET")
    }
    srv.start()
    try:
        printed = re.search(r"password: (\S+)", srv.log())
        assert printed, srv.log()
        password = printed.group(1)
        with AdminClient(srv.url) as c:
            c.login(ADMIN_USERNAME, password)
            cookie = c.cookies.get("opstage_session")
        assert (srv.data_dir / ".session-secret").exists()
        srv.stop()
        srv.start()
        assert srv.log().count("password:") == 0, "the generated password was shown twice"
        # The persisted secret keeps the session valid across the restart.
        r = httpx.get(srv.url + "/api/admin/auth/me", cookies={"opstage_session": cookie})
        assert r.status_code == 200, r.text
    finally:
        srv.stop()


def test_session_cookie_attributes(server: ServerProcess) -> None:
    r = httpx.post(
        server.url + "/api/admin/auth/login",
        json={"username": ADMIN_USERNAME, "password": ADMIN_PASSWORD},
    )
    assert r.status_code == 200
    header = r.headers["set-cookie"]
    assert header.startswith("opstage_session=")
    lowered = header.lower()
    assert "httponly" in lowered
    assert "samesite=lax" in lowered
    assert "path=/" in lowered
    assert "max-age=" in lowered
    data = r.json()["data"]
    assert data["user"]["role"] == "owner"
    assert data["csrfToken"]


def test_csrf_required_and_rotated(admin: AdminClient) -> None:
    no_header = httpx.post(
        str(admin.base_url) + "/api/admin/registration-tokens",
        json={},
        cookies=admin.cookies,
    )
    assert no_header.status_code == 403
    assert no_header.json()["error"]["code"] == "CSRF_INVALID"
    old = admin.csrf
    new = admin.data("GET", "/api/admin/auth/csrf")["csrfToken"]
    assert new != old
    stale = admin.post("/api/admin/registration-tokens", json={}, headers={"X-CSRF-Token": old})
    assert stale.status_code == 403
    admin.csrf = new
    assert admin.post("/api/admin/registration-tokens", json={}).status_code == 200


def test_wrong_password_is_audited_and_throttled(make_server: Any) -> None:
    srv = make_server(OPSTAGE_LOGIN_MAX_FAILURES="3")
    bad = {"username": ADMIN_USERNAME, "password": "wrong-password"}
    codes = []
    for _ in range(5):
        r = httpx.post(srv.url + "/api/admin/auth/login", json=bad)
        codes.append((r.status_code, r.json()["error"]["code"]))
    assert codes[0] == (401, "LOGIN_FAILED")
    assert (429, "RATE_LIMITED") in codes, codes
    throttled = httpx.post(srv.url + "/api/admin/auth/login", json=bad)
    assert throttled.status_code == 429
    assert int(throttled.headers["retry-after"]) >= 1
    # Even the right password waits out the delay: no oracle while throttled.
    right = {"username": ADMIN_USERNAME, "password": ADMIN_PASSWORD}
    assert httpx.post(srv.url + "/api/admin/auth/login", json=right).status_code == 429
    time.sleep(int(throttled.headers["retry-after"]) + 0.2)
    with AdminClient(srv.url) as c:
        c.login()
        failed = c.data("GET", "/api/admin/audit-events", params={"action": "session.login.failed"})
    assert len(failed) >= 5
    assert all(e["result"] == "FAILURE" for e in failed)
    assert "wrong-password" not in str(failed)


def test_unknown_user_and_wrong_password_look_the_same(make_server: Any) -> None:
    srv = make_server()
    a = httpx.post(
        srv.url + "/api/admin/auth/login", json={"username": "nobody", "password": "whatever"}
    )
    b = httpx.post(
        srv.url + "/api/admin/auth/login", json={"username": ADMIN_USERNAME, "password": "x"}
    )
    assert a.status_code == b.status_code == 401
    assert a.json() == b.json()
