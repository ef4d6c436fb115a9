"""Checks shared by the tests of the ``opstage`` command."""

from __future__ import annotations

import json
import subprocess
from typing import Any


def one_line_error(out: subprocess.CompletedProcess[str]) -> str:
    """A failure: exit 1, one ``opstage: error: …`` line on stderr, no traceback."""
    assert out.returncode == 1, (out.returncode, out.stdout, out.stderr)
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("opstage: error: "), lines
    return lines[0]


def json_out(out: subprocess.CompletedProcess[str]) -> Any:
    """The one JSON document a successful ``--json`` command printed."""
    assert out.returncode == 0, (out.returncode, out.stdout, out.stderr)
    return json.loads(out.stdout)
