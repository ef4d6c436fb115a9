"""``opstage demo`` / ``make demo``: Opstage and the demo Capsule Service, for a first look.

1. starts ``opstage serve`` in dev mode with its data in ``./data-demo`` (logs in
   ``./data-demo/opstage.log``), owner ``admin`` with a password generated on the first run;
2. once the server has migrated and answers, creates a registration token with
   ``opstage token create --name demo`` (same environment, so the same database) — only when
   the demo agent has no saved credentials yet;
3. starts the demo agent (``opstage.demo.service``), prints the console URL and the login, and
   waits.

Any of Ctrl-C, SIGTERM or SIGHUP (a closed terminal) stops both, agent first. The children run
in sessions of their own (so a Ctrl-C reaches only this launcher, which stops each exactly
once); on Linux they are also told to stop when the launcher dies without cleaning up
(``PR_SET_PDEATHSIG``), and the launcher stops them when its own parent goes away (``make``
killed). Delete ``./data-demo`` to start from scratch.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

AGENT_CODE = "demo-service"
USERNAME = "admin"
# The server and the CLI as modules of this interpreter: no PATH lookup, the same install.
OPSTAGE = [sys.executable, "-m", "opstage.cli.main"]
PR_SET_PDEATHSIG = 1


class Stop(Exception):
    """A signal asked the demo to stop."""


class DemoError(Exception):
    """The demo cannot start or went down; the message says why, in one line or two."""


def _on_signal(signum: int, _frame: object) -> None:
    # Once is enough: a second signal must not interrupt the cleanup the first one started.
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, signal.SIG_IGN)
    raise Stop(signal.Signals(signum).name)


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the launcher dies (Linux; elsewhere a no-op)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def port_is_free(host: str, port: int) -> bool:
    """Whether a server could listen there now. SO_REUSEADDR, as the server itself binds: a
    port whose last connection is in TIME_WAIT is free for it, not "in use" for a minute."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def admin_password(data_dir: Path) -> str | None:
    """The demo owner's password: generated once, kept (0600) next to the demo's data.

    None when the database predates the password file: the owner then already exists with a
    password this script does not know.
    """
    path = data_dir / ".demo-admin-password"
    if path.exists():
        return path.read_text().strip()
    if (data_dir / "opstage.db").exists():
        return None
    password = "demo-" + secrets.token_urlsafe(12)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(password + "\n")
    return password


def wait_healthy(url: str, server: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise DemoError(f"opstage exited with {server.returncode}; see {log}")
        try:
            if httpx.get(f"{url}/api/system/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise DemoError(f"opstage did not answer within {timeout:g} s; see {log}")


def stop(process: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM and wait: both the agent (``Agent.run``) and ``opstage serve`` stop gracefully."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path("data-demo"))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--json", action="store_true", help="the start-up summary as JSON")
    args = parser.parse_args(argv)
    try:
        return run(args.data_dir, args.host, args.port, as_json=args.json)
    except DemoError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 1


def run(data_dir: Path, host: str, port: int, *, as_json: bool = False) -> int:
    try:
        import opstage_agent  # noqa: F401  (the demo service is built on it)
    except ImportError:
        raise DemoError(
            "the demo service needs the Python agent SDK: pip install opstage-agent "
            "(or opstage[demo])"
        ) from None
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_signal)
    parent = os.getppid()

    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    url = f"http://{host}:{port}"
    if not port_is_free(host, port):
        raise DemoError(f"{host}:{port} is in use; try `make demo PORT=8081` or --port 8081")

    password = admin_password(data_dir)
    server_env = {
        **os.environ,
        "OPSTAGE_DATA_DIR": str(data_dir),
        "OPSTAGE_DEV_MODE": "true",
        "OPSTAGE_ADMIN_USERNAME": USERNAME,
        "OPSTAGE_LOG_FORMAT": "text",
        # The demo's `announce` action publishes on the Capsule Bus (off by default).
        "OPSTAGE_CAPSULE_BUS_ENABLED": "true",
    }
    server_env.pop("DATABASE_URL", None)  # the demo keeps its own SQLite file in data_dir
    if password:
        server_env["OPSTAGE_ADMIN_PASSWORD"] = password
    log_path = data_dir / "opstage.log"
    token_file = data_dir / "demo-agent.token.json"

    server: subprocess.Popen[bytes] | None = None
    agent: subprocess.Popen[bytes] | None = None
    try:
        with log_path.open("ab") as log:
            server = subprocess.Popen(  # noqa: S603 (this interpreter, our arguments)
                [*OPSTAGE, "serve", "--host", host, "--port", str(port)],
                env=server_env,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Own sessions: Ctrl-C reaches only this script, which then stops the agent
                # first and the server second, each exactly once.
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        wait_healthy(url, server, log_path)

        agent_env = {
            **os.environ,
            "OPSTAGE_BACKEND_URL": url,
            "OPSTAGE_AGENT_CODE": AGENT_CODE,
            "OPSTAGE_AGENT_TOKEN_FILE": str(token_file),
        }
        if not token_file.exists():
            created = subprocess.run(  # noqa: S603 (this interpreter, our arguments)
                [*OPSTAGE, "token", "create", "--name", "demo"],
                env=server_env,
                capture_output=True,
                text=True,
                check=False,
            )
            if created.returncode != 0:
                raise DemoError(f"`opstage token create` failed:\n{created.stderr}")
            tokens = [t for t in created.stdout.split() if t.startswith("opstage_reg_")]
            if not tokens:
                raise DemoError("`opstage token create` printed no registration token")
            agent_env["OPSTAGE_REGISTRATION_TOKEN"] = tokens[-1]

        agent = subprocess.Popen(
            [sys.executable, "-m", "opstage.demo.service"],
            env=agent_env,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        login = (
            f"{USERNAME} / {password}"
            if password
            else (
                f"{USERNAME} / the password set on the first run (delete {data_dir} to start over)"
            )
        )
        if as_json:
            summary = {
                "url": url,
                "username": USERNAME,
                "password": password,
                "agentCode": AGENT_CODE,
                "serverPid": server.pid,
                "agentPid": agent.pid,
                "log": str(log_path),
            }
            print(json.dumps(summary), flush=True)
        else:
            print(
                "\n"
                f"  Opstage console:  {url}\n"
                f"  Login:            {login}\n"
                f"  Demo service:     {AGENT_CODE} (actions: echo, runHealthCheck, listThings,\n"
                "                    flipHealth, announce, rotateSecret)\n"
                f"  Server log:       {log_path}\n"
                "  Ctrl-C stops both.\n",
                flush=True,
            )
        while server.poll() is None and agent.poll() is None:
            if os.getppid() != parent:  # whoever started us is gone (make was killed)
                raise Stop("parent exited")
            time.sleep(0.5)
        if server.poll() is not None:
            print(f"demo: opstage exited with {server.returncode}; see {log_path}", file=sys.stderr)
        else:
            print(f"demo: the demo agent exited with {agent.returncode}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, Stop) as why:
        with contextlib.suppress(OSError):  # after SIGHUP the terminal may be gone
            print(
                f"\ndemo: stopping the demo agent and Opstage ({why or 'Ctrl-C'}) ...",
                file=sys.stderr,
                flush=True,
            )
        return 0
    finally:
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            signal.signal(sig, signal.SIG_IGN)  # nothing may cut the cleanup short
        stop(agent)
        stop(server)


if __name__ == "__main__":
    sys.exit(main())
