"""Python agent latency: operator submits an action → the handler is running in the agent.

Starts a real `opstage serve` (SQLite in a temp dir, access log off), connects an AsyncAgent
(opstage-agent) with a no-op async action, then submits the action as an operator, one at a
time, and measures from just before the operator's POST to the first line of the handler —
both clocks are this process's ``perf_counter``. Between samples it waits ``--gap`` seconds so
the agent's next poll is parked, as it is when commands are sporadic.

    .venv/bin/python bench/sdk_latency.py [--samples 50] [--warmup 5] [--mode longpoll|polling]

``--mode polling`` starts the server with OPSTAGE_LONG_POLL_ENABLED=false, so the agent polls
on the server's advertised interval (5 s) — the reference server's behaviour, for comparison;
submissions are then spread at random over the interval.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "packages" / "opstage"))

from opstage_agent import AsyncAgent  # noqa: E402
from opstage_testing.server import ADMIN_PASSWORD, ADMIN_USERNAME, ServerProcess  # noqa: E402

SERVER_ENV = {"OPSTAGE_ACCESS_LOG": "false", "OPSTAGE_LOG_LEVEL": "WARNING"}
POLL_INTERVAL_SECONDS = 5.0  # what the server advertises by default


class PollClock(httpx.AsyncHTTPTransport):
    """The real transport, noting when the last command poll's answer was fully received —
    the boundary between the server's share of the latency and the SDK's."""

    answered = 0.0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await super().handle_async_request(request)
        if request.url.path.endswith("/commands"):
            await response.aread()
            self.answered = time.perf_counter()
        return response


async def operator_session(url: str) -> httpx.AsyncClient:
    # keepalive_expiry under uvicorn's 5 s idle close, as the SDK does.
    client = httpx.AsyncClient(base_url=url, timeout=30, limits=httpx.Limits(keepalive_expiry=4.0))
    r = await client.post(
        "/api/admin/auth/login", json={"username": ADMIN_USERNAME, "password": ADMIN_PASSWORD}
    )
    r.raise_for_status()
    client.headers["X-CSRF-Token"] = r.json()["data"]["csrfToken"]
    return client


async def measure(
    url: str, data_dir: Path, samples: int, warmup: int, gap: float, spread: float
) -> tuple[list[float], list[float]]:
    """Per sample: submit → handler running, and poll answer received → handler running."""
    operator = await operator_session(url)
    token = (await operator.post("/api/admin/registration-tokens", json={"name": "bench"})).json()
    clock = PollClock()
    agent = AsyncAgent(
        transport=clock,
        backend_url=url,
        agent_code="bench-sdk",
        registration_token=token["data"]["rawToken"],
        token_file=data_dir / "bench-agent.json",
    )
    running: dict[int, float] = {}
    arrived = asyncio.Event()

    @agent.action(label="No-op")
    async def noop(payload: dict[str, Any]) -> None:
        running[payload["seq"]] = time.perf_counter()
        arrived.set()

    latencies: list[float] = []
    in_sdk: list[float] = []
    async with agent:
        await agent.wait_ready(30)
        services = (
            await operator.get("/api/admin/capsule-services", params={"agentId": agent.agent_id})
        ).json()["data"]
        path = f"/api/admin/capsule-services/{services[0]['id']}/actions/noop"
        for seq in range(warmup + samples):
            # With interval polling the phase matters: spread submissions over the interval.
            await asyncio.sleep(gap + random.uniform(0, spread))
            arrived.clear()
            submitted = time.perf_counter()
            r = await operator.post(path, json={"payload": {"seq": seq}})
            r.raise_for_status()
            await asyncio.wait_for(arrived.wait(), 30)
            if seq >= warmup:
                latencies.append(running[seq] - submitted)
                in_sdk.append(running[seq] - clock.answered)
    await operator.aclose()
    return latencies, in_sdk


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile: the smallest value with at least q % of samples at or below."""
    rank = max(1, int(-(-q * len(sorted_values) // 100)))
    return sorted_values[rank - 1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--gap", type=float, default=0.1, help="seconds between submissions")
    parser.add_argument("--mode", choices=["longpoll", "polling"], default="longpoll")
    args = parser.parse_args()
    if args.samples < 30:
        parser.error("--samples must be at least 30 for a p99 worth printing")

    env = dict(SERVER_ENV)
    spread = 0.0
    if args.mode == "polling":
        env["OPSTAGE_LONG_POLL_ENABLED"] = "false"
        spread = POLL_INTERVAL_SECONDS
    with tempfile.TemporaryDirectory(prefix="opstage-sdk-bench-") as tmp:
        server = ServerProcess(Path(tmp) / "server", env=env).start()
        try:
            latencies, in_sdk = asyncio.run(
                measure(server.url, Path(tmp), args.samples, args.warmup, args.gap, spread)
            )
        finally:
            server.stop()

    ms = sorted(v * 1000 for v in latencies)
    print(f"Python agent (AsyncAgent, {args.mode}): submit -> handler running")
    print(
        f"  machine   {platform.machine()}, {platform.python_implementation()} "
        f"{platform.python_version()}, SQLite, loopback"
    )
    apart = f"{args.gap:g} s" if not spread else f"{args.gap:g}-{args.gap + spread:g} s"
    print(f"  samples   {len(ms)} (after {args.warmup} warm-up), {apart} apart")
    print(f"  p50       {percentile(ms, 50):8.2f} ms")
    print(f"  p90       {percentile(ms, 90):8.2f} ms")
    print(f"  p99       {percentile(ms, 99):8.2f} ms")
    print(f"  max       {ms[-1]:8.2f} ms")
    print(f"  mean      {statistics.fmean(ms):8.2f} ms")
    sdk = sorted(v * 1000 for v in in_sdk)
    print(
        f"  of which in the SDK (poll answer received -> handler running): "
        f"p50 {percentile(sdk, 50):.2f} ms, p99 {percentile(sdk, 99):.2f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
