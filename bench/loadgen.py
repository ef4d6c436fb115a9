"""Fallback load generator when `wrk` is unavailable: asyncio, raw HTTP/1.1 keep-alive sockets.

Run as its own process (bench/run.py does): connection k sends requests for agent k % N, one
at a time, for ``--duration`` seconds, then prints one ``WRK_JSON {...}`` line shaped like the
one bench/agents.lua prints, so run.py reads both the same way.

    python bench/loadgen.py --url http://127.0.0.1:8080 --agents FILE --mode heartbeat \
        --connections 50 --duration 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from urllib.parse import urlsplit

HEARTBEAT_BODY = b'{"health":{"status":"UP"}}'


def build_request(host: str, mode: str, agent_id: str, token: str) -> bytes:
    if mode == "heartbeat":
        path, method, body = f"/api/agents/{agent_id}/heartbeat", "POST", HEARTBEAT_BODY
    elif mode == "poll":
        path, method, body = f"/api/agents/{agent_id}/commands", "GET", b""
    elif mode == "version":
        path, method, body = "/api/system/version", "GET", b""
    else:
        path, method, body = "/health", "GET", b""
    head = f"{method} {path} HTTP/1.1\r\nHost: {host}\r\n"
    if mode in ("heartbeat", "poll"):
        head += f"Authorization: Bearer {token}\r\n"
    if body:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


async def read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length:
        await reader.readexactly(length)
    return status


async def connection(
    host: str, port: int, request: bytes, stop: float, latencies: list[float], errors: list[int]
) -> None:
    """One keep-alive connection; a dropped one (as after a 500) counts and is reopened."""
    while time.perf_counter() < stop:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while time.perf_counter() < stop:
                started = time.perf_counter()
                writer.write(request)
                status = await read_response(reader)
                latencies.append(time.perf_counter() - started)
                if status >= 400:
                    errors[0] += 1
        except (asyncio.IncompleteReadError, ConnectionError):
            errors[1] += 1
        finally:
            writer.close()


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(q / 100 * len(sorted_values)) - 1))
    return sorted_values[index]


async def main(args: argparse.Namespace) -> None:
    url = urlsplit(args.url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    agents = [line.split() for line in args.agents_text.splitlines() if line.strip()]
    latencies: list[float] = []
    errors = [0, 0]  # status >= 400, dropped connections
    started = time.perf_counter()
    stop = started + args.duration
    tasks = []
    for k in range(args.connections):
        agent_id, token = agents[k % len(agents)]
        request = build_request(f"{host}:{port}", args.mode, agent_id, token)
        tasks.append(connection(host, port, request, stop, latencies, errors))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - started
    lat = sorted(latencies)
    us = 1_000_000
    summary = {
        "requests": len(lat),
        "duration_us": int(elapsed * us),
        "p50_us": int(percentile(lat, 50) * us),
        "p90_us": int(percentile(lat, 90) * us),
        "p99_us": int(percentile(lat, 99) * us),
        "max_us": int((lat[-1] if lat else 0) * us),
        "mean_us": sum(lat) / len(lat) * us if lat else 0.0,
        "connect_errors": 0,
        "read_errors": errors[1],
        "write_errors": 0,
        "status_errors": errors[0],
        "timeouts": 0,
    }
    print("WRK_JSON " + json.dumps(summary), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--agents", required=True)
    parser.add_argument("--mode", choices=["bare", "version", "heartbeat", "poll"], required=True)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--duration", type=float, default=10.0)
    namespace = parser.parse_args()
    namespace.agents_text = Path(namespace.agents).read_text()
    try:
        import uvloop
    except ImportError:
        asyncio.run(main(namespace))
    else:
        uvloop.run(main(namespace))
