"""A real Opstage server process on a free loopback port, for black-box tests and benches.

pytest is not imported here so that bench scripts can use it too.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

ADMIN_USERNAME = "admin"
ADMIN_PASSWORD = "test-owner-password-" + secrets.token_hex(4)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def opstage_executable() -> str:
    found = shutil.which("opstage", path=str(Path(sys.executable).parent))
    if not found:
        raise RuntimeError("the `opstage` script is not installed in this environment")
    return found


@dataclass
class ServerProcess:
    data_dir: Path
    database_url: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPSTAGE_")}
        env.pop("DATABASE_URL", None)
        env.update(
            {
                "OPSTAGE_DATA_DIR": str(self.data_dir),
                "OPSTAGE_SESSION_SECRET": "s" * 16 + secrets.token_hex(16),
                "OPSTAGE_ADMIN_USERNAME": ADMIN_USERNAME,
                "OPSTAGE_ADMIN_PASSWORD": ADMIN_PASSWORD,
                "OPSTAGE_COOKIE_SECURE": "false",
                "OPSTAGE_LOG_FORMAT": "json",
            }
        )
        if self.database_url:
            env["DATABASE_URL"] = self.database_url
        env.update(self.env)
        return env

    def start(self, timeout: float = 30.0) -> ServerProcess:
        # A free port can be taken by a parallel test between probing and binding: retry.
        for attempt in range(3):
            try:
                return self._start_once(timeout)
            except RuntimeError as exc:
                if "address already in use" not in str(exc).lower() or attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _start_once(self, timeout: float) -> ServerProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not self.env.get("OPSTAGE_SESSION_SECRET"):
            # Keep one secret across restarts of this server so sessions survive them.
            self.env["OPSTAGE_SESSION_SECRET"] = "s" * 16 + secrets.token_hex(16)
        self.port = self.pick_port()
        self.log_path = self.data_dir / f"server-{self.port}.log"
        log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            self.command(),
            env=self.environment(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"opstage exited with {self.proc.returncode}:\n{self.log()}")
            try:
                r = httpx.get(self.url + "/api/system/health", timeout=1.0)
                # Another test's server may hold this port (a lost race for it): only our own
                # process listening on it counts, or this object would point at a stranger.
                if r.status_code == 200 and self._listening():
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"opstage did not become healthy in {timeout}s:\n{self.log()}")

    def command(self) -> list[str]:
        """How the process is started (a bench serves the same app another way)."""
        return [opstage_executable(), "serve", "--host", "127.0.0.1", "--port", str(self.port)]

    def pick_port(self) -> int:
        return free_port()

    def _listening(self) -> bool:
        assert self.proc is not None
        try:
            sockets = psutil.Process(self.proc.pid).net_connections(kind="tcp")
        except psutil.Error:
            return False
        return any(c.status == psutil.CONN_LISTEN and c.laddr.port == self.port for c in sockets)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(5)

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def log(self) -> str:
        if self.log_path and self.log_path.exists():
            return self.log_path.read_text(errors="replace")
        return ""
