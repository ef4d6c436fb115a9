"""The ``opstage`` command, run as a user runs it: arguments, environment variables, stdin."""

from __future__ import annotations

import json
import re
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import click
import httpx
import pytest
from opstage.cli.main import cli
from opstage_testing.clients import AdminClient, register
from opstage_testing.inprocess import InProcessServer

from ..conftest import ENGINE
from ..support.cli import one_line_error
from .conftest import Run


def _one_line_error(out: subprocess.CompletedProcess[str]) -> str:
    return one_line_error(out)


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield prefix
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from _commands(command, (*prefix, name))
        else:
            yield (*prefix, name)


EXPECTED = {
    ("serve",),
    ("migrate",),
    ("config", "show"),
    ("config", "docs"),
    ("admin", "create-user"),
    ("admin", "reset-password"),
    ("admin", "list-users"),
    ("token", "create"),
    ("token", "list"),
    ("token", "revoke"),
    ("user", "list"),
    ("user", "create"),
    ("user", "disable"),
    ("user", "enable"),
    ("user", "set-role"),
    ("user", "reset-password"),
    ("audit", "export"),
    ("audit", "prune"),
    ("demo",),
    ("backup",),
    ("restore",),
    ("version",),
}


def test_help_everywhere(run: Run) -> None:
    paths = list(_commands(cli))
    assert set(paths) >= EXPECTED, EXPECTED - set(paths)
    for path in paths:
        out = run(*path, "--help")
        assert out.returncode == 0, (path, out.stderr)
        assert out.stdout.startswith("Usage: opstage"), (path, out.stdout)
        assert out.stderr == "", (path, out.stderr)


def test_version(run: Run) -> None:
    from opstage import __version__

    assert run("version").stdout.strip() == __version__
    assert run("--version").stdout.strip() == __version__


def test_config_show_masks_secrets(run: Run) -> None:
    secret = "s" * 8 + secrets.token_hex(16)
    admin_pw = "admin-" + secrets.token_hex(8)
    db_pw = "dbpw" + secrets.token_hex(6)
    out = run(
        "config",
        "show",
        "--json",
        OPSTAGE_SESSION_SECRET=secret,
        OPSTAGE_ADMIN_PASSWORD=admin_pw,
        DATABASE_URL=f"postgresql://opstage:{db_pw}@db.example:5432/opstage",
        OPSTAGE_AUDIT_RETENTION_DAYS="12",
    )
    assert out.returncode == 0, out.stderr
    for raw in (secret, admin_pw, db_pw):
        assert raw not in out.stdout
    shown = json.loads(out.stdout)
    assert shown["OPSTAGE_SESSION_SECRET"] == {"value": "********", "source": "env"}
    assert shown["DATABASE_URL"] == {
        "value": "postgresql://opstage:***@db.example:5432/opstage",
        "source": "env",
    }
    assert shown["OPSTAGE_AUDIT_RETENTION_DAYS"] == {"value": 12, "source": "env"}


def test_errors_are_one_line_unless_debug(run: Run) -> None:
    line = _one_line_error(run("config", "show", OPSTAGE_PORT="eighty"))
    assert "OPSTAGE_PORT" in line
    line = _one_line_error(run("admin", "list-users", DATABASE_URL="mysql://x/y"))
    assert "unsupported database URL" in line
    debug = run("--debug", "config", "show", OPSTAGE_PORT="eighty")
    assert debug.returncode != 0
    assert "Traceback" in debug.stderr
    usage = run("no-such-command")
    assert usage.returncode == 2 and "Traceback" not in usage.stderr


