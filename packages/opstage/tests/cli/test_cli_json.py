"""Every command takes ``--json``, and every failure exits non-zero (with ``--json``: JSON)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import click
from opstage.cli.main import cli

from ..support.cli import json_out, one_line_error
from .conftest import Run


def _leaves(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            out += _leaves(command, (*prefix, name))
            if command.invoke_without_command:
                out.append((*prefix, name))
        else:
            out.append((*prefix, name))
    return out


def test_every_command_has_json(run: Run) -> None:
    paths = _leaves(cli)
    assert len(paths) >= 25
    for path in paths:
        out = run(*path, "--help")
        assert out.returncode == 0, (path, out.stderr)
        assert "--json" in out.stdout, f"`opstage {' '.join(path)}` has no --json"


def _json_error(out: subprocess.CompletedProcess[str]) -> dict[str, str]:
    one_line_error(out)  # exit 1, one line on stderr
    body = json.loads(out.stdout)
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    error: dict[str, str] = body["error"]
    return error


def test_failures_exit_non_zero_with_a_json_error(
    run: Run, env: dict[str, str], tmp_path: Path
) -> None:
    missing = _json_error(run("user", "list", "--json"))
    nothing = "has no Opstage schema yet" if "DATABASE_URL" in env else "no database at"
    assert missing["code"] == "SETTINGS" and nothing in missing["message"]
    assert _json_error(run("config", "show", "--json", OPSTAGE_PORT="x"))["code"] == "SETTINGS"
    assert run("migrate", "--json").returncode == 0
    assert _json_error(run("user", "disable", "ghost", "--json"))["code"] == "USER_NOT_FOUND"
    assert (
        _json_error(run("token", "revoke", "tok_x", "--json"))["code"]
        == "REGISTRATION_TOKEN_NOT_FOUND"
    )
    stale = tmp_path / "stale.md"
    stale.write_text("old\n")
    checked = _json_error(run("config", "docs", "-o", str(stale), "--check", "--json"))
    assert "out of date" in checked["message"]
    # Usage errors are click's: exit 2, message on stderr.
    assert run("token", "create", "--expires-in", "5", "--json").returncode == 2
    assert run("user", "set-role", "x", "emperor", "--json").returncode == 2


def test_successes_print_one_json_document(run: Run, tmp_path: Path) -> None:
    from opstage import __version__

    assert json_out(run("version", "--json")) == {"version": __version__}
    assert json_out(run("migrate", "current", "--json")) == {"revision": None}
    up = json_out(run("migrate", "--json"))
    assert up["from"] is None and up["revision"]
    assert json_out(run("migrate", "up", "--json")) == {
        "from": up["revision"],
        "revision": up["revision"],
    }
    assert json_out(run("migrate", "current", "--json")) == {"revision": up["revision"]}
    assert json_out(run("user", "list", "--json")) == []
    assert json_out(run("token", "list", "--json")) == []
    docs = tmp_path / "configuration.md"
    assert json_out(run("config", "docs", "-o", str(docs), "--json")) == {
        "path": str(docs),
        "written": True,
    }
    assert json_out(run("config", "docs", "-o", str(docs), "--check", "--json"))["upToDate"]
    assert json_out(run("config", "docs", "--json"))["markdown"] == docs.read_text()
