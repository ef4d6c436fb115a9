"""An Opstage server inside the test process: the same app as ``opstage serve``, on a real port.

uvicorn serves ``create_server_app`` from a thread of its own, with its own event loop, on a
loopback socket bound here, so a test talks to it over real HTTP exactly as to a process —
streaming, long polls and disconnects included, which ``httpx.ASGITransport`` (it buffers a
whole response) could not carry. What it saves is the process: no interpreter start and no
imports per server (seconds each on a loaded machine), and the server's code is measured by
coverage. What it cannot do is what only a process can: be killed or signalled, or log only
its own lines (the log file here gets every record of this process while the server runs, in
the server's format: a test that a secret is never logged stays as strict). Tests that need a
process keep ``ServerProcess`` (ADR 0013).

``ctx`` is the running server's ``AppContext``: a test sets ``ctx.clock`` (see ``FakeClock``)
instead of sleeping until a threshold passes.
"""

from __future__ import annotations

import gc
import logging
import secrets
import signal
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from opstage_testing.server import ServerProcess

if TYPE_CHECKING:
    from opstage.app.context import AppContext
    from opstage.settings import Settings


def settings_from_environment(env: dict[str, str]) -> Settings:
    """``Settings`` from a process environment, as ``opstage serve`` would read it.

    Only ``env`` counts: the test process's own ``OPSTAGE_*`` variables must not leak in, so
    every field is passed by name (an init argument wins over the environment)."""
    from opstage.settings import Settings

    values: dict[str, Any] = {}
    for name, info in Settings.model_fields.items():
        names = [f"OPSTAGE_{name.upper()}"]
        alias = info.validation_alias
        choices = getattr(alias, "choices", None)
        if choices:
            names = [str(c) for c in choices]
        elif isinstance(alias, str):
            names = [alias]
        for variable in names:
            if variable in env:
                values[name] = env[variable]
                break
    values.setdefault("database_url", "")
    return Settings(**values)


