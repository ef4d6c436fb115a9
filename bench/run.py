"""Opstage load bench: one real server, one run, figures and ratios against the targets.

Starts `opstage serve` (single-process uvicorn, SQLite in a temp dir, access log off),
registers 50 agents with one service each, then measures from separate processes on loopback:

  bare        GET /health (JSON, no database): the ceiling of the same server stack
  version     GET /api/system/version (no database, but the AppContext dependency)
  heartbeat   POST /api/agents/{id}/heartbeat {"health":{"status":"UP"}}, round-robin over
              the 50 agents
  poll        GET /api/agents/{id}/commands (plain poll), round-robin over the 50 agents
  bare again  the ceiling once more, to show drift within the run
  submit      operator action submit -> the agent's long-poll (waitSeconds=30) answers

Load comes from `wrk -t1 -c50` (installed with apt-get when missing and root) or, failing that,
bench/loadgen.py in its own process. Writes bench/results/latest.json.

    .venv/bin/python bench/run.py [--duration 10] [--warmup 2] [--client wrk|python] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT / "packages" / "opstage"))

from opstage_testing.server import ADMIN_PASSWORD, ADMIN_USERNAME, ServerProcess  # noqa: E402

AGENTS = 50
CONNECTIONS = 50
SUBMIT_SAMPLES = 50
LONG_POLL_SECONDS = 30
PARK_SECONDS = 0.1  # let the long-poll reach the server and wait before the operator submits
PROFILE_PATH = BENCH / "results" / "heartbeat-profile.txt"
SERVER_ENV = {"OPSTAGE_ACCESS_LOG": "false", "OPSTAGE_LOG_LEVEL": "WARNING"}
# key: (label, limit, value must be at least the limit?, unit)
TARGETS = {
    "heartbeat_vs_bare_pct": ("heartbeat req/s >= 60% of bare", 60.0, True, "%"),
    "heartbeat_rps": ("heartbeat req/s >= 4000", 4000.0, True, "req/s"),
    "heartbeat_p99_ms": ("heartbeat p99 <= 50 ms", 50.0, False, "ms"),
    "submit_p50_ms": ("submit->agent p50 <= 20 ms", 20.0, False, "ms"),
}


# --- tools ----------------------------------------------------------------------------------
def ensure_wrk() -> str | None:
    """`wrk` from Debian; install it when missing and we are root. None when unavailable."""
    found = shutil.which("wrk")
    if found or os.geteuid() != 0 or not shutil.which("apt-get"):
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "wrk"]
    for cmd in (install, ["apt-get", "update", "-q"], install):  # update only if needed
        print("$ " + " ".join(cmd), file=sys.stderr)
        subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, check=False)
        if shutil.which("wrk"):
            break
    return shutil.which("wrk")


def ensure_py_spy() -> str:
    found = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if not found:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "py-spy"], check=True)
        found = shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if not found:
        raise RuntimeError("py-spy could not be installed")
    return found


def process_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _cpu_fields() -> list[int]:
    return [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]


def machine_busy_seconds() -> float:
    """CPU-seconds all processes on the machine have used (first line of /proc/stat)."""
    fields = _cpu_fields()
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def steal_seconds() -> float:
    """CPU-seconds the hypervisor gave to other guests while ours wanted to run.

    A virtual machine's "slow phases" show here: the same code, fewer cycles.
    """
    return _cpu_fields()[7] / os.sysconf("SC_CLK_TCK")


def server_errors(log: str) -> dict[str, int]:
    """Error lines in the server's JSON log, counted by exception (type: message)."""
    counts: dict[str, int] = {}
    for line in log.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("level") in ("error", "critical") and entry.get("logger") != "uvicorn.error":
            text = (entry.get("exc") or entry.get("msg") or "").splitlines()
            # The exception's own line: not indented, not SQLAlchemy's "[SQL: ...]" appendix.
            heads = [x for x in text if x and not x[0].isspace() and not x.startswith("[")]
            key = heads[-1][:160] if heads else "?"
            counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def machine() -> dict[str, Any]:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


