"""``opstage demo`` and ``make demo``'s launcher: both children stop on every signal.

Each test starts the real launcher, which starts the real server and the real demo agent; the
start-up summary (``--json``) names their process ids.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from opstage_testing.server import free_port, opstage_executable

ROOT = Path(__file__).resolve().parents[4]


def _env() -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith("OPSTAGE_")}
    out.pop("DATABASE_URL", None)
    return out


def _read_summary(proc: subprocess.Popen[str], timeout: float = 90) -> dict[str, Any]:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.5)
        if ready:
            line = proc.stdout.readline()
            if line.startswith("{"):
                summary: dict[str, Any] = json.loads(line)
                return summary
            if not line and proc.poll() is not None:
                break
    proc.kill()
    raise AssertionError(
        f"no start-up summary; stderr: {proc.stderr.read() if proc.stderr else ''}"
    )


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _gone(pids: list[int], timeout: float = 30) -> list[int]:
    deadline = time.monotonic() + timeout
    alive = [p for p in pids if _alive(p)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.2)
        alive = [p for p in pids if _alive(p)]
    return alive


LAUNCHERS = {
    "opstage demo": lambda: [opstage_executable(), "demo"],
    "make demo's launch.py": lambda: [
        sys.executable,
        str(ROOT / "examples/demo_service/launch.py"),
    ],
}


def _start(launcher: str, data_dir: Path, port: int) -> subprocess.Popen[str]:
    command = [*LAUNCHERS[launcher](), "--data-dir", str(data_dir), "--port", str(port), "--json"]
    return subprocess.Popen(
        command,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _stop_children(pids: list[int]) -> None:
    for pid in pids:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.sqlite_only  # the demo keeps its own SQLite file whatever the engine
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
@pytest.mark.parametrize("launcher", list(LAUNCHERS))
def test_demo_stops_server_and_agent_on_signal(
    launcher: str, sig: signal.Signals, tmp_path: Path
) -> None:
    proc = _start(launcher, tmp_path / "data-demo", free_port())
    summary = _read_summary(proc)
    children = [summary["serverPid"], summary["agentPid"]]
    try:
        assert all(_alive(p) for p in children)
        assert httpx.get(summary["url"] + "/api/system/health").status_code == 200
        assert summary["password"] and summary["username"] == "admin"
        proc.send_signal(sig)
        assert proc.wait(40) == 0
        assert _gone(children) == [], f"still running after {sig.name}"
    finally:
        _stop_children(children)
        if proc.poll() is None:
            proc.kill()


@pytest.mark.sqlite_only
def test_demo_stops_both_when_its_parent_dies(tmp_path: Path) -> None:
    """`make` killed outright: the launcher, orphaned, stops the server and the agent."""
    port = free_port()
    summary_file = tmp_path / "summary.json"
    summary_file.touch()
    # A stand-in for make: starts the launcher (output to a file), then is killed with SIGKILL,
    # so it cannot pass anything on.
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess, sys, time\n"
            f"out = open({str(summary_file)!r}, 'w')\n"
            f"subprocess.Popen([{opstage_executable()!r}, 'demo', '--data-dir', "
            f"{str(tmp_path / 'data-demo')!r}, '--port', '{port}', '--json'], stdout=out)\n"
            "time.sleep(600)\n",
        ],
        env=_env(),
        start_new_session=True,
    )
    launcher: list[int] = []
    children: list[int] = []
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not summary_file.read_text().startswith("{"):
            time.sleep(0.3)
        summary = json.loads(summary_file.read_text().splitlines()[0])
        children = [summary["serverPid"], summary["agentPid"]]
        launcher = [c.pid for c in psutil.Process(parent.pid).children()]
        assert len(launcher) == 1 and all(_alive(p) for p in children)
        parent.kill()
        parent.wait(10)
        assert _gone(children + launcher) == []
    finally:
        if parent.poll() is None:
            parent.kill()
        _stop_children(children + launcher)


def _time_wait_on(port: int) -> None:
    """Leave a connection on ``port`` in TIME_WAIT: the listening side closes first."""
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen()
        client = socket.create_connection(("127.0.0.1", port))
        conn, _ = listener.accept()
        conn.close()  # the active close: this side's socket goes to TIME_WAIT
        client.close()
    time.sleep(0.2)


@pytest.mark.sqlite_only
def test_demo_port_check_accepts_a_port_in_time_wait(tmp_path: Path) -> None:
    port = free_port()
    _time_wait_on(port)
    states = [c.status for c in psutil.net_connections("tcp") if c.laddr and c.laddr.port == port]
    assert psutil.CONN_TIME_WAIT in states, states  # the precondition really holds
    proc = _start("opstage demo", tmp_path / "data-demo", port)
    summary = _read_summary(proc)
    children = [summary["serverPid"], summary["agentPid"]]
    try:
        assert summary["url"].endswith(f":{port}")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(40) == 0
        assert _gone(children) == []
    finally:
        _stop_children(children)
        if proc.poll() is None:
            proc.kill()


def test_demo_port_check_still_refuses_a_listening_port(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        def demo(*extra: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [*extra, "--data-dir", str(tmp_path / "d"), "--port", str(port), "--json"],
                env=_env(),
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )

        cli = demo(opstage_executable(), "demo")
        script = demo(*LAUNCHERS["make demo's launch.py"]())
    assert cli.returncode == 1 and f"127.0.0.1:{port} is in use" in cli.stderr, cli.stderr
    assert json.loads(cli.stdout)["error"]["code"] == "DEMO_ERROR"
    assert script.returncode == 1 and script.stderr.startswith("demo: 127.0.0.1:"), script.stderr


def test_data_demo_is_ignored_by_git() -> None:
    ignored = subprocess.run(
        ["git", "-C", str(ROOT), "check-ignore", "-q", "data-demo/opstage.log"],
        check=False,
    )
    assert ignored.returncode == 0