class FakeClock:
    """The server's clock, ``offset`` ahead of the wall clock: ``advance`` instead of a sleep.

    Ahead of real time rather than frozen, so rows the server stamps with the wall clock
    (the domain event log) age as the test advances, and nothing ever runs backwards."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        from opstage.domain.timeutil import utcnow

        return utcnow() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


@dataclass
class InProcessServer(ServerProcess):
    """``ServerProcess``'s interface, served from a thread of this process."""

    server: Any = None
    thread: threading.Thread | None = None
    app: Any = None
    failure: BaseException | None = field(default=None, repr=False)
    clock: FakeClock | None = None  # set by fake_clock()
    _log_state: tuple[logging.FileHandler, int] | None = field(default=None, repr=False)

    @property
    def ctx(self) -> AppContext:
        assert self.app is not None, "the server is not running"
        ctx: AppContext = self.app.state.ctx
        return ctx

    def fake_clock(self) -> FakeClock:
        """Swap the running server's clock for a ``FakeClock`` (until it restarts)."""
        self.clock = FakeClock()
        self.ctx.clock = self.clock
        return self.clock

    def pick_port(self) -> int:
        return 0  # bound here, not probed: no race for the port (a subclass may fix one)

    def _start_once(self, timeout: float) -> InProcessServer:
        import uvicorn
        from opstage.api.http_protocol import DeadlineHttpProtocol
        from opstage.server import create_server_app
        from opstage.store.migrate import upgrade

        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not self.env.get("OPSTAGE_SESSION_SECRET"):
            # One secret across restarts of this server, so sessions survive them.
            self.env["OPSTAGE_SESSION_SECRET"] = "s" * 16 + secrets.token_hex(16)
        # The collector's thresholds are the process's, and this process is the test's: it keeps
        # CPython's policy unless a test asks for the server's (ADR 0019).
        self.env.setdefault("OPSTAGE_GC_FULL_INTERVAL_SECONDS", "0")
        settings = settings_from_environment(self.environment())
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", self.pick_port()))
        except OSError as exc:
            sock.close()
            raise RuntimeError(f"address already in use: {exc}") from exc
        self.port = int(sock.getsockname()[1])
        self._capture_log(settings)
        self.app = create_server_app(settings)
        config = uvicorn.Config(
            self.app,
            log_config=None,
            access_log=False,
            lifespan="on",
            server_header=False,
            timeout_graceful_shutdown=5,
            http=DeadlineHttpProtocol.with_deadlines(
                settings.http_header_timeout_seconds, settings.http_body_timeout_seconds
            ),
        )
        self.server = uvicorn.Server(config)
        self.failure = None

        def serve() -> None:
            try:
                # `opstage serve --migrate` (its default) upgrades before it serves; here on
                # the server's thread, as a test's own event loop may be running on this one.
                upgrade(settings.database_url)
                self.server.run(sockets=[sock])
            except BaseException as exc:  # reported by start()/stop(), never lost
                self.failure = exc
            finally:
                sock.close()

        self.thread = threading.Thread(target=serve, name=f"opstage-{self.port}", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.thread.is_alive():
                self._release_log()
                raise RuntimeError(f"the in-process server stopped: {self.failure!r}")
            if self.server.started:
                r = httpx.get(self.url + "/api/system/health", timeout=5.0)
                if r.status_code == 200:
                    return self
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"the in-process server did not become healthy in {timeout}s")

    def stop(
        self, sig: int = signal.SIGTERM, timeout: float = 10.0, *, wait_for_connections: bool = True
    ) -> int | None:
        """``opstage serve``'s SIGTERM: a graceful shutdown. Without ``wait_for_connections``
        uvicorn does not wait (up to its 5 s) for open connections and tasks, a parked long
        poll or a stream, to end; the app's lifespan still shuts down."""
        if sig != signal.SIGTERM:
            raise NotImplementedError(
                "an in-process server cannot be signalled: this test needs ServerProcess"
            )
        if self.thread is None or not self.thread.is_alive():
            return 0
        self.server.force_exit = not wait_for_connections
        self.server.should_exit = True
        self.thread.join(timeout)
        if self.thread.is_alive():
            self.server.force_exit = True
            self.thread.join(5)
        # The app's lifespan freezes the heap for a long-lived process (api/app.py); in a
        # test process that starts many servers, frozen garbage would never be collected.
        gc.unfreeze()
        self._release_log()
        if self.failure is not None:
            raise RuntimeError(f"the in-process server failed: {self.failure!r}")
        return 0

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def _capture_log(self, settings: Settings) -> None:
        """What ``logs.configure`` does for ``opstage serve``, as a handler of its own."""
        from opstage import logs

        self.log_path = self.data_dir / f"server-{self.port}.log"
        handler = logging.FileHandler(self.log_path, encoding="utf-8")
        json_format = settings.log_format in ("json", "auto")
        handler.setFormatter(logs.JsonFormatter() if json_format else logs.TextFormatter())
        root = logging.getLogger()
        self._log_state = (handler, root.level)
        root.addHandler(handler)
        root.setLevel(min(root.level or logging.WARNING, logging.getLevelName(settings.log_level)))
        for chatty in logs.SQL_LOGGERS:  # statements carry tokens as parameters (logs.py)
            logging.getLogger(chatty).setLevel(logging.WARNING)
        logging.getLogger("uvicorn.access").disabled = True

    def _release_log(self) -> None:
        state = self._log_state
        if state is None:
            return
        handler, level = state
        root = logging.getLogger()
        root.removeHandler(handler)
        root.setLevel(level)
        handler.close()
        self._log_state = None


def copy_sqlite_template(template: Path, data_dir: Path) -> None:
    """A migrated database for a new server, copied instead of migrated (ADR 0013)."""
    import shutil

    data_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, data_dir / "opstage.db")