# --- setup ----------------------------------------------------------------------------------
def setup_agents(url: str, agents_file: Path) -> list[dict[str, str]]:
    """Register the agents, one service with a `restart` action each; write id/token lines."""
    agents: list[dict[str, str]] = []
    with httpx.Client(base_url=url, timeout=30) as admin:
        r = admin.post(
            "/api/admin/auth/login", json={"username": ADMIN_USERNAME, "password": ADMIN_PASSWORD}
        )
        r.raise_for_status()
        admin.headers["X-CSRF-Token"] = r.json()["data"]["csrfToken"]
        for i in range(AGENTS):
            raw = admin.post("/api/admin/registration-tokens", json={}).json()["data"]["rawToken"]
            code = f"bench-{i:02d}"
            body = {"registrationToken": raw, "agent": {"code": code, "name": code}}
            data = admin.post("/api/agents/register", json=body).json()["data"]
            auth = {"Authorization": f"Bearer {data['agentToken']}"}
            base = f"/api/agents/{data['agentId']}"
            admin.post(f"{base}/heartbeat", json={}, headers=auth).raise_for_status()
            service = {
                "code": f"svc-{i:02d}",
                "name": f"svc-{i:02d}",
                "manifest": {},
                "actions": [{"name": "restart", "label": "Restart"}],
            }
            r = admin.post(f"{base}/services/report", json={"services": [service]}, headers=auth)
            r.raise_for_status()
            service_id = r.json()["data"]["services"][0]["id"]
            agents.append(
                {"id": data["agentId"], "token": data["agentToken"], "service": service_id}
            )
    agents_file.write_text("".join(f"{a['id']} {a['token']}\n" for a in agents))
    return agents


# --- throughput phases ----------------------------------------------------------------------
def load_command(client: str, url: str, agents_file: Path, mode: str, seconds: float) -> list[str]:
    if client == "wrk":
        return [
            "wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds:g}s", "--timeout", "10s",
            "-s", str(BENCH / "agents.lua"), url, "--", str(agents_file), mode,
        ]  # fmt: skip
    return [
        sys.executable, str(BENCH / "loadgen.py"), "--url", url, "--agents", str(agents_file),
        "--mode", mode, "--connections", str(CONNECTIONS), "--duration", f"{seconds:g}",
    ]  # fmt: skip


