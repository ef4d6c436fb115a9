"""Footguns an operator hit on a fresh clone, each closed (issue 19, part A)."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import select
import sqlite3
import subprocess
import time
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import pytest
from opstage_testing.clients import AdminClient
from opstage_testing.inprocess import InProcessServer
from opstage_testing.server import ServerProcess, opstage_executable

from ..conftest import ENGINE
from ..support.cli import json_out, one_line_error
from .conftest import Run


def _tables(env: dict[str, str]) -> set[str]:
    """The tables in the test's database (SQLite file or PostgreSQL database)."""
    url = env.get("DATABASE_URL")
    if url is None:
        conn = sqlite3.connect(Path(env["OPSTAGE_DATA_DIR"]) / "opstage.db")
        try:
            rows = conn.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall()
        finally:
            conn.close()
        return {r[0] for r in rows}

    async def go() -> set[str]:
        conn = await asyncpg.connect(url)
        try:
            rows = await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
            )
        finally:
            await conn.close()
        return {r[0] for r in rows}

    return asyncio.run(go())


# ------------------------------------------------------------------------------ migrate down
def test_migrate_down_needs_a_target_and_a_yes_and_lists_what_it_drops(
    run: Run, env: dict[str, str]
) -> None:
    assert run("migrate").returncode == 0
    run("token", "create", "--name", "one row")
    before = _tables(env)
    assert "registration_tokens" in before

    bare = run("migrate", "down")
    assert bare.returncode == 2 and "Missing argument 'REVISION'" in bare.stderr
    assert _tables(env) == before, "a bare `migrate down` dropped something"

    unasked = run("migrate", "down", "base", stdin="")  # a script: no terminal, no --yes
    assert unasked.returncode == 2, unasked.stderr
    assert "--yes" in unasked.stderr
    assert "drop table registration_tokens (1 rows)" in unasked.stderr  # said before refusing
    assert "drop table audit_events" in unasked.stderr
    assert _tables(env) == before

    unknown = run("migrate", "down", "nope", "--yes")
    assert "unknown revision 'nope'" in one_line_error(unknown)

    one = json_out(run("migrate", "down", "0002", "--yes", "--json"))
    assert one["revision"] == "0002"
    # Newest first: 0003 is the last one undone, and drops its table.
    assert [u["revision"] for u in one["undone"]][-1] == "0003"
    undone = one["undone"][-1]
    assert undone["message"] == "domain event log"
    assert [t["name"] for t in undone["droppedTables"]] == ["domain_event_log"]
    assert undone["droppedTables"][0]["rows"] >= 1  # the token's domain event
    assert "domain_event_log" not in _tables(env)
    assert "registration_tokens" in _tables(env)

    gone = run("migrate", "down", "base", "--yes")
    assert gone.returncode == 0, gone.stderr
    assert "undo 0001 (initial schema)" in gone.stderr
    assert "registration_tokens" not in _tables(env)


