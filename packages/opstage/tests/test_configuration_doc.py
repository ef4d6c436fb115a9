"""docs/configuration.md is generated from the settings tree and must not drift from it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from opstage.cli.config_docs import env_names, render
from opstage.settings import Settings
from opstage_testing.cli import run_cli

DOC = Path(__file__).resolve().parents[3] / "docs" / "configuration.md"
REGENERATE = ".venv/bin/opstage config docs --output docs/configuration.md"


def test_configuration_doc_matches_the_settings() -> None:
    assert DOC.exists(), f"docs/configuration.md is missing; run `{REGENERATE}`"
    assert DOC.read_text() == render(), f"docs/configuration.md is stale; run `{REGENERATE}`"


def test_every_setting_is_documented_under_its_variable() -> None:
    text = render()
    for name, info in Settings.model_fields.items():
        names = env_names(name, info)
        assert all(f"`{n}`" in text for n in names), name
        assert info.description, f"{name} has no description to document"


def test_the_cli_writes_and_checks_the_same_text(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPSTAGE_")}
    out = tmp_path / "configuration.md"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(["config", "docs", *args], env)

    printed = run()
    assert printed.returncode == 0 and printed.stdout == render()
    assert run("--output", str(out)).returncode == 0
    assert out.read_text() == render()
    assert run("--check", "--output", str(out)).returncode == 0
    out.write_text(render() + "drift\n")
    stale = run("--check", "--output", str(out))
    assert stale.returncode == 1 and "out of date" in stale.stderr