def run_load(cmd: list[str], server_pid: int) -> dict[str, Any]:
    server0, children0, wall0 = process_cpu_seconds(server_pid), children_cpu_seconds(), time.time()
    busy0, steal0 = machine_busy_seconds(), steal_seconds()
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stderr}")
    out = done.stdout
    wall = time.time() - wall0
    server_cpu = 100 * (process_cpu_seconds(server_pid) - server0) / wall
    loadgen_cpu = 100 * (children_cpu_seconds() - children0) / wall
    busy = 100 * (machine_busy_seconds() - busy0) / wall
    steal = 100 * (steal_seconds() - steal0) / wall
    line = next(x for x in out.splitlines() if x.startswith("WRK_JSON "))
    raw = json.loads(line.removeprefix("WRK_JSON "))
    errors = sum(raw[k] for k in raw if k.endswith("_errors") or k == "timeouts")
    return {
        "rps": raw["requests"] / (raw["duration_us"] / 1e6),
        "requests": raw["requests"],
        "p50_ms": raw["p50_us"] / 1000,
        "p90_ms": raw["p90_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "max_ms": raw["max_us"] / 1000,
        "errors": errors,
        "server_cpu_pct": server_cpu,
        "loadgen_cpu_pct": loadgen_cpu,
        # Everything else on the machine (other people's tests, ...), in % of one CPU.
        "other_cpu_pct": max(0.0, busy - server_cpu - loadgen_cpu - steal),
        "steal_pct": steal,
    }


def phase(
    client: str, url: str, agents_file: Path, mode: str, args: argparse.Namespace, pid: int
) -> dict[str, Any]:
    if args.warmup > 0:
        run_load(load_command(client, url, agents_file, mode, args.warmup), pid)
    cmd = load_command(client, url, agents_file, mode, args.duration)
    profiler = None
    if args.profile and mode == "heartbeat":
        flags = ["--rate", "200", "--format", "raw", "--nonblocking", "--threads", "--gil"]
        target = ["--pid", str(pid), "--duration", f"{args.duration:g}"]
        PROFILE_PATH.parent.mkdir(parents=True, exist_ok=True)
        profiler = subprocess.Popen(
            [ensure_py_spy(), "record", *flags, *target, "--output", str(PROFILE_PATH)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    result = run_load(cmd, pid)
    if profiler is not None:
        profiler.wait(timeout=60)
    result["command"] = " ".join(cmd)
    return result


# --- submit -> agent ------------------------------------------------------------------------
async def submit_to_agent(url: str, agents: list[dict[str, str]]) -> dict[str, Any]:
    """Per sample: the agent long-polls; the operator submits; time until the poll answers."""
    samples: list[float] = []
    submit_rtts: list[float] = []
    limits = httpx.Limits(max_connections=10, max_keepalive_connections=10)
    async with (
        httpx.AsyncClient(base_url=url, timeout=60) as admin,
        httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as agent_http,
    ):
        r = await admin.post(
            "/api/admin/auth/login", json={"username": ADMIN_USERNAME, "password": ADMIN_PASSWORD}
        )
        admin.headers["X-CSRF-Token"] = r.json()["data"]["csrfToken"]
        for i in range(SUBMIT_SAMPLES):
            agent = agents[i % len(agents)]
            auth = {"Authorization": f"Bearer {agent['token']}"}
            base = f"/api/agents/{agent['id']}"
            await agent_http.post(f"{base}/heartbeat", json={}, headers=auth)

            async def long_poll(base: str = base, auth: dict[str, str] = auth) -> tuple[Any, float]:
                r = await agent_http.get(
                    f"{base}/commands", params={"waitSeconds": LONG_POLL_SECONDS}, headers=auth
                )
                return r.json()["data"], time.perf_counter()

            poll = asyncio.create_task(long_poll())
            await asyncio.sleep(PARK_SECONDS)
            if poll.done():
                raise RuntimeError(f"long-poll returned early: {poll.result()[0]}")
            started = time.perf_counter()
            r = await admin.post(
                f"/api/admin/capsule-services/{agent['service']}/actions/restart",
                json={"payload": {}},
            )
            submit_rtts.append(time.perf_counter() - started)
            if r.status_code != 200:
                raise RuntimeError(f"submit failed: {r.status_code} {r.text}")
            command_id = r.json()["data"]["id"]
            commands, arrived = await poll
            if [c["id"] for c in commands] != [command_id]:
                raise RuntimeError(f"agent received {commands}, expected {command_id}")
            samples.append(arrived - started)
            stamp = "2026-01-01T00:00:00.000Z"
            r = await agent_http.post(
                f"{base}/commands/{command_id}/result",
                json={"success": True, "startedAt": stamp, "finishedAt": stamp},
                headers=auth,
            )
            r.raise_for_status()
    ordered = sorted(samples)
    return {
        "samples": len(samples),
        "p50_ms": 1000 * statistics.median(ordered),
        "p99_ms": 1000 * percentile(ordered, 99),
        "max_ms": 1000 * ordered[-1],
        "min_ms": 1000 * ordered[0],
        "submit_rtt_p50_ms": 1000 * statistics.median(submit_rtts),
    }


def percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile (with 50 samples p99 is the largest)."""
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


# --- report ---------------------------------------------------------------------------------
def verdicts(phases: dict[str, Any], submit: dict[str, Any]) -> list[dict[str, Any]]:
    values = {
        "heartbeat_vs_bare_pct": 100 * phases["heartbeat"]["rps"] / phases["bare_mean_rps"],
        "heartbeat_rps": phases["heartbeat"]["rps"],
        "heartbeat_p99_ms": phases["heartbeat"]["p99_ms"],
        "submit_p50_ms": submit["p50_ms"],
    }
    failed = sum(phases[m]["errors"] for m in ("heartbeat", "poll"))
    rows = [
        {"target": "heartbeat and poll: no errors", "value": failed, "limit": 0, "unit": "errors",
         "pass": failed == 0, "miss_pct": 0.0}
    ]  # fmt: skip
    for key, (label, limit, at_least, unit) in TARGETS.items():
        value = values[key]
        ok = value >= limit if at_least else value <= limit
        miss = 0.0 if ok else round(abs(value - limit) / limit * 100, 1)
        rows.append(
            {"target": label, "value": value, "limit": limit, "unit": unit, "pass": ok,
             "miss_pct": miss}
        )  # fmt: skip
    return rows


def render(result: dict[str, Any]) -> str:
    p, s = result["phases"], result["submit_to_agent"]
    lines = [
        f"Opstage bench  {result['started']}  "
        + ("wrk -t1" if result["client"] == "wrk" else "bench/loadgen.py")
        + f" -c{CONNECTIONS}  {result['duration_s']:g}s after {result['warmup_s']:g}s warm-up",
        f"machine: {result['machine']['nproc']} CPU, {result['machine']['cpu']}, "
        f"Python {result['machine']['python']}; load average at start "
        f"{' '.join(result['loadavg_at_start'])}"
        + ("; PROFILED (py-spy)" if result["profiled"] else ""),
        "",
        f"{'':<41}{'CPU % of one core':>33}",
        f"{'phase':<13}{'req/s':>7}{'p50 ms':>8}{'p99 ms':>8}{'max ms':>8}{'errors':>7}"
        f"{'server':>10}{'loadgen':>9}{'others':>8}",
    ]
    for name in ("bare", "version", "heartbeat", "poll", "bare_again"):
        r = p[name]
        lines.append(
            f"{name:<13}{r['rps']:>7.0f}{r['p50_ms']:>8.1f}{r['p99_ms']:>8.1f}{r['max_ms']:>8.1f}"
            f"{r['errors']:>7}{r['server_cpu_pct']:>10.0f}{r['loadgen_cpu_pct']:>9.0f}"
            f"{r['other_cpu_pct']:>8.0f}"
        )
    lines += [
        "",
        f"submit->agent (long-poll, n={s['samples']}): p50 {s['p50_ms']:.2f} ms  "
        f"p99 {s['p99_ms']:.2f} ms  min {s['min_ms']:.2f}  max {s['max_ms']:.2f} ms  "
        f"(submit request alone p50 {s['submit_rtt_p50_ms']:.2f} ms)",
        f"  CPU % of one core: server {s['server_cpu_pct']:.0f}, client "
        f"{s['client_cpu_pct']:.0f}, others {s['other_cpu_pct']:.0f}",
        "",
        f"bare mean {p['bare_mean_rps']:.0f} req/s (drift within run "
        f"{result['ratios']['bare_drift_pct']:+.1f}%)  heartbeat/bare "
        f"{result['ratios']['heartbeat_vs_bare'] * 100:.1f}%  poll/bare "
        f"{result['ratios']['poll_vs_bare'] * 100:.1f}%  version/bare "
        f"{result['ratios']['version_vs_bare'] * 100:.1f}%",
        "",
    ]
    for v in result["targets"]:
        if v["pass"]:
            verdict = "PASS"
        elif v["limit"]:
            verdict = f"MISS by {v['miss_pct']:.1f}%"
        else:
            verdict = "FAIL: the throughput figures above are not valid"
        lines.append(f"  {v['target']:<34}{v['value']:>10.1f} {v['unit']:<6} {verdict}")
    if result["server_log_errors"]:
        lines += ["", "server log errors (count, exception):"]
        lines += [f"  {n:>6}  {exc}" for exc, n in result["server_log_errors"].items()]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description="Opstage load bench")
    parser.add_argument("--duration", type=int, default=10, help="seconds measured per phase")
    parser.add_argument("--warmup", type=int, default=2, help="seconds discarded per phase")
    parser.add_argument("--client", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--profile", action="store_true", help="py-spy the heartbeat phase")
    parser.add_argument("--output", type=Path, default=BENCH / "results" / "latest.json")
    args = parser.parse_args()

    client = args.client
    if client != "python" and ensure_wrk() is None:
        if client == "wrk":
            raise SystemExit("wrk is not available")
        print("wrk unavailable: falling back to bench/loadgen.py", file=sys.stderr)
        client = "python"
    elif client == "auto":
        client = "wrk"

    load_at_start = Path("/proc/loadavg").read_text().split()[:3]
    with tempfile.TemporaryDirectory(prefix="opstage-bench-") as tmp:
        server = ServerProcess(data_dir=Path(tmp), env=dict(SERVER_ENV)).start()
        try:
            assert server.proc is not None
            pid = server.proc.pid
            agents_file = Path(tmp) / "agents.txt"
            agents = setup_agents(server.url, agents_file)
            started = time.strftime("%Y-%m-%d %H:%M:%S")
            phases = {
                mode: phase(client, server.url, agents_file, mode, args, pid)
                for mode in ("bare", "version", "heartbeat", "poll")
            }
            phases["bare_again"] = phase(client, server.url, agents_file, "bare", args, pid)
            cpu0, own0, busy0 = (
                process_cpu_seconds(pid),
                time.process_time(),
                machine_busy_seconds(),
            )
            wall0 = time.time()
            submit = asyncio.run(submit_to_agent(server.url, agents))
            wall, server_cpu = time.time() - wall0, process_cpu_seconds(pid) - cpu0
            own = time.process_time() - own0
            others = machine_busy_seconds() - busy0 - server_cpu - own
            submit["server_cpu_pct"] = 100 * server_cpu / wall
            submit["client_cpu_pct"] = 100 * own / wall
            submit["other_cpu_pct"] = max(0.0, 100 * others / wall)
        finally:
            server.stop()
            errors = server_errors(server.log())
    bare_mean = (phases["bare"]["rps"] + phases["bare_again"]["rps"]) / 2
    phases["bare_mean_rps"] = bare_mean
    result: dict[str, Any] = {
        "started": started,
        "client": client,
        "connections": CONNECTIONS,
        "agents": AGENTS,
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "server_env": SERVER_ENV,
        "server": "opstage serve (uvicorn, 1 process, SQLite)",
        "machine": machine(),
        "profiled": args.profile,
        "loadavg_at_start": load_at_start,
        "server_log_errors": errors,
        "phases": phases,
        "submit_to_agent": submit,
        "ratios": {
            "heartbeat_vs_bare": phases["heartbeat"]["rps"] / bare_mean,
            "poll_vs_bare": phases["poll"]["rps"] / bare_mean,
            "version_vs_bare": phases["version"]["rps"] / bare_mean,
            "bare_drift_pct": (phases["bare_again"]["rps"] / phases["bare"]["rps"] - 1) * 100,
        },
        "targets": verdicts(phases, submit),
    }
    print(render(result))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {args.output}")
    if args.profile:
        from profile_summary import summarise

        print(
            f"\nheartbeat profile ({PROFILE_PATH}):\n"
            + summarise(PROFILE_PATH, top=20, match="opstage/")
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
