"""How many agents does one node carry? (`make bench-fleet`, issue 19 D)

One `opstage serve` (SQLite in a temp dir, access log off). For each step N (1,000, 5,000,
10,000, 20,000, … until a step misses the service level) it registers agents up to N (timed on
its own), then runs them from ``--load-procs`` processes of their own (uvloop), each agent doing
what the SDK (`opstage_agent.aio`) does:

- a long-poll `GET /api/agents/{id}/commands?waitSeconds=25` on a connection of its own,
  re-opened at once when it answers; a command it brings is answered with its result;
- a heartbeat `POST /api/agents/{id}/heartbeat` at start and every 30 s (phases spread), on a
  fresh connection (the SDK drops idle keep-alive connections after 4 s, so one 30 s apart
  never finds one open);

and, from this process, an operator action to a random agent every second, timed from just
before the POST until the agent's long-poll has it. Service level per step: heartbeat p99 <
100 ms, action→agent p99 < 250 ms, no errors. After a ramp the step measures for
``--duration`` s (default 60).

The ramp: agents start at ``--start-rate`` per second (default 250), so a step of N agents
ramps over N / rate seconds; ``--ramp S`` spreads every step's start over S seconds instead.
Each starting agent opens two connections (its long-poll and its first heartbeat) and makes
two calls at once; a node takes only so many of those a second. Past that the listen queue
overflows, the kernel drops SYNs, the clients resend them after 1, 3, 7 s, time out and come
back, and the step collapses (ADR 0020). The SDK's reconnects back off with jitter, which is
what spreads a real fleet's start; a fixed 15 s ramp for 20,000 agents is a herd no SDK makes.
The kernel's counters say whether it happened: ``acc ovf`` is the listen-queue overflows
(TcpExt ListenOverflows) in the measured window; overflows in the ramp are printed below the
row.

Per step: server CPU % (of one core) and per agent call (µs/call), RSS, open fds (max
sampled), the load processes' CPU and everyone else's on the machine; py-spy samples the
server during each step (``--no-profile`` to skip) and the step that misses is summarised
(bench/profile_summary.py). And where the server's event loop stopped, from its runtime
diagnostics (ADR 0019): full collector passes in the step, the collector's time in ms, and how
many of the loop-lag samples (one per 0.1 s) came more than 100 ms late.

File descriptors: every parked long-poll holds one socket in the server and one in a load
process. The bench raises its soft RLIMIT_NOFILE to the hard limit (children inherit it) and
says how many agents that allows; a step beyond it is still run, to show what happens.

    .venv/bin/python bench/fleet.py [--steps 1000,5000,10000,20000] [--duration 60] \
        [--start-rate 250 | --ramp S] [--load-procs 3] [--no-profile]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT / "packages" / "opstage"))

LONG_POLL_SECONDS = 25
HEARTBEAT_SECONDS = 30
ACTIONS_PER_SECOND = 1.0
HEARTBEAT_P99_MS = 100.0
ACTION_P99_MS = 250.0
HEARTBEAT_BODY = b'{"health":{"status":"UP"}}'
RESULT_BODY = (
    b'{"success":true,"startedAt":"2026-01-01T00:00:00.000Z",'
    b'"finishedAt":"2026-01-01T00:00:00.000Z"}'
)
SERVER_ENV = {"OPSTAGE_ACCESS_LOG": "false", "OPSTAGE_LOG_LEVEL": "WARNING"}
PROFILE_DIR = BENCH / "results"


# --- the load processes ------------------------------------------------------------------------
class Http:
    """Minimal HTTP/1.1 over asyncio streams: one request at a time on one connection."""

    def __init__(self, host: str, port: int, source: str) -> None:
        self.host, self.port, self.source = host, port, source
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(
            self.host, self.port, local_addr=(self.source, 0)
        )

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def request(
        self, method: str, path: str, token: str, body: bytes = b""
    ) -> tuple[int, bytes]:
        if self.writer is None:
            await self.open()
        assert self.reader is not None
        assert self.writer is not None
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\nAuthorization: Bearer {token}\r\n"
        if body:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        self.writer.write(head.encode() + b"\r\n" + body)
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length, close = 0, False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
        payload = await self.reader.readexactly(length) if length else b""
        if close:
            self.close()
        return status, payload


class LoadProcess:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        lines = Path(args.agents_file).read_text().split("\n")
        rows = [line.split() for line in lines if line.strip()]
        self.agents = rows[args.index :: args.procs]
        self.heartbeats: list[float] = []
        self.received: dict[str, float] = {}
        self.errors: dict[str, int] = {}
        self.reopens = 0
        # The loop keeps only weak references to tasks: hold them, or one may vanish mid-flight.
        self.tasks: set[asyncio.Task[None]] = set()

    def spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def measuring(self, now: float) -> bool:
        return self.args.measure_at <= now < self.args.end_at

    def error(self, what: str) -> None:
        if self.measuring(time.monotonic()):
            self.errors[what] = self.errors.get(what, 0) + 1

    def source(self, k: int) -> str:
        # Spread over loopback addresses: 20k long-polls plus heartbeats' TIME_WAITs would
        # exhaust one source address's ephemeral ports.
        return f"127.{10 + self.args.index}.{(k // 250) % 250}.{1 + k % 250}"

    async def agent(self, k: int, agent_id: str, token: str, start: float) -> None:
        await asyncio.sleep(max(0.0, start - time.monotonic()))
        self.spawn(self.heartbeats_of(k, agent_id, token))
        http = Http(self.args.host, self.args.port, self.source(k))
        path = f"/api/agents/{agent_id}/commands?waitSeconds={LONG_POLL_SECONDS}"
        while time.monotonic() < self.args.end_at:
            try:
                status, body = await asyncio.wait_for(
                    http.request("GET", path, token), LONG_POLL_SECONDS + 15
                )
            except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as exc:
                http.close()
                self.error(f"long-poll {type(exc).__name__}")
                await asyncio.sleep(1.0)
                continue
            now = time.monotonic()
            if self.measuring(now):
                self.reopens += 1
            if status != 200:
                self.error(f"long-poll HTTP {status}")
                await asyncio.sleep(1.0)
                continue
            commands = json.loads(body)["data"]
            for command in commands:
                self.received.setdefault(command["id"], now)
                self.spawn(self.result(k, agent_id, token, command["id"]))
        http.close()

    async def result(self, k: int, agent_id: str, token: str, command_id: str) -> None:
        http = Http(self.args.host, self.args.port, self.source(k))
        try:
            path = f"/api/agents/{agent_id}/commands/{command_id}/result"
            status, _ = await http.request("POST", path, token, RESULT_BODY)
            if status != 200:
                self.error(f"result HTTP {status}")
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            self.error(f"result {type(exc).__name__}")
        finally:
            http.close()

    async def heartbeats_of(self, k: int, agent_id: str, token: str) -> None:
        path = f"/api/agents/{agent_id}/heartbeat"
        due = time.monotonic()  # the SDK's first heartbeat is at start
        phase = random.uniform(0, HEARTBEAT_SECONDS)
        first = True
        while due < self.args.end_at:
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            started = time.monotonic()
            http = Http(self.args.host, self.args.port, self.source(k))
            try:
                status, _ = await asyncio.wait_for(
                    http.request("POST", path, token, HEARTBEAT_BODY), 30
                )
                took = time.monotonic() - started
                if status != 200:
                    self.error(f"heartbeat HTTP {status}")
                elif self.measuring(started):
                    self.heartbeats.append(took)
            except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as exc:
                self.error(f"heartbeat {type(exc).__name__}")
            finally:
                http.close()
            due = started + (phase if first else HEARTBEAT_SECONDS)
            first = False

    async def run(self) -> None:
        ramp_start = time.monotonic()
        n = len(self.agents)
        cpu0 = None
        tasks = []
        for k, (agent_id, token, _service) in enumerate(self.agents):
            start = ramp_start + self.args.ramp * k / max(1, n)
            tasks.append(asyncio.create_task(self.agent(k, agent_id, token, start)))
        await asyncio.sleep(max(0.0, self.args.measure_at - time.monotonic()))
        cpu0 = cpu_seconds_self()
        await asyncio.sleep(max(0.0, self.args.end_at - time.monotonic()))
        cpu = cpu_seconds_self() - cpu0
        out = {
            "agents": n,
            "heartbeats": self.heartbeats,
            "received": self.received,
            "errors": self.errors,
            "reopens": self.reopens,
            "cpu_seconds": cpu,
        }
        write_json(Path(self.args.out), out)
        os._exit(0)  # thousands of parked sockets: the kernel closes them faster


def write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value))


def spawn(cmd: list[str], quiet: bool = False) -> subprocess.Popen[bytes]:
    out = subprocess.DEVNULL if quiet else None
    return subprocess.Popen(cmd, stdout=out, stderr=out)


def cpu_seconds_self() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def load_main(args: argparse.Namespace) -> None:
    try:
        import uvloop
    except ImportError:
        asyncio.run(LoadProcess(args).run())
    else:
        uvloop.run(LoadProcess(args).run())


# --- the conductor -----------------------------------------------------------------------------
def raise_fd_limit() -> int:
    # The server's own rule (ADR 0020), so the bench's processes get what `opstage serve` gets.
    from opstage.cli.open_files import raise_open_files_limit

    return raise_open_files_limit()


def process_cpu_seconds(pid: int) -> float:
    return sum(process_user_system_seconds(pid))


def process_user_system_seconds(pid: int) -> tuple[float, float]:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def machine_busy_seconds() -> float:
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def tcp_counters() -> dict[str, int]:
    """The kernel's TcpExt counters (machine-wide; on loopback the server is the listener)."""
    lines = Path("/proc/net/netstat").read_text().splitlines()
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names.startswith("TcpExt:"):
            return dict(zip(names.split()[1:], map(int, values.split()[1:]), strict=True))
    return {"ListenOverflows": 0, "TCPSynRetrans": 0}


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def percentile(values: list[float], q: float) -> float:
    """Nearest rank (with fewer than 100 samples, p99 is the largest)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


class Conductor:
    def __init__(self, args: argparse.Namespace, url: str, pid: int, workdir: Path) -> None:
        import httpx

        self.args, self.url, self.pid, self.workdir = args, url, pid, workdir
        self.agents: list[tuple[str, str, str]] = []
        self.database_url = f"sqlite:///{workdir / 'opstage.db'}"
        self.runtime: Any = None  # the bulk seeder's (seed_until)
        self.admin = httpx.AsyncClient(base_url=url, timeout=60)

    async def login(self) -> None:
        from opstage_testing.server import ADMIN_PASSWORD, ADMIN_USERNAME

        r = await self.admin.post(
            "/api/admin/auth/login", json={"username": ADMIN_USERNAME, "password": ADMIN_PASSWORD}
        )
        r.raise_for_status()
        self.admin.headers["X-CSRF-Token"] = r.json()["data"]["csrfToken"]

    def ramp_of(self, n: int) -> float:
        if self.args.ramp is not None:
            return float(self.args.ramp)
        return n / self.args.start_rate

    async def pauses(self) -> dict[str, Any]:
        """The server's collector passes and loop lag so far (runtime diagnostics, ADR 0019);
        empty when a swamped server did not answer in time."""
        import httpx

        try:
            r = await self.admin.get("/api/admin/diagnostics/runtime", timeout=20)
            r.raise_for_status()
        except httpx.HTTPError as exc:
            print(f"  runtime diagnostics: {type(exc).__name__}", file=sys.stderr)
            return {}
        return dict(r.json()["data"]["pauses"])

    async def register_until(self, n: int) -> tuple[int, float]:
        """Agents up to ``n``, each with one service and a `restart` action; (added, seconds)."""
        import httpx

        todo = list(range(len(self.agents), n))
        added = len(todo)
        started = time.monotonic()
        limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
        async with httpx.AsyncClient(base_url=self.url, timeout=60, limits=limits) as agents:

            async def one(i: int) -> tuple[str, str, str]:
                r = await self.admin.post("/api/admin/registration-tokens", json={})
                raw = r.json()["data"]["rawToken"]
                code = f"fleet-{i:06d}"
                body = {"registrationToken": raw, "agent": {"code": code, "name": code}}
                data = (await agents.post("/api/agents/register", json=body)).json()["data"]
                auth = {"Authorization": f"Bearer {data['agentToken']}"}
                service = {
                    "code": f"svc-{i:06d}",
                    "name": f"svc-{i:06d}",
                    "manifest": {},
                    "actions": [{"name": "restart", "label": "Restart"}],
                }
                r = await agents.post(
                    f"/api/agents/{data['agentId']}/services/report",
                    json={"services": [service]},
                    headers=auth,
                )
                r.raise_for_status()
                return data["agentId"], data["agentToken"], r.json()["data"]["services"][0]["id"]

            async def worker(queue: list[int]) -> None:
                while queue:
                    self.agents.append(await one(queue.pop()))

            await asyncio.gather(*(worker(todo) for _ in range(16)))
        return added, time.monotonic() - started

    async def seed_until(self, n: int) -> tuple[int, float]:
        """Agents up to ``n`` in bulk: the same use cases as the API (a registration token, then
        the registration with its service), called in this process on the server's database,
        so no HTTP round trips; (added, seconds)."""
        from opstage.app.context import Actor
        from opstage.runtime import Runtime
        from opstage.settings import Settings

        todo = list(range(len(self.agents), n))
        if not todo:
            return 0, 0.0
        started = time.monotonic()
        settings = Settings(database_url=self.database_url, data_dir=self.workdir, dev_mode=True)
        # Stopped before the step runs: its own WAL checkpointer must not compete with the
        # server's during the measurement.
        self.runtime = await Runtime.start(settings, bootstrap=False)
        ctx, actor = self.runtime.ctx, Actor.system()
        try:
            await self._seed(ctx, actor, todo)
        finally:
            await self.runtime.stop()
            self.runtime = None
        return len(todo), time.monotonic() - started

    async def _seed(self, ctx: Any, actor: Any, todo: list[int]) -> None:
        from opstage.domain.errors import Unavailable

        async def seed(i: int) -> tuple[str, str, str]:
            for attempt in range(20):  # the server writes too: wait out a busy database
                try:
                    return await self.seed_one(ctx, actor, i)
                except Unavailable:
                    await asyncio.sleep(0.2 * (attempt + 1))
            raise RuntimeError("the database stayed busy: could not seed the agents")

        # A few at a time: each registration's transaction waits on its commit, and the
        # ones beside it are written meanwhile.
        for at in range(0, len(todo), 16):
            self.agents.extend(await asyncio.gather(*(seed(i) for i in todo[at : at + 16])))

    @staticmethod
    async def seed_one(ctx: Any, actor: Any, i: int) -> tuple[str, str, str]:
        from opstage.api.inputs import agent_registration
        from opstage.api.models import RegisterAgentRequest
        from opstage.app.agents import register_agent
        from opstage.app.tokens import create_token

        _row, raw = await create_token(
            ctx, actor, name="fleet", expires_in_seconds=None, agent_code=None
        )
        body = {
            "registrationToken": raw,
            "agent": {"code": f"fleet-{i:06d}", "name": f"fleet-{i:06d}"},
            "service": {
                "code": f"svc-{i:06d}",
                "name": f"svc-{i:06d}",
                "manifest": {},
                "actions": [{"name": "restart", "label": "Restart"}],
            },
        }
        # The API's own parsing, so the bench registers exactly what an agent's request would.
        reg = agent_registration(RegisterAgentRequest.model_validate(body))
        out = await register_agent(ctx, actor, reg)
        assert out.service_id is not None
        return out.agent_id, out.agent_token, out.service_id

    async def operator(self, measure_at: float, end_at: float) -> tuple[dict[str, float], int]:
        """An action to a random agent every second: command id -> submit time; errors."""
        import httpx

        submitted: dict[str, float] = {}
        errors = 0
        await asyncio.sleep(max(0.0, measure_at - time.monotonic()))
        due = time.monotonic()
        while due < end_at - 1.0:  # the last one has a second to arrive
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            _agent_id, _token, service = random.choice(self.agents)
            started = time.monotonic()
            try:
                r = await self.admin.post(
                    f"/api/admin/capsule-services/{service}/actions/restart",
                    json={"payload": {}},
                    timeout=30,
                )
            except httpx.HTTPError as exc:
                errors += 1
                print(f"  operator: {type(exc).__name__}", file=sys.stderr)
                due += 1.0 / ACTIONS_PER_SECOND
                continue
            if r.status_code == 200:
                submitted[r.json()["data"]["id"]] = started
            else:
                errors += 1
                print(f"  operator: {r.status_code} {r.text[:200]}", file=sys.stderr)
            due += 1.0 / ACTIONS_PER_SECOND
        return submitted, errors

    async def sample(self, until: float) -> tuple[float, int]:
        rss, fds = 0.0, 0
        while time.monotonic() < until:
            rss, fds = max(rss, rss_mb(self.pid)), max(fds, open_fds(self.pid))
            await asyncio.sleep(2.0)
        return rss, fds

    async def step(self, n: int) -> dict[str, Any]:
        if self.args.register == "api":
            added, reg_seconds = await self.register_until(n)
        else:
            added, reg_seconds = await self.seed_until(n)
        agents_file = self.workdir / "agents.txt"
        agents_file.write_text("".join(" ".join(a) + "\n" for a in self.agents[:n]))
        ramp = self.ramp_of(n)
        now = time.monotonic()
        measure_at = now + 2.0 + ramp
        end_at = measure_at + self.args.duration
        host, port = self.url.removeprefix("http://").split(":")
        procs, outs = [], []
        for i in range(self.args.load_procs):
            out = self.workdir / f"load-{n}-{i}.json"
            outs.append(out)
            cmd = [
                sys.executable, __file__, "--load", "--agents-file", str(agents_file),
                "--index", str(i), "--procs", str(self.args.load_procs), "--host", host,
                "--port", port, "--ramp", str(ramp), "--measure-at", repr(measure_at),
                "--end-at", repr(end_at), "--out", str(out),
            ]  # fmt: skip
            procs.append(spawn(cmd))
        profiler = None
        profile = PROFILE_DIR / f"fleet-{n}-profile.txt"
        if self.args.profile:
            await asyncio.sleep(max(0.0, measure_at - time.monotonic()))
            PROFILE_DIR.mkdir(parents=True, exist_ok=True)
            profiler = spawn(
                [
                    py_spy(), "record", "--rate", "50", "--format", "raw", "--nonblocking",
                    "--pid", str(self.pid), "--duration", f"{self.args.duration:g}",
                    "--output", str(profile),
                ],
                quiet=True,
            )  # fmt: skip
        tcp0 = tcp_counters()
        await asyncio.sleep(max(0.0, measure_at - time.monotonic()))
        # The window's figures are taken at its edges, before anything that asks the server:
        # a swamped server answers late, and a late start would shrink the window to nothing.
        server0, busy0, wall0 = process_cpu_seconds(self.pid), machine_busy_seconds(), time.time()
        system0 = process_user_system_seconds(self.pid)[1]
        tcp1 = tcp_counters()
        sampling = asyncio.create_task(self.sample(end_at))
        pausing = asyncio.create_task(self.pauses())
        submitted, operator_errors = await self.operator(measure_at, end_at)
        await asyncio.sleep(max(0.0, end_at - time.monotonic()))
        server_cpu = process_cpu_seconds(self.pid) - server0
        server_system = process_user_system_seconds(self.pid)[1] - system0
        busy = machine_busy_seconds() - busy0
        wall = time.time() - wall0
        tcp2 = tcp_counters()
        rss, fds = await sampling
        pauses0, pauses1 = await pausing, await self.pauses()
        pauses = pause_delta(pauses0, pauses1) if pauses0 and pauses1 else {}
        for p in procs:
            p.wait(timeout=120)
        if profiler is not None:
            profiler.wait(timeout=120)
        loads = [json.loads(o.read_text()) for o in outs]
        heartbeats = [x for load in loads for x in load["heartbeats"]]
        received: dict[str, float] = {}
        errors: dict[str, int] = {}
        for load in loads:
            received.update(load["received"])
            for k, v in load["errors"].items():
                errors[k] = errors.get(k, 0) + v
        delays = [received[c] - t for c, t in submitted.items() if c in received]
        missing = len(submitted) - len(delays)
        if missing:
            errors["action never reached its agent"] = missing
        if operator_errors:
            errors["operator submit failed"] = operator_errors
        load_cpu = sum(load["cpu_seconds"] for load in loads)
        calls = len(heartbeats) + sum(load["reopens"] for load in loads) + len(submitted)
        hb_p99 = 1000 * percentile(heartbeats, 99)
        act_p99 = 1000 * percentile(delays, 99)
        ok = hb_p99 < HEARTBEAT_P99_MS and act_p99 < ACTION_P99_MS and not errors
        return {
            "agents": n,
            "registered": added,
            "register_seconds": reg_seconds,
            "heartbeats": len(heartbeats),
            "heartbeat_p50_ms": 1000 * percentile(heartbeats, 50),
            "heartbeat_p99_ms": hb_p99,
            "heartbeat_max_ms": 1000 * max(heartbeats, default=float("nan")),
            "actions": len(delays),
            "action_p50_ms": 1000 * percentile(delays, 50),
            "action_p99_ms": act_p99,
            "reopens_per_s": sum(load["reopens"] for load in loads) / wall,
            "heartbeats_per_s": len(heartbeats) / wall,
            "errors": errors,
            "server_cpu_pct": 100 * server_cpu / wall,
            # In the kernel: accepting, reading, writing and closing sockets, epoll, fsync.
            "server_system_pct": 100 * server_system / wall,
            # Per agent call (heartbeats, long-polls answered, actions): a figure that a busy
            # machine bends less than latency (ADR 0017).
            "server_cpu_us_per_call": 1e6 * server_cpu / max(1, calls),
            "server_rss_mb": rss,
            "server_fds": fds,
            "load_cpu_pct": 100 * load_cpu / wall,
            "others_cpu_pct": max(0.0, 100 * (busy - server_cpu - load_cpu) / wall),
            "pass": ok,
            "ramp_seconds": ramp,
            "ramp_listen_overflows": tcp1["ListenOverflows"] - tcp0["ListenOverflows"],
            "ramp_syn_retransmits": tcp1["TCPSynRetrans"] - tcp0["TCPSynRetrans"],
            "listen_overflows": tcp2["ListenOverflows"] - tcp1["ListenOverflows"],
            "syn_retransmits": tcp2["TCPSynRetrans"] - tcp1["TCPSynRetrans"],
            **pauses,
            "profile": str(profile) if profiler is not None else None,
        }


def pause_delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """What the step added: full passes and their time, young passes' time, the loop's lag."""
    full0, full1 = before["gc"][2], after["gc"][2]
    young = sum(g["totalMs"] for g in after["gc"][:2]) - sum(g["totalMs"] for g in before["gc"][:2])
    lag0, lag1 = before["loopLag"], after["loopLag"]
    return {
        "gc_full_passes": full1["passes"] - full0["passes"],
        "gc_full_ms": full1["totalMs"] - full0["totalMs"],
        # The longest pass since the server started (a maximum has no per-step delta).
        "gc_max_ms_since_start": max(g["maxMs"] for g in after["gc"]),
        "gc_young_ms": young,
        "lag_samples": lag1["samples"] - lag0["samples"],
        "lag_over_100ms": lag1["over100Ms"] - lag0["over100Ms"],
        "lag_max_ms_since_start": lag1["maxMs"],
    }


def py_spy() -> str:
    from run import ensure_py_spy  # installs it into this environment when missing

    return ensure_py_spy()


HEADER = (
    f"{'agents':>7} {'reg/s':>6} {'hb/s':>5} {'polls/s':>7} {'hb p50':>7} {'hb p99':>7} "
    f"{'act p50':>7} {'act p99':>7} {'errors':>6} {'srv CPU%':>8} {'sys%':>5} {'µs/call':>7} "
    f"{'RSS MB':>7} "
    f"{'fds':>6} "
    f"{'load CPU%':>9} {'others%':>7} {'full GC':>7} {'GC ms':>6} {'lag>0.1s':>8} "
    f"{'acc ovf':>7}  SLO"
)


def row(r: dict[str, Any]) -> str:
    nan = float("nan")
    reg = r["registered"] / r["register_seconds"] if r["registered"] else float("nan")
    return (
        f"{r['agents']:>7} {reg:>6.0f} {r['heartbeats_per_s']:>5.0f} {r['reopens_per_s']:>7.0f} "
        f"{r['heartbeat_p50_ms']:>7.1f} {r['heartbeat_p99_ms']:>7.1f} {r['action_p50_ms']:>7.1f} "
        f"{r['action_p99_ms']:>7.1f} {sum(r['errors'].values()):>6} {r['server_cpu_pct']:>8.0f} "
        f"{r.get('server_system_pct', nan):>5.0f} "
        f"{r.get('server_cpu_us_per_call', float('nan')):>7.0f} "
        f"{r['server_rss_mb']:>7.0f} {r['server_fds']:>6} {r['load_cpu_pct']:>9.0f} "
        f"{r['others_cpu_pct']:>7.0f} {r.get('gc_full_passes', '?'):>7} "
        f"{r.get('gc_full_ms', nan) + r.get('gc_young_ms', nan):>6.0f} "
        f"{r.get('lag_over_100ms', '?'):>8} {r.get('listen_overflows', 0):>7}  "
        f"{'PASS' if r['pass'] else 'MISS'}"
    )


async def conduct(args: argparse.Namespace) -> int:
    from opstage_testing.server import ServerProcess

    fd_limit = raise_fd_limit()
    from opstage.cli.open_files import agents_within

    most = agents_within(fd_limit)
    load_ave = os.getloadavg()
    print(
        f"Opstage fleet bench  {time.strftime('%Y-%m-%d %H:%M:%S')}  {os.cpu_count()} CPU, "
        f"load average {load_ave[0]:.1f} {load_ave[1]:.1f} {load_ave[2]:.1f}\n"
        f"RLIMIT_NOFILE raised to its hard limit, {fd_limit}, for the server and the "
        f"{args.load_procs} load processes: one node can park at most ~{most} long-polls\n"
        f"SLO: heartbeat p99 < {HEARTBEAT_P99_MS:g} ms, action->agent p99 < {ACTION_P99_MS:g} ms, "
        f"no errors; {args.duration:g} s per step after a ramp of "
        + (f"{args.ramp:g} s" if args.ramp is not None else f"N / {args.start_rate:g} s")
    )
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="opstage-fleet-") as tmp:
        server = ServerProcess(data_dir=Path(tmp), env=dict(SERVER_ENV)).start()
        assert server.proc is not None
        conductor = Conductor(args, server.url, server.proc.pid, Path(tmp))
        try:
            await conductor.login()
            print(HEADER, flush=True)
            for n in args.steps:
                result = await conductor.step(n)
                results.append(result)
                print(row(result), flush=True)
                if result["errors"]:
                    print(f"        errors: {result['errors']}", flush=True)
                if result["ramp_listen_overflows"]:
                    print(
                        f"        ramp ({result['ramp_seconds']:.0f} s): "
                        f"{result['ramp_listen_overflows']} listen-queue overflows, "
                        f"{result['ramp_syn_retransmits']} SYNs resent",
                        flush=True,
                    )
                if not result["pass"] and not args.keep_going:
                    break
                if args.keep_going and n >= args.listed[-1]:
                    break
        finally:
            await conductor.admin.aclose()
            if conductor.runtime is not None:
                await conductor.runtime.stop()
            server.stop()
    passed = [r["agents"] for r in results if r["pass"]]
    print(f"\nlargest N within the SLO: {max(passed) if passed else 'none'}")
    for r in results:
        if r["registered"]:
            print(
                f"registration: {r['registered']} agents (token, register, service report) in "
                f"{r['register_seconds']:.1f} s = {r['registered'] / r['register_seconds']:.0f}/s"
            )
    missed = [r for r in results if not r["pass"]]
    if missed and missed[0]["profile"]:
        from profile_summary import summarise

        print(f"\nserver profile of the step that missed ({missed[0]['profile']}):")
        print(summarise(Path(missed[0]["profile"]), top=20))
    out = BENCH / "results" / "fleet.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"fd_limit": fd_limit, "steps": results}, indent=2))
    return 0


def extend(values: list[int]) -> list[int]:
    last = values[-1]
    step = 10_000 if last >= 10_000 else last
    return values + [last + step * k for k in range(1, 20)]  # "… until a step fails"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", dest="steps_text", default="1000,5000,10000,20000")
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument(
        "--start-rate",
        type=float,
        default=250.0,
        help="agents started per second in a step's ramp (default 250: N agents ramp N/250 s)",
    )
    parser.add_argument(
        "--ramp", type=float, default=None, help="a fixed ramp in seconds for every step instead"
    )
    parser.add_argument("--load-procs", type=int, default=3)
    parser.add_argument("--no-profile", dest="profile", action="store_false")
    parser.add_argument(
        "--keep-going",
        action="store_true",
        help="run every listed step even after one misses (a busy shared machine)",
    )
    parser.add_argument(
        "--register",
        choices=["bulk", "api"],
        default="bulk",
        help="bulk: the registration use cases in this process; api: over HTTP (slower)",
    )
    # A load process (started by the conductor).
    parser.add_argument("--load", action="store_true", help=argparse.SUPPRESS)
    for name in ("--agents-file", "--host", "--out"):
        parser.add_argument(name, help=argparse.SUPPRESS)
    for name in ("--index", "--procs", "--port"):
        parser.add_argument(name, type=int, help=argparse.SUPPRESS)
    for name in ("--measure-at", "--end-at"):
        parser.add_argument(name, type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.listed = [int(x) for x in args.steps_text.split(",") if x.strip()]
    args.steps = extend(args.listed)
    if args.load:
        raise_fd_limit()
        load_main(args)
        return 0
    return asyncio.run(conduct(args))


if __name__ == "__main__":
    sys.exit(main())
