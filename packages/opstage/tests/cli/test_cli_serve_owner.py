"""``opstage serve`` outside dev mode with no user and no ``OPSTAGE_ADMIN_USERNAME``/``_PASSWORD``
cannot create the first owner. It used to migrate (creating the SQLite file) and then fail in
the application's start-up with a traceback and exit status 3; it refuses in one line, exit 1,
before it touches the data dir or the PostgreSQL database — as it does without a session
secret."""

from __future__ import annotations

from pathlib import Path

from ..support.cli import one_line_error
from .conftest import Run

SECRET = "s" * 40


def _has_schema(url: str) -> bool:
    from opstage.store.migrate import current

    return current(url) is not None


def test_serve_without_a_first_owner_refuses_before_touching_the_database(
    run: Run, env: dict[str, str]
) -> None:
    line = one_line_error(run("serve", "--port", "1", OPSTAGE_SESSION_SECRET=SECRET))
    assert "OPSTAGE_ADMIN_USERNAME" in line and "OPSTAGE_ADMIN_PASSWORD" in line, line
    if "DATABASE_URL" in env:  # PostgreSQL: an empty database stays empty
        assert not _has_schema(env["DATABASE_URL"])
    else:
        assert not (Path(env["OPSTAGE_DATA_DIR"]) / "opstage.db").exists()

    # A database without users (migrated, never served): the same refusal.
    assert run("migrate").returncode == 0
    line = one_line_error(run("serve", "--port", "1", OPSTAGE_SESSION_SECRET=SECRET))
    assert "No admin user exists" in line, line
