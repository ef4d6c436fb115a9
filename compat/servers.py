"""The two servers side by side: ours (`opstage serve`) and the reference (Node), same settings.

The reference is not built here: REF_REPO names a checkout of it that is already built
(`apps/opstage-backend/dist/main.js`), because this repository carries none of its code and no
recipe that builds it. REF_URL instead names a reference server that is already running.
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
from dataclasses import dataclass
from pathlib import Path

import httpx

ADMIN_USERNAME = "admin@example.local"
ADMIN_PASSWORD = "ChangeMeBeforeRunning123!"
REF_ENTRY = Path("apps/opstage-backend/dist/main.js")

# One set of settings for both: bus on, ingest limit out of the way, 90 s offline threshold.
COMMON_ENV = {
    "OPSTAGE_SESSION_SECRET": "compat-" + secrets.token_hex(16),
    "OPSTAGE_ADMIN_USERNAME": ADMIN_USERNAME,
    "OPSTAGE_ADMIN_PASSWORD": ADMIN_PASSWORD,
    "OPSTAGE_CAPSULE_BUS_ENABLED": "true",
    "OPSTAGE_CAPSULE_BUS_INGEST_PER_MIN": "10000",
    "OPSTAGE_AGENT_OFFLINE_THRESHOLD_SECONDS": "90",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    name: str
    url: str
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def log_tail(self, lines: int = 30) -> str:
        if self.log_path and self.log_path.exists():
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPSTAGE_")}
    env.pop("DATABASE_URL", None)
    env.update(COMMON_ENV)
    return env


def _spawn(name: str, cmd: list[str], env: dict[str, str], cwd: Path, port: int) -> Server:
    log_path = cwd / f"{name}.log"
    proc = subprocess.Popen(
        cmd,
        env=env,
        cwd=cwd,
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server = Server(name, f"http://127.0.0.1:{port}", proc, log_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}:\n{server.log_tail()}")
        try:
            if httpx.get(server.url + "/api/system/health", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"{name} did not become healthy in 60 s:\n{server.log_tail()}")


def start_ours(work: Path) -> Server:
    exe = shutil.which("opstage", path=str(Path(sys.executable).parent))
    if not exe:
        raise RuntimeError("the `opstage` script is not installed in this environment")
    data = work / "ours"
    data.mkdir(parents=True, exist_ok=True)
    env = _clean_env()
    env.update({"OPSTAGE_DATA_DIR": str(data), "OPSTAGE_COOKIE_SECURE": "false"})
    port = free_port()
    cmd = [exe, "serve", "--host", "127.0.0.1", "--port", str(port)]
    return _spawn("ours", cmd, env, data, port)


def reference_entry(ref_repo: str) -> Path:
    root = Path(ref_repo).expanduser().resolve()
    entry = root / REF_ENTRY
    if not entry.is_file():
        raise SystemExit(
            f"REF_REPO={ref_repo}: {entry} is missing. REF_REPO must name a checkout of the"
            " reference server (xtrape-capsule-ce) that is already built, following its own"
            " README; this repository carries no recipe that builds it. Or set REF_URL to a"
            " running reference server started with the settings in compat/servers.py."
        )
    return entry


def start_reference(ref_repo: str, work: Path) -> Server:
    entry = reference_entry(ref_repo)
    node = shutil.which("node")
    if not node:
        raise SystemExit("`make compat` needs Node.js (node) on PATH to run the reference server")
    data = work / "reference"
    data.mkdir(parents=True, exist_ok=True)
    env = _clean_env()
    port = free_port()
    env.update(
        {
            "OPSTAGE_HOST": "127.0.0.1",
            "OPSTAGE_PORT": str(port),
            "DATABASE_URL": f"file:{data / 'opstage.db'}",
            "OPSTAGE_BACKUP_DIR": str(data / "backups"),
            "OPSTAGE_STATIC_DIR": str(data / "no-ui"),
            # Plain-HTTP loopback: like OPSTAGE_COOKIE_SECURE=false on ours (it reads nothing else).
            "NODE_ENV": "development",
        }
    )
    return _spawn("reference", [node, str(entry)], env, data, port)