def test_admin_commands_and_token_create(run: Run, env: dict[str, str], tmp_path: Path) -> None:
    password = "cli-owner-" + secrets.token_hex(6)
    before = run(
        "admin", "create-user", "root", "--role", "owner", "--password-stdin", stdin=password
    )
    assert "opstage migrate" in _one_line_error(before)
    migrated = run("migrate")
    assert migrated.returncode == 0, migrated.stderr

    created = run(
        "admin", "create-user", "root", "--role", "owner", "--password-stdin", stdin=password + "\n"
    )
    assert created.returncode == 0, created.stderr
    assert re.search(r"created owner root \(usr_\w+\)", created.stdout)
    dup = run("admin", "create-user", "root", "--password-stdin", stdin=password)
    assert "USER_ALREADY_EXISTS" in _one_line_error(dup)
    weak = run("admin", "create-user", "weak", "--password-stdin", stdin="short")
    assert "12 characters" in _one_line_error(weak)
    run("admin", "create-user", "watcher", "--password-stdin", stdin="watcher-pass-123")

    listed = run("admin", "list-users", "--json")
    assert listed.returncode == 0, listed.stderr
    users = json.loads(listed.stdout)
    assert [(u["username"], u["role"]) for u in users] == [("root", "owner"), ("watcher", "viewer")]
    table = run("admin", "list-users", "--role", "owner").stdout.splitlines()
    assert table[0].split()[:3] == ["USERNAME", "ROLE", "STATUS"]
    assert [line.split()[0] for line in table[1:]] == ["root"]

    new_password = "cli-reset-" + secrets.token_hex(6)
    reset = run("admin", "reset-password", "root", "--password-stdin", stdin=new_password)
    assert reset.returncode == 0, reset.stderr
    missing = run("admin", "reset-password", "nobody", "--password-stdin", stdin=new_password)
    assert "USER_NOT_FOUND" in _one_line_error(missing)

    token = run("token", "create", "--name", "from the cli")
    assert token.returncode == 0, token.stderr
    raw = token.stdout.strip()
    assert re.fullmatch(r"opstage_reg_[A-Za-z0-9_\-]+", raw), token.stdout
    assert re.search(r"registration token tok_\w+ .* never expires", token.stderr), token.stderr
    assert "Traceback" not in run("token", "create", "--expires-in", "5").stderr

    # A server on the same database: the CLI's users and token work, and the CLI was audited.
    srv = InProcessServer(Path(env["OPSTAGE_DATA_DIR"]), env.get("DATABASE_URL"), {}).start()
    try:
        old = httpx.post(
            srv.url + "/api/admin/auth/login", json={"username": "root", "password": password}
        )
        assert old.status_code == 401
        with AdminClient(srv.url) as owner:
            owner.login("root", new_password)
            agent = register(srv.url, raw, "cli-agent")
            agent.close()
            trail = owner.data("GET", "/api/admin/audit-events", params={"pageSize": 100})
            by_action = {e["action"]: e for e in trail}
            for action in ("user.created", "user.password.reset", "registration_token.created"):
                assert by_action[action]["actorType"] == "SYSTEM", action
                assert by_action[action]["actorId"].startswith("cli:"), action
            assert password not in str(trail) and new_password not in str(trail)
    finally:
        srv.stop()


def test_migrate_subcommands(run: Run) -> None:
    assert run("migrate", "current").stdout.strip() == "base (empty)"
    up = run("migrate", "up")
    assert up.returncode == 0 and up.stdout.startswith("database at "), up.stderr
    head = up.stdout.split()[-1]
    assert run("migrate", "current").stdout.strip() == head
    assert run("migrate").returncode == 0  # already at head: nothing to do, no error


@pytest.mark.sqlite_only
def test_backup_and_restore(run: Run, env: dict[str, str], tmp_path: Path) -> None:
    run("migrate")
    run(
        "admin",
        "create-user",
        "keeper",
        "--role",
        "owner",
        "--password-stdin",
        stdin="keeper-pass-1234",
    )
    made = run("backup")
    assert made.returncode == 0, made.stderr
    path = Path(made.stdout.strip())
    assert path.parent == Path(env["OPSTAGE_DATA_DIR"]) / "backups"
    assert path.exists() and "sha256" in made.stderr
    chosen = run("backup", "--output", str(tmp_path / "chosen.db"))
    assert chosen.stdout.strip() == str(tmp_path / "chosen.db")
    assert "already exists" in _one_line_error(
        run("backup", "--output", str(tmp_path / "chosen.db"))
    )

    fresh = {"OPSTAGE_DATA_DIR": str(tmp_path / "fresh")}
    restored = run("restore", str(path), **fresh)
    assert restored.returncode == 0, restored.stderr
    listed = run("admin", "list-users", "--json", **fresh)
    assert [u["username"] for u in json.loads(listed.stdout)] == ["keeper"]

    refused = run("restore", str(path), **fresh)
    assert "--force" in _one_line_error(refused)
    forced = run("restore", "--force", str(tmp_path / "chosen.db"), **fresh)
    assert forced.returncode == 0, forced.stderr
    kept = list((tmp_path / "fresh").glob("opstage.db.pre-restore-*"))
    assert len(kept) == 1, "the replaced database is kept"

    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all" * 100)
    assert "not a SQLite database" in _one_line_error(run("restore", str(junk), **fresh))
    assert run("restore", str(tmp_path / "absent.db")).returncode == 2  # click: no such file


@pytest.mark.skipif(ENGINE != "postgres", reason="the PostgreSQL answer")
def test_backup_and_restore_on_postgres_name_the_right_tools(run: Run, tmp_path: Path) -> None:
    assert "pg_dump" in _one_line_error(run("backup"))
    dummy = tmp_path / "x.db"
    dummy.write_bytes(b"x")
    assert "pg_restore" in _one_line_error(run("restore", str(dummy)))
