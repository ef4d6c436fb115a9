"""The SDK stands alone: importing it never imports the server (nor FastAPI)."""

from __future__ import annotations

import subprocess
import sys

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