def _pty_run(args: list[str], env: dict[str, str], answer: bytes) -> tuple[int, str]:
    """Run with a terminal on stdin/stdout/stderr, answer the first prompt with ``answer``."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [opstage_executable(), *args], env=env, stdin=slave, stdout=slave, stderr=slave
    )
    os.close(slave)
    seen = b""
    answered = False
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
        if not answered and b"[y/N]" in seen:
            os.write(master, answer)
            answered = True
        if proc.poll() is not None and not ready:
            break
    os.close(master)
    return proc.wait(30), seen.decode(errors="replace")


def test_migrate_down_on_a_terminal_asks_first(run: Run, env: dict[str, str]) -> None:
    assert run("migrate").returncode == 0
    before = _tables(env)
    code, screen = _pty_run(["migrate", "down", "base"], env, b"n\n")
    assert code == 1 and "Aborted" in screen, screen
    assert "drop table users" in screen
    assert _tables(env) == before
    code, screen = _pty_run(["migrate", "down", "base"], env, b"y\n")
    assert code == 0, screen
    assert "users" not in _tables(env)


# --------------------------------------------------------------------- restore under a server
@pytest.mark.sqlite_only
def test_restore_refuses_while_a_server_uses_the_database(
    run: Run, env: dict[str, str], tmp_path: Path
) -> None:
    data_dir = Path(env["OPSTAGE_DATA_DIR"])
    srv = ServerProcess(data_dir).start()
    try:
        made = run("backup", "-o", str(tmp_path / "b.db"))
        assert made.returncode == 0, made.stderr
        database = data_dir / "opstage.db"
        inode = database.stat().st_ino
        refused = run("restore", "--force", str(tmp_path / "b.db"))
        line = one_line_error(refused)
        assert "in use by a running Opstage process" in line and "stop the server" in line
        assert "restored" not in refused.stdout
        assert database.stat().st_ino == inode, "the live database was moved aside"
        assert not list(data_dir.glob("opstage.db.pre-restore-*"))
        with AdminClient(srv.url) as admin:  # and the server is none the worse
            admin.login()
            admin.create_token(name="after the refused restore")
    finally:
        srv.stop()
    forced = run("restore", "--force", str(tmp_path / "b.db"))
    assert forced.returncode == 0, forced.stderr
    assert len(list(data_dir.glob("opstage.db.pre-restore-*"))) == 1


@pytest.mark.sqlite_only
def test_a_server_does_not_start_while_a_restore_holds_the_database(
    run: Run, env: dict[str, str]
) -> None:
    from opstage.store.db_lock import exclusive

    assert run("migrate").returncode == 0
    data_dir = Path(env["OPSTAGE_DATA_DIR"])
    blocked = ServerProcess(data_dir)
    try:
        with exclusive(data_dir / "opstage.db"):  # what `opstage restore` holds while it works
            with pytest.raises(RuntimeError, match="is being restored"):
                blocked.start(timeout=20)
            busy = run("token", "create")
            assert "is being restored" in one_line_error(busy)
    finally:
        blocked.stop()  # only if it started after all
    InProcessServer(data_dir).start().stop()  # and once the restore is done, it does


# ------------------------------------------------------------------------- no database here
@pytest.mark.sqlite_only
def test_commands_name_the_missing_database_and_create_none(
    run: Run, env: dict[str, str], tmp_path: Path
) -> None:
    data_dir = Path(env["OPSTAGE_DATA_DIR"])
    expected = str((data_dir / "opstage.db").resolve())
    for args in (
        ("backup",),
        ("token", "create"),
        ("token", "list"),
        ("user", "list"),
        ("admin", "list-users"),
        ("audit", "prune", "--yes"),
        ("migrate", "down", "base", "--yes"),
    ):
        line = one_line_error(run(*args))
        assert f"no database at {expected}" in line, (args, line)
        assert "opstage migrate" in line
        assert not (data_dir / "opstage.db").exists(), args
        assert not (data_dir / "backups").exists(), args


@pytest.mark.skipif(ENGINE != "postgres", reason="an empty PostgreSQL database")
def test_commands_on_an_empty_postgres_database_say_so(run: Run, env: dict[str, str]) -> None:
    url = env["DATABASE_URL"]
    line = one_line_error(run("token", "create"))
    assert f"The database {url} has no Opstage schema yet" in line and "opstage migrate" in line
    # Named with its password masked (the test server trusts any password).
    with_password = url.replace("://postgres@", "://postgres:hunter2-secret@")
    line = one_line_error(run("user", "list", DATABASE_URL=with_password))
    assert "hunter2" not in line and "://postgres:***@" in line


# --------------------------------------------------------------------- backup -o a/folder/
@pytest.mark.sqlite_only
def test_backup_to_a_path_with_a_trailing_slash_makes_the_folder(run: Run, tmp_path: Path) -> None:
    assert run("migrate").returncode == 0
    folder = tmp_path / "mnt" / "backups"
    made = run("backup", "-o", f"{folder}/")
    assert made.returncode == 0, made.stderr
    assert folder.is_dir()
    written = Path(made.stdout.strip())
    assert written.parent == folder and written.name.startswith("opstage-")
    assert written.read_bytes()[:16] == b"SQLite format 3\x00"
    again = json_out(run("backup", "-o", f"{folder}/", "--json"))
    assert Path(again["path"]).parent == folder and again["path"] != str(written)
    as_file = tmp_path / "elsewhere" / "plain"  # no slash: a file of that name
    assert run("backup", "-o", str(as_file)).returncode == 0
    assert as_file.is_file()


# ---------------------------------------------------------- serve: validate, then touch data
def test_serve_without_a_session_secret_touches_nothing(run: Run, env: dict[str, str]) -> None:
    data_dir = Path(env["OPSTAGE_DATA_DIR"])
    out = run("serve", "--port", "1")
    line = one_line_error(out)
    assert "OPSTAGE_SESSION_SECRET is required" in line
    assert not (data_dir / "opstage.db").exists()
    if "DATABASE_URL" in env:
        assert "alembic_version" not in _tables(env)
    short = run("serve", "--port", "1", OPSTAGE_SESSION_SECRET="short")
    assert "at least 32 characters" in one_line_error(short)
    assert not (data_dir / "opstage.db").exists()


class _DefaultCookies(ServerProcess):
    """A server with OPSTAGE_COOKIE_SECURE unset, as an operator starts it."""

    def environment(self) -> dict[str, str]:
        out = super().environment()
        out.pop("OPSTAGE_COOKIE_SECURE", None)
        return out


def test_serve_warns_when_secure_cookies_meet_plain_http(
    env: dict[str, str], tmp_path: Path
) -> None:
    url = env.get("DATABASE_URL")
    warned = _DefaultCookies(tmp_path / "warned", url).start()
    warned.stop()
    lines = [json.loads(x) for x in warned.log().splitlines() if x.startswith("{")]
    warnings = [x for x in lines if x["level"] == "warning" and "Secure" in x["msg"]]
    assert len(warnings) == 1, warned.log()
    assert "OPSTAGE_COOKIE_SECURE=false" in warnings[0]["msg"]
    assert "plain HTTP" in warnings[0]["msg"]

    quiet = ServerProcess(tmp_path / "quiet", None).start()  # COOKIE_SECURE=false: no warning
    quiet.stop()
    assert "Secure" not in quiet.log()


def test_readme_lists_cookie_secure_and_the_postgres_install() -> None:
    readme = (Path(__file__).resolve().parents[4] / "README.md").read_text()
    assert "| `OPSTAGE_COOKIE_SECURE` |" in readme
    assert "apt-get install postgresql" in readme and "OPSTAGE_TEST_NO_INSTALL" in readme


# --------------------------------------------------------------------------------- config show
def test_config_show_names_variables_values_and_sources(run: Run, env: dict[str, str]) -> None:
    secret = "x" * 40
    shown = json_out(
        run(
            "config",
            "show",
            "--json",
            opstage_port="9090",  # the settings read names without regard to case
            OPSTAGE_SESSION_SECRET=secret,
        )
    )
    assert "capsule_bus_enabled" not in shown and "port" not in shown
    assert shown["OPSTAGE_PORT"] == {"value": 9090, "source": "env"}
    assert shown["OPSTAGE_CAPSULE_BUS_ENABLED"] == {"value": False, "source": "default"}
    assert shown["OPSTAGE_SESSION_SECRET"] == {"value": "********", "source": "env"}
    assert shown["OPSTAGE_DATA_DIR"]["source"] == "env"
    assert secret not in json.dumps(shown)
    table = run("config", "show", OPSTAGE_SESSION_SECRET=secret, OPSTAGE_PORT="9090")
    assert table.returncode == 0 and secret not in table.stdout
    header, *rows = table.stdout.splitlines()
    assert header.split() == ["VARIABLE", "VALUE", "SOURCE"]
    by_name = {r.split()[0]: r.split()[1:] for r in rows}
    assert by_name["OPSTAGE_PORT"] == ["9090", "env"]
    assert by_name["OPSTAGE_SESSION_SECRET"] == ["********", "env"]
    assert by_name["OPSTAGE_HOST"] == ["127.0.0.1", "default"]

    # Dev mode keeps a generated secret in a file under the data dir: that is its source.
    data_dir = Path(env["OPSTAGE_DATA_DIR"])
    data_dir.mkdir(parents=True, exist_ok=True)
    kept = data_dir / ".session-secret"
    kept.write_text("k" * 48 + "\n")
    dev = json_out(run("config", "show", "--json", OPSTAGE_DEV_MODE="true"))
    assert dev["OPSTAGE_SESSION_SECRET"] == {
        "value": "********",
        "source": "file",
        "file": str(kept),
    }
    assert "k" * 48 not in json.dumps(dev)


def test_make_setup_shows_progress(tmp_path: Path) -> None:
    """`make setup` on a fresh machine: pip's per-package lines, not --quiet for minutes."""
    root = Path(__file__).resolve().parents[4]
    planned = subprocess.run(
        ["make", "-n", "-C", str(root), "setup", f"VENV={tmp_path / 'venv'}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    installs = [line for line in planned.splitlines() if "pip install" in line]
    assert len(installs) == 2, planned
    assert all("--quiet" not in line and " -q" not in line for line in installs), installs
    assert "setup: installing opstage" in planned and "setup: done" in planned
