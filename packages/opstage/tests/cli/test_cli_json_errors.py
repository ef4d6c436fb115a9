"""With ``--json`` every failure is one ``{"error": {"code", "message"}}`` document on standard
output, as docs/operations.md says — usage errors and refused confirmations included — and its
code is a stable SCREAMING_SNAKE name (a Python class name is no contract); ``--json`` works
before the command too (``opstage --json token list``)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from opstage.store.db_lock import DatabaseLock

from ..support.cli import json_out, one_line_error
from .conftest import Run


def _error(out: subprocess.CompletedProcess[str]) -> dict[str, str]:
    body = json.loads(out.stdout)
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    error: dict[str, str] = body["error"]
    return error


def test_json_errors_have_stable_codes_and_cover_usage_errors(
    run: Run, env: dict[str, str]
) -> None:
    assert run("migrate").returncode == 0
    missing = run("token", "revoke", "tok_x", "--json")
    one_line_error(missing)
    error = _error(missing)
    assert error["code"] == "REGISTRATION_TOKEN_NOT_FOUND"
    assert "(REGISTRATION_TOKEN_NOT_FOUND)" not in error["message"]  # the code has its own field

    # A confirmation the script did not give, and a missing argument: click's exit 2 and its
    # message on stderr, and the JSON error a script reads.
    unconfirmed = run("audit", "prune", "--older-than-days", "1", "--json")
    assert unconfirmed.returncode == 2, unconfirmed
    assert "--yes" in unconfirmed.stderr
    error = _error(unconfirmed)
    assert error["code"] == "USAGE" and "--yes" in error["message"]
    no_revision = run("migrate", "down", "--json")
    assert no_revision.returncode == 2
    assert _error(no_revision)["code"] == "USAGE"

    # The option before the command means the same.
    assert isinstance(json_out(run("--json", "token", "list")), list)
    assert _error(run("--json", "token", "revoke", "tok_x"))["code"] == (
        "REGISTRATION_TOKEN_NOT_FOUND"
    )


def test_restore_under_a_running_process_is_database_in_use(
    run: Run, env: dict[str, str], tmp_path: Path
) -> None:
    if "DATABASE_URL" in env:
        pytest.skip("restore is SQLite's")
    assert run("migrate").returncode == 0
    backup = tmp_path / "b.db"
    assert run("backup", "-o", str(backup)).returncode == 0
    database = Path(env["OPSTAGE_DATA_DIR"]) / "opstage.db"
    held = DatabaseLock.shared(database)  # what `opstage serve` holds while it runs
    try:
        refused = run("restore", str(backup), "--force", "--json")
    finally:
        held.release()
    one_line_error(refused)
    assert _error(refused)["code"] == "DATABASE_IN_USE"
