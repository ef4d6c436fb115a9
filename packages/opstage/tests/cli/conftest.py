"""The ``opstage`` command as a user runs it: a subprocess with its own environment."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from opstage_testing.server import opstage_executable

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
        return subprocess.run(
            [opstage_executable(), *args],
            env={**env, **extra},
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    return go
