"""Obtain a real PostgreSQL server for the test suite.

Usable from pytest fixtures and from scripts (``python -m opstage_testing.postgres``),
so pytest is deliberately not imported here.

Environment:
  OPSTAGE_TEST_POSTGRES_URL      admin DSN to use instead of discovering one
  OPSTAGE_TEST_PG_FORCE_PRIVATE  "1": skip env/5432 and always start a private cluster
  OPSTAGE_TEST_NO_INSTALL        set: never apt-get install postgresql

A private cluster lives only as long as this process (atexit stops it), so the DSN
printed by ``main()`` is dead once the smoke check exits.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import functools
import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Coroutine
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
START_TIMEOUT_S = 30.0
T = TypeVar("T")


def _log(msg: str) -> None:
    print(f"[opstage-test-postgres] {msg}", file=sys.stderr, flush=True)


def _run(coro: Coroutine[Any, Any, T]) -> T:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    # Called from async code (e.g. an async fixture) where asyncio.run() refuses to nest.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def _exec(dsn: str, sql: str, timeout: float = 10.0) -> None:
    conn = await asyncpg.connect(dsn, timeout=timeout)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _ping(dsn: str, timeout: float = 3.0) -> str | None:
    """Return None if ``dsn`` accepts connections, else the error text."""
    try:
        _run(_exec(dsn, "SELECT 1", timeout))
    # OSError covers refused/unreachable/timeout; ValueError a malformed DSN.
    except (OSError, ValueError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def _locate_bin() -> str | None:
    def version(bindir: str) -> tuple[int, ...]:
        return tuple(int(p) for p in bindir.split("/")[-2].split(".") if p.isdigit())

    found = [
        os.path.dirname(p)
        for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")
        if os.access(os.path.join(os.path.dirname(p), "pg_ctl"), os.X_OK)
    ]
    return max(found, key=version, default=None)


def _try_install() -> str | None:
    """apt-get install postgresql if allowed; else/on failure return the reason.

    Runs at most once per process because find_or_start_postgres() is cached.
    """
    if os.environ.get("OPSTAGE_TEST_NO_INSTALL"):
        return "OPSTAGE_TEST_NO_INSTALL is set"
    if os.geteuid() != 0:
        return "not root, cannot apt-get install postgresql"
    if shutil.which("apt-get") is None:
        return "apt-get not available"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        _log("running: apt-get update -qq")
        subprocess.run(["apt-get", "update", "-qq"], env=env, check=True, timeout=600)
        _log("running: apt-get install -y -qq postgresql")
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "postgresql"], env=env, check=True, timeout=900
        )
    except (subprocess.SubprocessError, OSError) as exc:
        return f"apt-get install postgresql failed: {exc}"
    return None


def _free_port() -> int:
    # Small race window between close and postmaster bind; acceptable for tests.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_private() -> tuple[str | None, str]:
    bindir = _locate_bin()
    if bindir is None:
        why_not = _try_install() or "initdb/pg_ctl still missing after apt-get install"
        if (bindir := _locate_bin()) is None:
            return None, f"no initdb/pg_ctl under /usr/lib/postgresql/*/bin: {why_not}"

    is_root = os.geteuid() == 0
    if is_root and shutil.which("runuser") is None:
        return None, "running as root (postgres refuses) and runuser is unavailable"
    t0 = time.monotonic()
    prefix = ["runuser", "-u", "postgres", "--"] if is_root else []
    tmp = tempfile.mkdtemp(prefix="opstage-pg-")
    try:
        if is_root:
            if "postgres" not in {u.pw_name for u in pwd.getpwall()}:
                cmd = ["useradd", "--system", "--user-group", "postgres"]
                _log(f"running: {' '.join(cmd)}")
                subprocess.run(cmd, check=True)
            user = pwd.getpwnam("postgres")
            os.chown(tmp, user.pw_uid, user.pw_gid)  # data dir must belong to postgres
    except (OSError, KeyError, subprocess.SubprocessError) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        return None, f"cannot prepare postgres user/dir: {exc}"

    data, log = os.path.join(tmp, "data"), os.path.join(tmp, "log")
    pg_ctl = os.path.join(bindir, "pg_ctl")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        # cwd=tmp because the postgres user usually cannot read the caller's cwd.
        return subprocess.run(
            [*prefix, *args],
            cwd=tmp,
            capture_output=True,
            text=True,
            check=False,
            timeout=START_TIMEOUT_S + 10,
        )

    def cleanup() -> None:
        try:
            if os.path.exists(os.path.join(data, "postmaster.pid")):
                run(pg_ctl, "stop", "-D", data, "-m", "immediate", "-w")
        except (OSError, subprocess.SubprocessError) as exc:
            _log(f"could not stop private cluster in {tmp}: {exc}")
        shutil.rmtree(tmp, ignore_errors=True)

    atexit.register(cleanup)
    try:
        res = run(
            os.path.join(bindir, "initdb"),
            "-D",
            data,
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
        )
        if res.returncode != 0:
            return None, f"initdb failed: {res.stderr.strip() or res.stdout.strip()}"
        for _attempt in range(3):  # retry: the free port may be taken before bind
            port = _free_port()
            opts = f"-p {port} -k '{tmp}' -c listen_addresses=127.0.0.1 -c fsync=off"
            # -l is required: without it the postmaster keeps our capture pipes open.
            # -o goes through /bin/sh inside pg_ctl, hence the quoted socket dir.
            res = run(
                pg_ctl,
                "start",
                "-D",
                data,
                "-l",
                log,
                "-w",
                "-t",
                str(int(START_TIMEOUT_S)),
                "-o",
                opts,
            )
            if res.returncode == 0:
                break
        else:
            with open(log, errors="replace") as f:
                tail = " | ".join(f.read().strip().splitlines()[-5:])
            return None, f"pg_ctl start failed: {res.stderr.strip()} log: {tail}"
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"private cluster failed to start: {exc}"

    dsn = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    deadline = t0 + START_TIMEOUT_S
    while (err := _ping(dsn)) is not None:
        if time.monotonic() > deadline:
            return None, f"private cluster on port {port} never accepted connections: {err}"
        time.sleep(0.2)
    took = time.monotonic() - t0
    return dsn, f"private cluster ({bindir}, port {port}, dir {tmp}) started in {took:.1f}s"


@functools.cache  # one server per process: later callers share the same cluster
def find_or_start_postgres() -> tuple[str | None, str]:
    if os.environ.get("OPSTAGE_TEST_PG_FORCE_PRIVATE") != "1":
        url = os.environ.get("OPSTAGE_TEST_POSTGRES_URL")
        if url:
            # An explicit URL that fails is a config error; falling back would hide it.
            err = _ping(url)
            return (
                (url, "OPSTAGE_TEST_POSTGRES_URL")
                if err is None
                else (None, f"OPSTAGE_TEST_POSTGRES_URL does not connect: {err}")
            )
        if _ping(DEFAULT_DSN) is None:
            return DEFAULT_DSN, "existing server on 127.0.0.1:5432"
    return _start_private()


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _with_database(dsn: str, name: str) -> str:
    return urlunsplit(urlsplit(dsn)._replace(path="/" + quote(name, safe="")))


def create_database(admin_dsn: str, name: str, template: str | None = None) -> str:
    """A new database, or a copy of ``template`` (no one may be connected to it meanwhile)."""
    sql = f"CREATE DATABASE {_quote_ident(name)}"
    if template:
        sql += f" TEMPLATE {_quote_ident(template)}"
    _run(_exec(admin_dsn, sql))
    return _with_database(admin_dsn, name)


def drop_database(admin_dsn: str, name: str) -> None:
    # FORCE (PG 13+) so leaked connections from a failed test cannot block cleanup.
    sql = f"DROP DATABASE IF EXISTS {_quote_ident(name)} WITH (FORCE)"
    _run(_exec(admin_dsn, sql))


def main() -> int:
    dsn, how = find_or_start_postgres()
    if dsn is None:
        print(f"postgres unavailable: {how}")
        return 1
    # Round-trip a scratch database: proves the DSN really has CREATE DATABASE rights.
    scratch = f"opstage_smoke_{os.getpid()}"
    create_database(dsn, scratch)
    drop_database(dsn, scratch)
    print(f"{dsn}  ({how}; create/drop database ok)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
