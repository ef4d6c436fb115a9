"""`opstage serve` raises its open-file limit: every connected agent holds a socket (ADR 0020)."""

from __future__ import annotations

import json
import resource
import sys
from dataclasses import dataclass
from pathlib import Path

from opstage_testing.server import ServerProcess

# Lowers the limits, then becomes the server: how a shell with `ulimit -n` starts it.
_EXEC_WITH_LIMITS = (
    "import os, resource, sys; "
    "resource.setrlimit(resource.RLIMIT_NOFILE, (int(sys.argv[1]), int(sys.argv[2]))); "
    "os.execv(sys.argv[3], sys.argv[3:])"
)


@dataclass
class _Limited(ServerProcess):
    soft: int = 256
    hard: int = 256

    def command(self) -> list[str]:
        inner = super().command()
        return [sys.executable, "-c", _EXEC_WITH_LIMITS, str(self.soft), str(self.hard), *inner]


def _limits(pid: int) -> tuple[int, int]:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return int(soft), int(hard)
    raise AssertionError("no open-files line in /proc/<pid>/limits")


def _records(server: ServerProcess) -> list[dict[str, object]]:
    return [json.loads(x) for x in server.log().splitlines() if x.startswith("{")]


def _fd_warnings(server: ServerProcess) -> list[str]:
    return [
        str(r["msg"])
        for r in _records(server)
        if r["level"] == "warning" and "open-file limit" in str(r["msg"])
    ]


def test_serve_raises_a_low_soft_limit_to_the_hard_one(tmp_path: Path) -> None:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard == resource.RLIM_INFINITY:
        hard = 1_048_576
    server = _Limited(tmp_path / "raised", None, soft=256, hard=hard).start()
    try:
        assert server.proc is not None
        assert _limits(server.proc.pid) == (hard, hard)
    finally:
        server.stop()
    # Warned only when even the hard limit leaves room for fewer than 4,000 agents.
    assert bool(_fd_warnings(server)) == (hard - 200 < 4_000), server.log()


def test_serve_warns_when_the_hard_limit_is_low(tmp_path: Path) -> None:
    server = _Limited(tmp_path / "low", None, soft=512, hard=1024).start()
    try:
        assert server.proc is not None
        assert _limits(server.proc.pid) == (1024, 1024)
    finally:
        server.stop()
    warnings = _fd_warnings(server)
    assert len(warnings) == 1, server.log()
    assert "is 1024" in warnings[0]
    assert "~824 connected agents" in warnings[0]
    assert "LimitNOFILE" in warnings[0]
