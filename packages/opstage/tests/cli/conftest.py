"""The ``opstage`` command as a user runs it: its own environment, stdin, stdout and stderr.

``run`` calls the click command in this process (``opstage_testing.cli.run_cli``: it answers as
the process would, traceback and stray warnings included); a test that needs a real process
(signals, a terminal, another process's lock) starts ``opstage_executable()`` itself (ADR 0013).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from opstage_testing.cli import run_cli

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def env(tmp_path: Path, database_factory: Callable[[Path], str | None]) -> dict[str, str]:
    """A clean environment for one data dir (and, on the PostgreSQL pass, one database)."""
    out = {k: v for k, v in os.environ.items() if not k.startswith("OPSTAGE_")}
    out.pop("DATABASE_URL", None)
    data_dir = tmp_path / "data"
    out["OPSTAGE_DATA_DIR"] = str(data_dir)
    url = database_factory(data_dir)
    if url:
        out["DATABASE_URL"] = url
    return out


@pytest.fixture
def run(env: dict[str, str]) -> Run:
    def go(*args: str, stdin: str | None = None, **extra: str) -> subprocess.CompletedProcess[str]:
        return run_cli(args, {**env, **extra}, stdin)

    return go
