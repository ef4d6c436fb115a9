"""The SDK stands alone: importing it never imports the server (nor FastAPI)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PROBE = """
import sys
import opstage_agent, opstage_agent.fastapi
server = sorted(m for m in sys.modules if m == "opstage" or m.startswith("opstage."))
assert not server, server
assert "fastapi" not in sys.modules, "opstage_agent.fastapi must not need FastAPI to import"
print("ok")
"""


def test_importing_the_sdk_imports_no_server_module() -> None:
    # A fresh interpreter: this test process has the server's test support loaded already.
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


TESTS = Path(__file__).resolve().parent


def _reaches_into_the_server_suite(path: Path) -> list[str]:
    """Imports of the server's test package (``tests.…``) and edits of ``sys.path`` in a file."""
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            names = []
        found += [
            f"{path.name}:{node.lineno} imports {n}" for n in names if n.split(".")[0] == "tests"
        ]
        if (
            isinstance(node, ast.Attribute)
            and node.attr == "path"
            and isinstance(node.value, ast.Name)
            and node.value.id == "sys"
        ):
            found.append(f"{path.name}:{node.lineno} touches sys.path")
    return found


def test_the_sdk_suite_takes_its_fixtures_from_opstage_testing_only() -> None:
    # Both suites share fixtures through the opstage_testing package (ADR 0013); reaching
    # into the server's tests through sys.path tied this suite to that one's layout.
    found = [
        hit for path in sorted(TESTS.glob("*.py")) for hit in _reaches_into_the_server_suite(path)
    ]
    assert found == []
