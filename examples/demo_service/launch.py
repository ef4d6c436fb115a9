"""``make demo``: Opstage and the demo Capsule Service together, for a first look.

1. starts ``opstage serve`` in dev mode with its data in ``./data-demo`` (logs in
   ``./data-demo/opstage.log``), owner ``admin`` with a password generated on the first run;
2. once the server has migrated and answers, creates a registration token with
   ``opstage token create --name demo`` (same environment, so the same database) — only when
   the demo agent has no saved credentials yet;
3. starts the demo agent (``service.py``), prints the console URL and the login, and waits.

Ctrl-C stops both. Delete ``./data-demo`` to start from scratch.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
AGENT_CODE = "demo-service"
USERNAME = "admin"


def opstage_command() -> str:
    found = shutil.which("opstage", path=str(Path(sys.executable).parent)) or shutil.which(
        "opstage"
    )
    if not found:
        sys.exit("demo: the `opstage` command is not installed here; run `make setup` first")
    return found


def port_is_free(host: str, port: int) -> bool:
    with socket.socket() as probe:
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
            sys.exit(f"demo: opstage exited with {server.returncode}; see {log}")
        try:
            if httpx.get(f"{url}/api/system/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    sys.exit(f"demo: opstage did not answer within {timeout:g} s; see {log}")


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path("data-demo"))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()

    data_dir: Path = args.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    url = f"http://{args.host}:{args.port}"
    if not port_is_free(args.host, args.port):
        sys.exit(f"demo: {args.host}:{args.port} is in use; try `make demo PORT=8081`")

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
    opstage = opstage_command()

    server: subprocess.Popen[bytes] | None = None
    agent: subprocess.Popen[bytes] | None = None
    try:
        with log_path.open("ab") as log:
            server = subprocess.Popen(
                [opstage, "serve", "--host", args.host, "--port", str(args.port)],
                env=server_env,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Own sessions: Ctrl-C reaches only this script, which then stops the agent
                # first and the server second, each exactly once.
                start_new_session=True,
            )
        wait_healthy(url, server, log_path)

        agent_env = {
            **os.environ,
            "OPSTAGE_BACKEND_URL": url,
            "OPSTAGE_AGENT_CODE": AGENT_CODE,
            "OPSTAGE_AGENT_TOKEN_FILE": str(token_file),
        }
        if not token_file.exists():
            created = subprocess.run(
                [opstage, "token", "create", "--name", "demo"],
                env=server_env,
                capture_output=True,
                text=True,
                check=False,
            )
            if created.returncode != 0:
                sys.exit(f"demo: `opstage token create` failed:\n{created.stderr}")
            tokens = [t for t in created.stdout.split() if t.startswith("opstage_reg_")]
            if not tokens:
                sys.exit("demo: `opstage token create` printed no registration token")
            agent_env["OPSTAGE_REGISTRATION_TOKEN"] = tokens[-1]

        agent = subprocess.Popen(
            [sys.executable, str(HERE / "service.py")], env=agent_env, start_new_session=True
        )
        login = (
            f"{USERNAME} / {password}"
            if password
            else (
                f"{USERNAME} / the password set on the first run (delete {data_dir} to start over)"
            )
        )
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
            time.sleep(0.5)
        if server.poll() is not None:
            print(f"demo: opstage exited with {server.returncode}; see {log_path}", file=sys.stderr)
        else:
            print(f"demo: the demo agent exited with {agent.returncode}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ndemo: stopping the demo agent and Opstage ...", flush=True)
        return 0
    finally:
        stop(agent)
        stop(server)


if __name__ == "__main__":
    sys.exit(main())
